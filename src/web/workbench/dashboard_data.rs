//! The dashboard's numbers beyond `crate::dashboard` (which reads the
//! live counts, the reprint count and the refresh's daily counts): the
//! twelve weeks of the trend cut from those days, and the two work queues
//! of other features, counted for the caller's regions with a bounded
//! number of reads whatever the number of merchants.
//!
//! - Pending reviews (`shop::reviews`, the queue the API lists): the
//!   range of the caller's regions in the queue of pending submissions
//!   (`shop::review_queue`, read by `reviews::pending`; decided ones are
//!   not in it), up to its
//!   `MAX_PENDING_READ` entries; past that the count is a lower bound.
//! - Overdue patrols (`grid`): assistants' grids are read in key order
//!   (at most [`MAX_GRIDS_READ`]) and the distinct merchants on them, up
//!   to [`MAX_PATROL_CHECKS`] (a township's grids), checked in batches of
//!   grading inputs with the grade and last patrol the patrol list goes
//!   by; past that the count is a lower bound. A merchant is overdue when
//!   its due date has passed (never patrolled: due today, not yet overdue).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt};
use jiff::civil::Date;
use jiff::ToSpan;

use crate::dashboard::TrendDay;
use crate::grading::PatrolFrequency;
use crate::grid::{last_patrol, patrol_due, AssistantGrid, GRID};
use crate::model::{Grade, MerchantId};
use crate::shop::reviews;
use crate::store::{documents, GradingInput, Store, StoreResult};

/// Counts by grade.
pub type Counts = BTreeMap<Grade, u64>;

/// Most merchants checked for one count of overdue patrols. Measured
/// (`benches/results/workbench_queues.csv`, 10^5 merchants, a loaded
/// 2-core machine): 1,000 in 56 ms, 3,000 in 112 ms, 4,000 in 141 ms,
/// 20,000 in 634 ms (about 30 µs a merchant, most of it the records'
/// point reads): 3,000 keeps the dashboard within its 200 ms with room
/// for a store ten times larger. A province's count is a lower bound.
pub const MAX_PATROL_CHECKS: usize = 3_000;
/// Merchants read by one `grading_inputs` call of that count.
const PATROL_BATCH: usize = 500;
/// Such calls in flight at once (the embedded store has 4 readers).
const PATROL_READS: usize = 4;
/// Most assistants' grids read for one count of overdue patrols.
pub const MAX_GRIDS_READ: usize = 5_000;
/// Weeks of the trend.
pub const TREND_WEEKS: i64 = 12;

/// One week of the trend: its first day (a Monday), the counts after the
/// last refresh of that week (`None`: no refresh that week, a gap) and
/// the grade changes its refreshes found.
#[derive(Debug, Clone)]
pub struct Week {
    pub starts: Date,
    pub counts: Option<Counts>,
    pub changed: u64,
}

/// A count that stopped reading at its bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounded {
    pub count: u64,
    /// Whether everything was read (else `count` is a lower bound).
    pub complete: bool,
}

/// The Monday of `day`'s week.
pub fn week_start(day: Date) -> Date {
    let back = i64::from(day.weekday().to_monday_zero_offset());
    day - back.days()
}

/// The twelve weeks up to `today`'s, oldest first, from the days of the
/// trend (oldest first): each week's counts are those of its last day
/// with a refresh.
pub fn weeks(days: &[TrendDay], today: Date) -> Vec<Week> {
    let current = week_start(today);
    let mut out: Vec<Week> = (0..TREND_WEEKS)
        .rev()
        .map(|ago| Week {
            starts: current - (7 * ago).days(),
            counts: None,
            changed: 0,
        })
        .collect();
    for day in days {
        let starts = week_start(day.as_of);
        let Some(week) = out.iter_mut().find(|w| w.starts == starts) else {
            continue;
        };
        week.counts = Some(
            Grade::ALL
                .into_iter()
                .map(|g| (g, day.counts.get(g)))
                .collect(),
        );
        week.changed += day.counts.changed;
    }
    out
}

