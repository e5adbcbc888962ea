//! The projection of one merchant: its grading, a regulator's override
//! applied, and the public summary of its recent records.

use std::cmp::Reverse;

use jiff::civil::Date;
use jiff::Timestamp;

use super::engine::{grade, plus_days};
use super::rules::Rules;
use crate::model::{
    CommitmentItem, ComplaintItem, ComplaintSummary, InspectionItem, ListAction, ListItem,
    ListKind, Merchant, Override, PenaltyItem, Projection, PublicMerchant, Reason, Record,
    RecordBody, RecordSummary, SamplingItem, SelfReportItem, OVERRIDE_RULE,
};

/// How many items of each kind the projection lists.
pub const SUMMARY_ITEMS: usize = 10;

/// The window of `ComplaintSummary::substantiated_180d`.
const COMPLAINT_SUMMARY_DAYS: i64 = 180;
/// A penalty without `publicity_until` is shown for this long.
const PENALTY_SHOWN_DAYS: i64 = 365;

/// Builds the projection of one merchant as of a day.
pub fn project(
    merchant: &Merchant,
    records: &[Record],
    override_: Option<&Override>,
    rules: &Rules,
    as_of: Date,
    updated_at: Timestamp,
) -> Projection {
    let graded = grade(rules, records, as_of);
    let active = override_.filter(|o| o.is_active(as_of)).cloned();
    let mut reasons = Vec::with_capacity(graded.reasons.len() + 1);
    let mut next_change_at = graded.next_change_at;
    if let Some(o) = &active {
        reasons.push(Reason {
            rule: OVERRIDE_RULE.into(),
            text: o.reason.clone(),
            since: Some(o.date()),
            until: o.expires_at,
            record: None,
        });
        if let Some(after) = o.expires_at.and_then(|e| plus_days(e, 1)) {
            next_change_at = Some(next_change_at.map_or(after, |n| n.min(after)));
        }
    }
    reasons.extend(graded.reasons);
    Projection {
        merchant: PublicMerchant::from_merchant(merchant),
        grade: active.as_ref().map_or(graded.grade, |o| o.grade),
        computed_grade: graded.grade,
        override_: active,
        reasons,
        records: summarize(records, as_of),
        as_of,
        updated_at,
        next_change_at,
    }
}

pub(super) fn summarize(records: &[Record], as_of: Date) -> RecordSummary {
    let mut past: Vec<&Record> = records.iter().filter(|r| r.date <= as_of).collect();
    // Most recent first; same day by id so the output does not depend on input order.
    past.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.id.cmp(&b.id)));
    let in_last = |d: Date, days: i64| plus_days(d, days).is_none_or(|end| end > as_of);

    let mut s = RecordSummary {
        inspections: Vec::new(),
        sampling: Vec::new(),
        penalties: Vec::new(),
        complaints: ComplaintSummary {
            total: 0,
            substantiated: 0,
            substantiated_180d: 0,
            recent: Vec::new(),
        },
        lists: Vec::new(),
        self_reports: Vec::new(),
        commitment: None,
    };
    let room = |v: usize| v < SUMMARY_ITEMS;
    for r in &past {
        let (id, date) = (r.id.clone(), r.date);
        match &r.body {
            RecordBody::Inspection {
                hazards,
                deadline,
                rectified,
                rectified_on,
                ..
            } if room(s.inspections.len()) => s.inspections.push(InspectionItem {
                id,
                date,
                hazards: *hazards,
                deadline: *deadline,
                rectified: *rectified,
                rectified_on: *rectified_on,
            }),
            RecordBody::Sampling {
                product,
                standard,
                passed,
                failed_items,
            } if room(s.sampling.len()) => s.sampling.push(SamplingItem {
                id,
                date,
                product: product.clone(),
                standard: standard.clone(),
                passed: *passed,
                failed_items: failed_items.clone(),
            }),
            RecordBody::Penalty {
                decision_no,
                severity,
                fine_cny,
                publicity_until,
            } if room(s.penalties.len()) => {
                let shown = match publicity_until {
                    Some(until) => *until >= as_of,
                    None => in_last(date, PENALTY_SHOWN_DAYS),
                };
                if shown {
                    s.penalties.push(PenaltyItem {
                        id,
                        date,
                        decision_no: decision_no.clone(),
                        severity: *severity,
                        fine_cny: *fine_cny,
                        publicity_until: *publicity_until,
                    });
                }
            }
            RecordBody::Complaint { substantiated, .. } => {
                let c = &mut s.complaints;
                c.total += 1;
                if *substantiated {
                    c.substantiated += 1;
                    if in_last(date, COMPLAINT_SUMMARY_DAYS) {
                        c.substantiated_180d += 1;
                    }
                }
                if room(c.recent.len()) {
                    c.recent.push(ComplaintItem {
                        id,
                        date,
                        substantiated: *substantiated,
                    });
                }
            }
            RecordBody::SelfReport { report_type, .. } if room(s.self_reports.len()) => {
                s.self_reports.push(SelfReportItem {
                    id,
                    date,
                    report_type: *report_type,
                })
            }
            RecordBody::Commitment { .. } if s.commitment.is_none() => {
                s.commitment = Some(CommitmentItem { id, date })
            }
            _ => {}
        }
    }
    for &list in ListKind::ALL {
        if let Some(item) = active_list(records, list, as_of) {
            s.lists.push(item);
        }
    }
    s.lists.sort_by_key(|l| Reverse(l.since));
    s
}

/// The list entry in force for `list` at `as_of` (the latest entry dated ≤
/// as_of, same-day ties resolved by slice order), if it is an `add`.
fn active_list(records: &[Record], list: ListKind, as_of: Date) -> Option<ListItem> {
    let mut entries: Vec<(&Record, bool, &Option<String>)> = records
        .iter()
        .filter(|r| r.date <= as_of)
        .filter_map(|r| match &r.body {
            RecordBody::List {
                list: l,
                action,
                reason,
            } if *l == list => Some((r, *action == ListAction::Add, reason)),
            _ => None,
        })
        .collect();
    entries.sort_by_key(|e| e.0.date);
    let (latest, add, reason) = *entries.last()?;
    if !add {
        return None;
    }
    let start = entries.iter().rposition(|e| !e.1).map_or(0, |j| j + 1);
    Some(ListItem {
        id: latest.id.clone(),
        list,
        since: entries[start].0.date,
        reason: reason.clone(),
    })
}
