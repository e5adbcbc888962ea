//! The workbench dashboard's data for a region scope (a prefix of region
//! codes; `None` is everywhere): the live counts by grade and by region
//! (township), the grade changes of the last seven days and the daily
//! counts of the last twelve weeks from the refresh's documents
//! (`store::query::DAILY_COUNTS`), and the size of the reprint queue.
//! A few small reads, whatever the number of merchants: the stats and the
//! reprint count come from the store's index, the trend from at most 84
//! documents.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::ToSpan;
use serde::Serialize;

use crate::model::Grade;
use crate::store::query::{DayCounts, RegionDay, DAILY_COUNTS};
use crate::store::{Documents, RegulatorQueries, StoreError, StoreResult};

/// Days of the trend: twelve weeks.
pub const TREND_DAYS: i32 = 84;
/// Days counted as "this week", today included.
pub const WEEK_DAYS: i32 = 7;

/// What the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// The scope: a region code prefix, `None` for everywhere.
    pub region: Option<String>,
    pub today: Date,
    /// Merchants with a grade in scope, now.
    pub total: u64,
    pub by_grade: BTreeMap<Grade, u64>,
    /// Grades per region (township) in scope, now.
    pub by_region: BTreeMap<String, BTreeMap<Grade, u64>>,
    /// Grade changes found by the refreshes of the last seven days.
    pub changes_this_week: u64,
    /// Each day of the last twelve weeks with a refresh, oldest first: the
    /// counts in scope after its last refresh and its grade changes.
    pub trend: Vec<TrendDay>,
    /// Merchants in scope whose printed code shows another grade.
    pub reprint_queue: u64,
}

/// One day of the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrendDay {
    pub as_of: Date,
    #[serde(flatten)]
    pub counts: RegionDay,
}

/// The dashboard of `region` on `today`.
pub async fn dashboard<S>(store: &S, region: Option<&str>, today: Date) -> StoreResult<Dashboard>
where
    S: RegulatorQueries + Documents + ?Sized,
{
    let (stats, reprint_queue, trend) = tokio::try_join!(
        store.stats(region),
        store.reprint_count(region),
        trend(store, region, today),
    )?;
    let week_start = today - (WEEK_DAYS - 1).days();
    let changes_this_week = trend
        .iter()
        .filter(|d| d.as_of >= week_start)
        .map(|d| d.counts.changed)
        .sum();
    Ok(Dashboard {
        region: region.map(str::to_owned),
        today,
        total: stats.total,
        by_grade: stats.by_grade,
        by_region: stats.by_region,
        changes_this_week,
        trend,
        reprint_queue,
    })
}

/// The days of the twelve weeks up to `today` that have counts, in scope.
pub async fn trend<S>(store: &S, region: Option<&str>, today: Date) -> StoreResult<Vec<TrendDay>>
where
    S: Documents + ?Sized,
{
    let before_first = DayCounts::key(today - TREND_DAYS.days());
    let docs = store
        .documents(DAILY_COUNTS, Some(&before_first), TREND_DAYS as usize)
        .await?;
    let mut out = Vec::with_capacity(docs.len());
    for (key, json) in docs {
        let day: DayCounts = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!("document {}/{key}: {e}", DAILY_COUNTS.name()))
        })?;
        if day.as_of <= today {
            out.push(TrendDay {
                as_of: day.as_of,
                counts: day.within(region),
            });
        }
    }
    Ok(out)
}
