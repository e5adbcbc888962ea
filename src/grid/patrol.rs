//! Patrols (巡查): a patrol is an `inspection` record with `"source":
//! "patrol"`; a merchant is due again its grade's number of days
//! (`[patrol]` of the rules file) after its latest one, and at once if it
//! has never had one.

use jiff::civil::Date;
use serde::Serialize;

use super::stored::assistant_grid;
use crate::grading::PatrolFrequency;
use crate::model::{Grade, MerchantId, Record, RecordBody};
use crate::roster::StaffId;
use crate::store::{Store, StoreResult};

/// The `source` of a patrol's inspection record.
pub const PATROL_SOURCE: &str = "patrol";

/// One merchant on an assistant's patrol list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatrolDue {
    pub merchant_id: MerchantId,
    pub name: String,
    pub address: String,
    /// The live grade on `as_of`; `None` for a merchant without a
    /// projection (then due as often as a red one).
    pub grade: Option<Grade>,
    pub last_patrol: Option<Date>,
    pub due_on: Date,
    /// Days past `due_on` on `as_of` (0 when not yet past).
    pub overdue_days: i64,
}

/// The date of the latest patrol dated on or before `as_of`.
pub fn last_patrol(records: &[Record], as_of: Date) -> Option<Date> {
    records
        .iter()
        .filter(|r| r.date <= as_of && r.source.as_deref() == Some(PATROL_SOURCE))
        .filter(|r| matches!(r.body, RecordBody::Inspection { .. }))
        .map(|r| r.date)
        .max()
}

/// When the next patrol is due and how many days it is overdue on `as_of`.
pub fn patrol_due(
    grade: Option<Grade>,
    last: Option<Date>,
    as_of: Date,
    every: &PatrolFrequency,
) -> (Date, i64) {
    let days = every.days(grade.unwrap_or(Grade::Red));
    let due_on = match last {
        None => as_of,
        Some(d) => d
            .checked_add(jiff::Span::new().days(i64::from(days)))
            .unwrap_or(Date::MAX),
    };
    let overdue = if due_on < as_of {
        (as_of - due_on).get_days().into()
    } else {
        0
    };
    (due_on, overdue)
}

/// The merchants of `assistant` due for a patrol by `as_of + within_days`,
/// most overdue first (then by id); `None` when the assistant has no grid.
pub async fn due_list(
    store: &dyn Store,
    assistant: &StaffId,
    as_of: Date,
    within_days: u32,
    every: &PatrolFrequency,
) -> StoreResult<Option<Vec<PatrolDue>>> {
    let Some(grid) = assistant_grid(store, assistant).await? else {
        return Ok(None);
    };
    let horizon = as_of
        .checked_add(jiff::Span::new().days(i64::from(within_days)))
        .unwrap_or(Date::MAX);
    let mut out = Vec::with_capacity(grid.merchants.len());
    for id in &grid.merchants {
        let projection = store.projection(id).await?;
        let records = store.records(id).await?;
        let grade = projection.as_ref().map(|p| p.effective(as_of).0);
        let last = last_patrol(&records, as_of);
        let (due_on, overdue_days) = patrol_due(grade, last, as_of, every);
        if due_on > horizon {
            continue;
        }
        let (name, address) = projection
            .map(|p| (p.merchant.name, p.merchant.address))
            .unwrap_or_default();
        out.push(PatrolDue {
            merchant_id: id.clone(),
            name,
            address,
            grade,
            last_patrol: last,
            due_on,
            overdue_days,
        });
    }
    out.sort_by(|a, b| {
        a.due_on
            .cmp(&b.due_on)
            .then_with(|| a.merchant_id.cmp(&b.merchant_id))
    });
    Ok(Some(out))
}
