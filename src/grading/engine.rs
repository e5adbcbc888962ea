//! The grading function: every rule evaluated as a predicate on a day, over
//! an index of the records per condition, on the candidate days the records
//! imply (see the module documentation of `grading`).

use std::cmp::Reverse;

use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};

use super::repair::{publicity_last_day, with_repairs, Repairs};
use super::rules::{Condition, Rules, GREEN_RULE, GREEN_TEXT};
use crate::model::{Grade, ListAction, Reason, Record, RecordBody};

/// The result of grading one merchant on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grading {
    pub grade: Grade,
    /// Worst grade first, then rule order; a single `G` reason when green.
    pub reasons: Vec<Reason>,
    /// The earliest day after `as_of` on which, with no new records, the set
    /// of matching rules changes.
    pub next_change_at: Option<Date>,
}

/// Grades one merchant's records as of a day.
pub fn grade(rules: &Rules, records: &[Record], as_of: Date) -> Grading {
    let ev = Evaluator::new(rules, records);
    let now: Vec<Option<usize>> = ev.eval(as_of);
    let mut hits: Vec<usize> = (0..rules.rules.len())
        .filter(|&i| now[i].is_some())
        .collect();
    hits.sort_by_key(|&i| Reverse(rules.rules[i].grade));
    let grade = hits.first().map_or(Grade::Green, |&i| rules.rules[i].grade);
    let reasons = if hits.is_empty() {
        vec![Reason {
            rule: GREEN_RULE.into(),
            text: GREEN_TEXT.into(),
            since: ev.green_since(as_of),
            until: None,
            record: None,
            reply: None,
        }]
    } else {
        hits.iter()
            .map(|&i| {
                let rule = &rules.rules[i];
                Reason {
                    rule: rule.id.clone(),
                    text: rule.text.clone(),
                    since: ev.since(i, as_of),
                    until: ev.until(i, as_of),
                    record: now[i].map(|r| records[r].id.clone()),
                    reply: None,
                }
            })
            .collect()
    };
    Grading {
        grade,
        reasons,
        next_change_at: ev.next_change(as_of, &now),
    }
}

/// The ids of the rules that match on `day`, in rule order.
pub fn matching_rules<'r>(rules: &'r Rules, records: &[Record], day: Date) -> Vec<&'r str> {
    let ev = Evaluator::new(rules, records);
    ev.eval(day)
        .iter()
        .zip(&rules.rules)
        .filter(|(hit, _)| hit.is_some())
        .map(|(_, r)| r.id.as_str())
        .collect()
}

/// Per rule, the records that matter to it, sorted so that "does the rule
/// match on day d" is a binary search.
pub(super) enum Index<'a> {
    /// Count of qualifying records with `d − days < date ≤ d` must be in `min..=max`.
    Window {
        days: i64,
        dates: Vec<(Date, usize)>,
        min: usize,
        max: Option<usize>,
    },
    /// List entries sorted by date, ties in slice order; `true` = add.
    List(Vec<(Date, usize, bool)>),
    /// The first day each qualifying inspection is overdue, sorted.
    Overdue(Vec<(Date, usize)>),
    /// Publicity periods `[from, until]`, inclusive, with the record's id.
    Publicity(Vec<(Date, Date, usize, &'a str)>),
}

/// Sorts by date; same-day entries by record id, so that which record a
/// reason names does not depend on input order.
fn by_date_then_id(v: &mut [(Date, usize)], records: &[Record]) {
    v.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| records[a.1].id.cmp(&records[b.1].id))
    });
}

pub(super) fn plus_days(d: Date, n: i64) -> Option<Date> {
    d.checked_add(n.days()).ok()
}

