//! The grid (网格): which assistant (协管员) looks after which merchant, and
//! when each merchant is due for its next patrol (CONTRACT §7).
//!
//! # The assignment and what it guarantees
//!
//! A *group* is the active assistants that share a region code; a group
//! covers the merchants whose region starts with the code's non-zero
//! prefix (`crate::roster::covers`). A merchant's covering groups form a
//! chain from the most specific (longest prefix) to the broadest. With `N`
//! places per assistant, every run leaves an assignment in which:
//!
//! 1. **coverage**: each assigned merchant's assistant covers it, and no
//!    assistant has more than `N`;
//! 2. **specificity**: every covering group more specific than the
//!    merchant's own is full (each member at `N`): township staff take
//!    their township's shops before county staff take the overflow;
//! 3. **completeness**: a merchant is `unassigned` only when every group
//!    that covers it is full (or none does);
//! 4. **balance**: within a group, loads differ by at most one.
//!
//! The run starts from the previous assignment and moves a merchant only
//! when one of these would break otherwise: its assistant left the roster,
//! went off duty or no longer covers it; `N` was lowered below its
//! assistant's load (the merchants of highest id leave); a more specific
//! covering group has a free place (rule 2); or its group is uneven (rule
//! 4), and then the fewest merchants move, each within the group from an
//! assistant above its share to one below. New and freed merchants are
//! placed before anyone is moved, in id order, with the least loaded
//! member (lowest id on a tie) of the most specific covering group with a
//! free place. Consequences, each a property test in `tests`:
//!
//! - adding a merchant moves no other merchant;
//! - removing an assistant moves only that assistant's merchants;
//! - running again on the same input moves no one;
//! - in a grid where no group covers another's merchants, adding an
//!   assistant moves merchants only to it, exactly as many as the balance
//!   needs, and removing a merchant moves at most one other;
//! - in general, removing a merchant moves at most two others per level of
//!   its chain (one pulled up into the freed place, one to even out).
//!
//! The algorithm (`assign`) works on indices and region bytes: at 10^6
//! merchants and 30,000 assistants it ran in 0.7–1.3 s on a shared
//! 2-core machine (`benches/grid.rs`, `benches/results/grid.csv`).
//!
//! # Storage
//!
//! Each assistant's merchants are one document of the collection `grid`
//! (keyed by assistant id, at most `N` ids each); the unassigned merchants
//! are pages of 1,000 ids in `grid_unassigned`; the run's summary is
//! `grid_runs/latest`. No document grows with the number of merchants.
//! A run writes only the documents that changed, then the summary with its
//! audit entry; a run stopped half-way leaves some assistants' documents
//! new and others old, and the next run, which reads them all back as its
//! previous assignment (a merchant listed twice keeps the first), mends it.
//! The grid knows the merchants that have a projection (every merchant
//! the batch job or the admin API has graded).

mod assign;
mod patrol;
mod stored;
#[cfg(test)]
mod tests;

pub use assign::{assign, Region, NONE};
pub use patrol::{due_list, last_patrol, patrol_due, PatrolDue, PATROL_SOURCE};
pub use stored::{
    assign_and_store, assistant_grid, latest_run, unassigned_page, AssistantGrid, GridReport,
    GridRun, GRID, GRID_RUNS, GRID_UNASSIGNED, MAX_PER_ASSISTANT, UNASSIGNED_PAGE,
};
