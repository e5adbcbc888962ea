//! The day's counts (`store::query::DAILY_COUNTS`): at the end of a
//! refresh, the merchants of each region by grade, from the store's counts,
//! and the grade changes of this run added to the day's earlier ones.
//! Concurrent refreshes (shards) add theirs by compare-and-swap.

use jiff::civil::Date;

use crate::model::Grade;
use crate::store::query::{DayCounts, DAILY_COUNTS};
use crate::store::{Expect, Store, StoreError};

use super::summary::Summary;

/// Attempts at the compare-and-swap before giving up (each a fresh read).
const ATTEMPTS: usize = 16;

/// Writes `as_of`'s document: the counts now, and the changes of `summary`
/// added to those already noted for that day.
pub(super) async fn note_day(
    store: &dyn Store,
    as_of: Date,
    summary: &Summary,
) -> anyhow::Result<()> {
    let stats = store.stats(None).await?;
    let key = DayCounts::key(as_of);
    for _ in 0..ATTEMPTS {
        let old_text = store.document(DAILY_COUNTS, &key).await?;
        let old: Option<DayCounts> = old_text
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| {
                StoreError::Corrupt(format!("document {}/{key}: {e}", DAILY_COUNTS.name()))
            })?;
        let mut day = DayCounts {
            as_of,
            ..DayCounts::default()
        };
        for (region, grades) in &stats.by_region {
            let counts = day.regions.entry(region.clone()).or_default();
            for g in Grade::ALL {
                counts.set(g, grades.get(&g).copied().unwrap_or(0));
            }
        }
        let earlier = old
            .iter()
            .flat_map(|o| o.regions.iter().map(|(r, d)| (r, d.changed)));
        let now = summary.changed_by_region.iter().map(|(r, n)| (r, *n));
        for (region, n) in earlier.chain(now) {
            day.regions.entry(region.clone()).or_default().changed += n;
        }
        let expect = match old_text {
            Some(text) => Expect::Equals(text),
            None => Expect::Absent,
        };
        let text = serde_json::to_string(&day)?;
        if store
            .swap_document(DAILY_COUNTS, &key, expect, Some(text), None)
            .await?
        {
            return Ok(());
        }
    }
    anyhow::bail!("the counts of {as_of} changed {ATTEMPTS} times while this refresh wrote them")
}
