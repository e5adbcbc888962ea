//! The projection of one merchant: its grading, a regulator's override
//! applied, and the public summary of its recent records.

use std::cmp::Reverse;
use std::collections::HashMap;

use jiff::civil::Date;
use jiff::Timestamp;

use super::engine::{grade, plus_days};
use super::repair::{publicity_last_day, with_repairs, Repairs};
use super::rules::{Condition, Rules};
use crate::model::{
    CommitmentItem, ComplaintItem, ComplaintSummary, InspectionItem, ListAction, ListItem,
    ListKind, Merchant, Override, PenaltyItem, Projection, PublicMerchant, Reason, Record,
    RecordBody, RecordSummary, Reply, SamplingItem, SelfReportItem, OVERRIDE_RULE,
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
            reply: None,
        });
        if let Some(after) = o.expires_at.and_then(|e| plus_days(e, 1)) {
            next_change_at = Some(next_change_at.map_or(after, |n| n.min(after)));
        }
    }
    reasons.extend(graded.reasons);
    let mut summary = summarize(records, rules, as_of);
    attach_replies(records, as_of, &mut reasons, &mut summary);
    Projection {
        merchant: PublicMerchant::from_merchant(merchant),
        grade: active.as_ref().map_or(graded.grade, |o| o.grade),
        computed_grade: graded.grade,
        override_: active,
        reasons,
        records: summary,
        as_of,
        updated_at,
        next_change_at,
    }
}

/// The latest accepted reply (dated ≤ as_of) to each record and to each
/// rule, put under what it answers; a reply to a rule answers the current
/// stretch of its reason only (not one that ended and came back later).
fn attach_replies(
    records: &[Record],
    as_of: Date,
    reasons: &mut [Reason],
    summary: &mut RecordSummary,
) {
    let mut to_record: HashMap<&str, (Date, &str, &str)> = HashMap::new();
    let mut to_rule: HashMap<&str, (Date, &str, &str)> = HashMap::new();
    for r in records.iter().filter(|r| r.date <= as_of) {
        let RecordBody::Reply { record, rule, text } = &r.body else {
            continue;
        };
        let (map, target) = match (record, rule) {
            (Some(id), _) => (&mut to_record, id.as_str()),
            (None, Some(rule)) => (&mut to_rule, rule.as_str()),
            (None, None) => continue,
        };
        let candidate = (r.date, r.id.as_str(), text.as_str());
        let e = map.entry(target).or_insert(candidate);
        if (candidate.0, candidate.1) > (e.0, e.1) {
            *e = candidate;
        }
    }
    if to_record.is_empty() && to_rule.is_empty() {
        return;
    }
    let reply = |found: Option<&(Date, &str, &str)>| {
        found.map(|&(at, _, text)| Reply {
            text: text.to_owned(),
            at,
        })
    };
    for reason in reasons.iter_mut() {
        let found = to_rule
            .get(reason.rule.as_str())
            .filter(|(at, _, _)| reason.since.is_none_or(|since| *at >= since));
        reason.reply = reply(found);
    }
    let of = |id: &str| reply(to_record.get(id));
    for i in &mut summary.inspections {
        i.reply = of(&i.id);
    }
    for i in &mut summary.sampling {
        i.reply = of(&i.id);
    }
    for i in &mut summary.penalties {
        i.reply = of(&i.id);
    }
    for i in &mut summary.complaints.recent {
        i.reply = of(&i.id);
    }
    for i in &mut summary.lists {
        i.reply = of(&i.id);
    }
}

/// Whether a repairable rule of `rules` is of this condition.
fn repairable(rules: &Rules, test: impl Fn(&Condition) -> bool) -> bool {
    rules
        .rules()
        .iter()
        .any(|r| r.repairable && test(&r.condition))
}

pub(super) fn summarize(records: &[Record], rules: &Rules, as_of: Date) -> RecordSummary {
    let repairs = Repairs::of(records);
    let publicity_repairable = repairable(rules, |c| matches!(c, Condition::Publicity));
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
                reply: None,
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
                reply: None,
            }),
            RecordBody::Penalty {
                decision_no,
                severity,
                fine_cny,
                publicity_until,
            } if room(s.penalties.len()) => {
                let shown = match publicity_until {
                    // A repaired penalty's publicity ends the day before
                    // its repair.
                    Some(until) => {
                        let repaired = publicity_repairable
                            .then(|| repairs.of_record(&id, date).map(|(d, _)| d))
                            .flatten();
                        publicity_last_day(date, *until, repaired).is_some_and(|l| l >= as_of)
                    }
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
                        reply: None,
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
                        reply: None,
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
        let repaired = repairable(
            rules,
            |c| matches!(c, Condition::ListActive { list: l } if *l == list),
        )
        .then_some(&repairs);
        if let Some(item) = active_list(records, list, as_of, repaired) {
            s.lists.push(item);
        }
    }
    s.lists.sort_by_key(|l| Reverse(l.since));
    s
}

/// The list entry in force for `list` at `as_of` (the latest entry dated ≤
/// as_of, same-day ties resolved by slice order), if it is an `add`; a
/// repaired entry counts as removed from its repair's date when `repairs`
/// is given (the list's rule is repairable).
fn active_list(
    records: &[Record],
    list: ListKind,
    as_of: Date,
    repairs: Option<&Repairs>,
) -> Option<ListItem> {
    let mut entries: Vec<(Date, usize, bool)> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.body {
            RecordBody::List {
                list: l, action, ..
            } if *l == list => Some((r.date, i, *action == ListAction::Add)),
            _ => None,
        })
        .collect();
    entries.sort_by_key(|e| e.0);
    if let Some(repairs) = repairs {
        entries = with_repairs(entries, records, repairs);
    }
    entries.retain(|e| e.0 <= as_of);
    let &(_, latest, add) = entries.last()?;
    if !add {
        return None;
    }
    let start = entries.iter().rposition(|e| !e.2).map_or(0, |j| j + 1);
    let reason = match &records[latest].body {
        RecordBody::List { reason, .. } => reason.clone(),
        _ => None,
    };
    Some(ListItem {
        id: records[latest].id.clone(),
        list,
        since: entries[start].0,
        reason,
        reply: None,
    })
}