/// Pending shop submissions of merchants in the regions starting with
/// `prefix` (`""`: all), from that range of the review queue.
pub async fn pending_reviews(store: &dyn Store, prefix: &str) -> StoreResult<Bounded> {
    let (queue, complete) = reviews::pending(store, prefix, jiff::Timestamp::now()).await?;
    Ok(Bounded {
        count: queue.len() as u64,
        complete,
    })
}

/// Whether an assistant's area (a region code; trailing zeros cover the
/// prefix) may hold merchants of the regions starting with `prefix`.
fn overlaps(area: &str, prefix: &str) -> bool {
    let area = area.trim_end_matches('0');
    area.starts_with(prefix) || prefix.starts_with(area)
}

/// The distinct merchants on the grids of assistants whose area overlaps
/// `prefix`, in id order: up to [`MAX_PATROL_CHECKS`] of them, and whether
/// that was all (grids read in key order, at most [`MAX_GRIDS_READ`]).
async fn grid_merchants(store: &dyn Store, prefix: &str) -> StoreResult<(Vec<MerchantId>, bool)> {
    const PAGE: usize = 100;
    let mut after: Option<String> = None;
    let mut ids: BTreeSet<MerchantId> = BTreeSet::new();
    let mut grids = 0;
    loop {
        if grids >= MAX_GRIDS_READ {
            return Ok((ids.into_iter().collect(), false));
        }
        let page = documents::page::<AssistantGrid>(store, GRID, after.as_deref(), PAGE).await?;
        grids += page.len();
        let last_page = page.len() < PAGE;
        for (key, grid) in page {
            after = Some(key);
            if !overlaps(grid.region.as_str(), prefix) {
                continue;
            }
            for id in grid.merchants {
                if ids.len() == MAX_PATROL_CHECKS && !ids.contains(&id) {
                    return Ok((ids.into_iter().collect(), false));
                }
                ids.insert(id);
            }
        }
        if last_page {
            return Ok((ids.into_iter().collect(), true));
        }
    }
}

/// The grade the patrol list goes by (`grid::due_list`: the projection's
/// `effective(today)`, `None` without a projection), as far as a grading
/// input tells it: an active override's grade; without an override the
/// projection's grade (then its computed one); `None` (the outer one)
/// for an override that has ended, whose projection may still carry it:
/// that merchant's projection is read.
fn patrol_grade(input: &GradingInput, today: Date) -> Option<Option<Grade>> {
    match (&input.override_, input.previous) {
        (_, None) => Some(None),
        (Some(o), Some(_)) if o.is_active(today) => Some(Some(o.grade)),
        (None, Some(grade)) => Some(Some(grade)),
        (Some(_), Some(_)) => None,
    }
}

/// How many of `ids` are in the regions starting with `prefix` and past
/// their patrol's due date on `today`: one `grading_inputs` read.
async fn overdue_among(
    store: &dyn Store,
    ids: Vec<MerchantId>,
    prefix: &str,
    today: Date,
    every: &PatrolFrequency,
) -> StoreResult<u64> {
    let mut count = 0;
    for input in store.grading_inputs(ids).await? {
        if !input.merchant.region.as_str().starts_with(prefix) {
            continue;
        }
        let grade = match patrol_grade(&input, today) {
            Some(grade) => grade,
            None => store
                .projection(&input.merchant.id)
                .await?
                .map(|p| p.effective(today).0),
        };
        let last = last_patrol(&input.records, today);
        if patrol_due(grade, last, today, every).1 > 0 {
            count += 1;
        }
    }
    Ok(count)
}

