//! What the dashboard shows, gathered in one function ([`gather`]) from
//! what the store offers today: the grade counts of `RegulatorQueries::stats`,
//! the reprint list, and grade changes made by overrides as the audit log
//! records them. Every number is for the caller's regions only. A faster
//! source (daily counts per region written by the refresh) replaces this
//! function's body, not the page.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::ToSpan;
use serde_json::Value;

use crate::clock;
use crate::model::{Grade, MerchantId};
use crate::store::query::ReprintItem;
use crate::store::{AuditFilter, Store, StoreResult};

/// Counts by grade.
pub type Counts = BTreeMap<Grade, u64>;

/// A change of a merchant's grade.
#[derive(Debug, Clone)]
pub struct GradeChange {
    pub at: jiff::Timestamp,
    pub merchant: MerchantId,
    pub name: String,
    pub from: Option<Grade>,
    pub to: Grade,
    pub actor: String,
}

/// One week of the trend: its first day and, when known, the counts at its end.
#[derive(Debug, Clone)]
pub struct Week {
    pub starts: Date,
    pub counts: Option<Counts>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct DashboardData {
    pub total: u64,
    pub by_grade: Counts,
    /// By region code (6 digits), in code order.
    pub by_region: BTreeMap<String, Counts>,
    /// Grade changes of the last 7 days, newest first.
    pub changes: Vec<GradeChange>,
    /// The last 12 weeks, oldest first; the last is the current one.
    pub trend: Vec<Week>,
    /// Merchants whose printed code shows another grade than the live one.
    pub reprint: Vec<ReprintItem>,
    /// `None`: the feature is not there yet.
    pub pending_reviews: Option<u64>,
    pub overdue_patrols: Option<u64>,
}

/// Most audit entries read for the changes of the week.
const MAX_AUDIT_READ: usize = 1000;

/// The dashboard of the regions starting with `prefix` (`""`: all), today.
pub async fn gather(store: &dyn Store, prefix: &str, today: Date) -> StoreResult<DashboardData> {
    let region = (!prefix.is_empty()).then_some(prefix);
    let stats = store.stats(region).await?;
    let reprint = store
        .reprint()
        .await?
        .into_iter()
        .filter(|r| r.region.starts_with(prefix))
        .collect();
    let trend = (0..12)
        .rev()
        .map(|weeks_ago| {
            let starts = week_start(today) - (7 * weeks_ago).days();
            let counts = (weeks_ago == 0).then(|| stats.by_grade.clone());
            Week { starts, counts }
        })
        .collect();
    Ok(DashboardData {
        total: stats.total,
        by_grade: stats.by_grade,
        by_region: stats.by_region,
        changes: changes_since(store, prefix, today - 6.days()).await?,
        trend,
        reprint,
        pending_reviews: None,
        overdue_patrols: None,
    })
}

/// The Monday of `day`'s week.
pub fn week_start(day: Date) -> Date {
    let back = i64::from(day.weekday().to_monday_zero_offset());
    day - back.days()
}

fn grade_of(v: &Value) -> Option<Grade> {
    v.get("grade")
        .and_then(Value::as_str)
        .and_then(Grade::from_name)
}

/// Overrides since the start of `since` that changed a grade, in the
/// regions starting with `prefix`.
async fn changes_since(
    store: &dyn Store,
    prefix: &str,
    since: Date,
) -> StoreResult<Vec<GradeChange>> {
    let since = since
        .to_zoned(clock::zone())
        .map(|z| z.timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let entries = store
        .audit(AuditFilter {
            since: Some(since),
            limit: MAX_AUDIT_READ,
            ..AuditFilter::default()
        })
        .await?;
    let mut merchants = BTreeMap::new();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for e in entries {
        if !e.action.starts_with("override.") {
            continue;
        }
        let (from, Some(to)) = (grade_of(&e.before), grade_of(&e.after)) else {
            continue;
        };
        let Ok(id) = MerchantId::parse(&e.target) else {
            continue;
        };
        if from == Some(to) || !seen.insert((e.at, id.clone())) {
            continue;
        }
        if !merchants.contains_key(&id) {
            let m = store.merchant(&id).await?;
            merchants.insert(id.clone(), m);
        }
        let Some(Some(m)) = merchants.get(&id) else {
            continue;
        };
        if !m.region.as_str().starts_with(prefix) {
            continue;
        }
        out.push(GradeChange {
            at: e.at,
            name: m.name.clone(),
            merchant: id,
            from,
            to,
            actor: e.actor,
        });
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.at));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(week_start(d("2026-11-30")), d("2026-11-30")); // Monday
        assert_eq!(week_start(d("2026-12-06")), d("2026-11-30")); // Sunday
        assert_eq!(week_start(d("2026-12-02")), d("2026-11-30"));
    }
}
