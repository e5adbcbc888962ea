//! Random inspection plans (双随机、一公开, CONTRACT §7): merchants drawn
//! without replacement with probability proportional to the weight of
//! their live grade (doubled for a category with a failed sampling test in
//! the last 365 days), and for each a team of inspectors drawn from those
//! who cover its region, never its own assistant, none drawn more than
//! ⌈team × drawn ÷ pool⌉ + 1 times.
//!
//! Why it looks like this: a plan is published with its seed so that
//! anyone can re-draw it, so the draw (`draw`) is a pure function of an
//! input that serialises to JSON (`DrawInput`), its random numbers come
//! from SHA-256 of the seed (`random`) and every weight is a whole number
//! of thousandths (`weights`): no floating point, no library RNG whose
//! output could change between versions. `docs/PLAN.md` is the
//! specification; `tests/plan_reference.py` is a second implementation
//! written from it alone, and a test draws with both and compares.
//! `stored` reads the input from the store, keeps the plan (collection
//! `plans`, written once) and collects its results.

mod cache;
mod demo;
mod draw;
mod random;
mod stored;
#[cfg(test)]
mod tests;
mod weights;

pub use cache::{PlanCache, PlanWithResults, RESULTS_MAX_AGE_SECS};
pub use demo::{prepare_demo, DEMO_PLAN};
pub use draw::{
    draw, Candidate, DrawError, DrawInput, Drawn, DrawnEntry, NoTeam, PoolInspector,
    FAILED_SAMPLING_DAYS, MAX_SIZE, MAX_TEAM, VERSION,
};
pub use random::Stream;
pub use stored::{
    check_plan_name, create, gather, get, input_digest, list, results, Plan, PlanEntry, PlanError,
    PlanListItem, PlanRequest, PlanResult, TeamMember, PLANS,
};
pub use weights::{milli_json, milli_text, Weights, MAX_WEIGHT};