/// Merchants in the regions starting with `prefix` whose patrol is past
/// its due date on `today`, among those assistants' grids hold (each
/// merchant once): read [`PATROL_BATCH`] merchants at a time with
/// `BatchStore::grading_inputs` (merchant, records, override, grade),
/// [`PATROL_READS`] such reads at once, not two reads per merchant.
pub async fn overdue_patrols(
    store: &dyn Store,
    prefix: &str,
    today: Date,
    every: &PatrolFrequency,
) -> StoreResult<Bounded> {
    let (ids, complete) = grid_merchants(store, prefix).await?;
    let counts: Vec<u64> = futures_util::stream::iter(ids.chunks(PATROL_BATCH))
        .map(|chunk| overdue_among(store, chunk.to_vec(), prefix, today, every))
        .buffered(PATROL_READS)
        .try_collect()
        .await?;
    let count = counts.iter().sum();
    Ok(Bounded { count, complete })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::RegionDay;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(week_start(d("2026-11-30")), d("2026-11-30")); // Monday
        assert_eq!(week_start(d("2026-12-06")), d("2026-11-30")); // Sunday
        assert_eq!(week_start(d("2026-12-02")), d("2026-11-30"));
    }

    #[test]
    fn a_week_shows_its_last_refresh_and_weeks_without_one_are_gaps() {
        let day = |s: &str, green, red, changed| TrendDay {
            as_of: d(s),
            counts: RegionDay {
                green,
                yellow: 0,
                red,
                changed,
            },
        };
        let days = [
            day("2026-09-01", 9, 9, 9), // more than twelve weeks ago
            day("2026-11-16", 5, 1, 2),
            day("2026-11-18", 4, 2, 1),
            day("2026-12-01", 3, 3, 4),
        ];
        let weeks = weeks(&days, d("2026-12-03"));
        assert_eq!(weeks.len(), 12);
        assert_eq!(weeks[11].starts, d("2026-11-30"));
        assert_eq!(weeks[0].starts, d("2026-09-14"));
        let shown: Vec<_> = weeks
            .iter()
            .map(|w| {
                w.counts
                    .as_ref()
                    .map(|c| (c[&Grade::Green], c[&Grade::Red], w.changed))
            })
            .collect();
        let mut want = vec![None; 12];
        want[9] = Some((4, 2, 3));
        want[11] = Some((3, 3, 4));
        assert_eq!(shown, want);
    }

    #[test]
    fn the_patrol_grade_is_an_override_in_force_else_the_projections() {
        let merchant: crate::model::Merchant = serde_json::from_value(serde_json::json!({
            "id": "M1", "name": "店", "kind": "shop", "address": "路", "region": "511504",
            "categories": []}))
        .unwrap();
        let ending = |expires_at| crate::model::Override {
            grade: Grade::Green,
            reason: "理由".into(),
            expires_at,
            actor: "a".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        let input = |override_, previous| GradingInput {
            merchant: merchant.clone(),
            records: Vec::new(),
            override_,
            previous,
        };
        let today = d("2026-12-03");
        let grade = |o, p| patrol_grade(&input(o, p), today);
        assert_eq!(grade(None, None), Some(None));
        assert_eq!(grade(None, Some(Grade::Red)), Some(Some(Grade::Red)));
        assert_eq!(
            grade(Some(ending(None)), Some(Grade::Red)),
            Some(Some(Grade::Green))
        );
        assert_eq!(
            grade(Some(ending(Some(today))), Some(Grade::Red)),
            Some(Some(Grade::Green))
        );
        // Ended yesterday: the projection may still carry it.
        assert_eq!(
            grade(Some(ending(Some(d("2026-12-02")))), Some(Grade::Green)),
            None
        );
    }

    #[test]
    fn an_area_overlaps_a_scope_within_it_or_around_it() {
        assert!(overlaps("511500", "511504"));
        assert!(overlaps("511504", "5115"));
        assert!(overlaps("511504", ""));
        assert!(!overlaps("511504", "511502"));
        assert!(!overlaps("511600", "5115"));
    }
}