impl<'a> Index<'a> {
    /// `repairs`: the repairs this rule honours (`None` if not repairable).
    fn build(cond: &Condition, records: &'a [Record], repairs: Option<&Repairs>) -> Index<'a> {
        let dated = |keep: &dyn Fn(&RecordBody) -> bool| {
            let mut v: Vec<(Date, usize)> = records
                .iter()
                .enumerate()
                .filter(|(_, r)| keep(&r.body))
                .map(|(i, r)| (r.date, i))
                .collect();
            by_date_then_id(&mut v, records);
            v
        };
        match cond {
            Condition::ListActive { list } => {
                let mut v: Vec<(Date, usize, bool)> = records
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| match &r.body {
                        RecordBody::List {
                            list: l, action, ..
                        } if l == list => Some((r.date, i, *action == ListAction::Add)),
                        _ => None,
                    })
                    .collect();
                v.sort_by_key(|e| e.0); // stable: same-day ties keep slice order
                match repairs {
                    Some(repairs) => Index::List(with_repairs(v, records, repairs)),
                    None => Index::List(v),
                }
            }
            Condition::Penalty {
                window_days,
                severity,
                min_fine_cny,
            } => Index::Window {
                days: i64::from(*window_days),
                dates: dated(&|b| match b {
                    RecordBody::Penalty {
                        severity: s,
                        fine_cny,
                        ..
                    } => {
                        let by_severity = severity.is_some_and(|min| *s >= min);
                        let by_fine = min_fine_cny.is_some_and(|min| *fine_cny >= min);
                        by_severity || by_fine || (severity.is_none() && min_fine_cny.is_none())
                    }
                    _ => false,
                }),
                min: 1,
                max: None,
            },
            Condition::FailedSampling {
                window_days,
                min_count,
                max_count,
            } => Index::Window {
                days: i64::from(*window_days),
                dates: dated(&|b| matches!(b, RecordBody::Sampling { passed: false, .. })),
                min: *min_count as usize,
                max: max_count.map(|m| m as usize),
            },
            Condition::Hazard { window_days } => Index::Window {
                days: i64::from(*window_days),
                dates: dated(
                    &|b| matches!(b, RecordBody::Inspection { hazards, .. } if *hazards > 0),
                ),
                min: 1,
                max: None,
            },
            Condition::SubstantiatedComplaints {
                window_days,
                min_count,
            } => Index::Window {
                days: i64::from(*window_days),
                dates: dated(&|b| {
                    matches!(
                        b,
                        RecordBody::Complaint {
                            substantiated: true,
                            ..
                        }
                    )
                }),
                min: *min_count as usize,
                max: None,
            },
            Condition::OverdueHazard => {
                let mut v: Vec<(Date, usize)> = records
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| match &r.body {
                        RecordBody::Inspection {
                            hazards,
                            deadline: Some(deadline),
                            rectified: false,
                            ..
                        } if *hazards > 0 => {
                            // Overdue from the day after the deadline, but not
                            // before the inspection itself is on record.
                            plus_days(*deadline, 1).map(|after| (after.max(r.date), i))
                        }
                        _ => None,
                    })
                    .collect();
                by_date_then_id(&mut v, records);
                Index::Overdue(v)
            }
            Condition::Publicity => Index::Publicity(
                records
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| match &r.body {
                        RecordBody::Penalty {
                            publicity_until: Some(until),
                            ..
                        } => {
                            let repaired = repairs
                                .and_then(|rp| rp.of_record(&r.id, r.date))
                                .map(|(d, _)| d);
                            publicity_last_day(r.date, *until, repaired)
                                .map(|last| (r.date, last, i, r.id.as_str()))
                        }
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    /// `Some(main record)` if the rule matches on day `d`.
    pub(super) fn eval(&self, d: Date) -> Option<usize> {
        match self {
            Index::Window {
                days,
                dates,
                min,
                max,
            } => {
                let hi = dates.partition_point(|e| e.0 <= d);
                let lo = match d.checked_sub(days.days()) {
                    Ok(start) => dates.partition_point(|e| e.0 <= start),
                    Err(_) => 0,
                };
                let n = hi - lo;
                (n >= *min && n > 0 && max.is_none_or(|m| n <= m)).then(|| dates[hi - 1].1)
            }
            Index::List(entries) => {
                let k = entries.partition_point(|e| e.0 <= d);
                match k.checked_sub(1).map(|j| entries[j]) {
                    // The entry in force.
                    Some((_, i, true)) => Some(i),
                    _ => None,
                }
            }
            Index::Overdue(v) => v.first().filter(|e| e.0 <= d).map(|e| e.1),
            Index::Publicity(v) => v
                .iter()
                .filter(|(from, until, _, _)| *from <= d && d <= *until)
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.3.cmp(a.3)))
                .map(|e| e.2),
        }
    }

    /// Every day on which the value of `eval` may change.
    fn candidates(&self, out: &mut Vec<Date>) {
        match self {
            Index::Window { days, dates, .. } => {
                for &(d, _) in dates {
                    out.push(d);
                    out.extend(plus_days(d, *days));
                }
            }
            Index::List(entries) => out.extend(entries.iter().map(|e| e.0)),
            Index::Overdue(v) => out.extend(v.iter().map(|e| e.0)),
            Index::Publicity(v) => {
                for &(from, until, _, _) in v {
                    out.push(from);
                    out.extend(plus_days(until, 1));
                }
            }
        }
    }
}

pub(super) struct Evaluator<'a> {
    pub(super) indexes: Vec<Index<'a>>,
    /// Per rule, its candidate days, sorted and distinct.
    candidates: Vec<Vec<Date>>,
    /// All candidate days, sorted and distinct.
    all: Vec<Date>,
}

impl<'a> Evaluator<'a> {
    pub(super) fn new(rules: &Rules, records: &'a [Record]) -> Evaluator<'a> {
        let repairs = Repairs::of(records);
        let indexes: Vec<Index> = rules
            .rules
            .iter()
            .map(|r| Index::build(&r.condition, records, r.repairable.then_some(&repairs)))
            .collect();
        let mut all = Vec::new();
        let candidates = indexes
            .iter()
            .map(|ix| {
                let mut c = Vec::new();
                ix.candidates(&mut c);
                c.sort_unstable();
                c.dedup();
                all.extend_from_slice(&c);
                c
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        Evaluator {
            indexes,
            candidates,
            all,
        }
    }

    pub(super) fn eval(&self, d: Date) -> Vec<Option<usize>> {
        self.indexes.iter().map(|ix| ix.eval(d)).collect()
    }

    /// Start of the unbroken stretch of days ending at `as_of` on which
    /// `holds` is true (it must hold on `as_of`); `None` if it reaches back
    /// before every candidate day. `holds` is constant between candidates.
    fn stretch_start(cands: &[Date], as_of: Date, holds: impl Fn(Date) -> bool) -> Option<Date> {
        let k = cands.partition_point(|c| *c <= as_of);
        if k == 0 {
            return None;
        }
        let mut start = k - 1;
        while start > 0 && holds(cands[start - 1]) {
            start -= 1;
        }
        Some(cands[start])
    }

    fn since(&self, rule: usize, as_of: Date) -> Option<Date> {
        let ix = &self.indexes[rule];
        Self::stretch_start(&self.candidates[rule], as_of, |d| ix.eval(d).is_some())
    }

    fn green_since(&self, as_of: Date) -> Option<Date> {
        let k = self.all.partition_point(|c| *c <= as_of);
        let none_match = |d: Date| self.indexes.iter().all(|ix| ix.eval(d).is_none());
        let start = Self::stretch_start(&self.all, as_of, none_match)?;
        // Green since before the first record that could matter: no date to show.
        (k > 0 && start != self.all[0]).then_some(start)
    }

    fn until(&self, rule: usize, as_of: Date) -> Option<Date> {
        let ix = &self.indexes[rule];
        let c = &self.candidates[rule];
        let k = c.partition_point(|d| *d <= as_of);
        c[k..].iter().copied().find(|d| ix.eval(*d).is_none())
    }

    fn next_change(&self, as_of: Date, now: &[Option<usize>]) -> Option<Date> {
        let k = self.all.partition_point(|d| *d <= as_of);
        self.all[k..].iter().copied().find(|&d| {
            self.indexes
                .iter()
                .zip(now)
                .any(|(ix, hit)| ix.eval(d).is_some() != hit.is_some())
        })
    }
}
