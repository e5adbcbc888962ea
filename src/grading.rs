//! Grading: the rules as data, the pure grading function and the projection
//! the scan page shows.
//!
//! Why it looks like this: grades must be explainable ("which rule, since
//! when, until when") and must improve by themselves when windows expire
//! (credit repair), so the batch job needs to know the next date a grade may
//! change. Rather than derive those dates with date arithmetic per rule (easy
//! to get wrong at the edges), every rule is evaluated as a predicate "does it
//! match on day `d`?" and the interesting days are found by evaluating it on
//! every *candidate* day the records imply (a record's date, the day a window
//! ends, the day after a deadline or a publicity period). Between two
//! consecutive candidates nothing can change, so scanning the candidates is
//! exact.
//!
//! No IO and no clock: `as_of` and `updated_at` are passed in.

use std::cmp::Reverse;
use std::collections::HashSet;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::domain::{parse_grade, CreditCode, Grade, MerchantId, RegionCode};
use crate::records::{
    ListAction, ListKind, Merchant, MerchantKind, Record, RecordBody, ReportType, Severity,
};

/// The default rules (CONTRACT §4), as shipped in `deploy/rules.toml`.
pub const DEFAULT_RULES_TOML: &str = include_str!("../deploy/rules.toml");

/// The rule id reported when no rule matches (CONTRACT §4, row `G`).
pub const GREEN_RULE: &str = "G";
/// What the consumer reads for a green grade.
pub const GREEN_TEXT: &str = "未发现列入名录、处罚、抽检不合格、未整改隐患或属实投诉等需关注的情形";
/// The rule id of a regulator's override in `reasons`.
pub const OVERRIDE_RULE: &str = "override";

/// How many items of each kind the projection lists.
pub const SUMMARY_ITEMS: usize = 10;
/// The window of `ComplaintSummary::substantiated_180d`.
const COMPLAINT_SUMMARY_DAYS: i64 = 180;
/// A penalty without `publicity_until` is shown for this long.
const PENALTY_SHOWN_DAYS: i64 = 365;

const WHEN_NAMES: [&str; 7] = [
    "list_active",
    "penalty",
    "failed_sampling",
    "overdue_hazard",
    "publicity",
    "hazard",
    "substantiated_complaints",
];

/// What a rule tests: a closed set of kinds, parameterised in the rules file.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The latest entry (date ≤ day) for this list is `add`.
    ListActive { list: ListKind },
    /// A penalty in the window with severity at least `severity` or a fine of
    /// at least `min_fine_cny` (if neither is set, any penalty).
    Penalty {
        window_days: u32,
        severity: Option<Severity>,
        min_fine_cny: Option<f64>,
    },
    /// The number of failed sampling tests in the window is in
    /// `min_count..=max_count`.
    FailedSampling {
        window_days: u32,
        min_count: u32,
        max_count: Option<u32>,
    },
    /// An inspection dated ≤ day with hazards > 0, not rectified, whose
    /// deadline is before the day. No window.
    OverdueHazard,
    /// A penalty dated ≤ day whose `publicity_until` ≥ day.
    Publicity,
    /// An inspection with hazards > 0 in the window.
    Hazard { window_days: u32 },
    /// At least `min_count` substantiated complaints in the window.
    SubstantiatedComplaints { window_days: u32, min_count: u32 },
}

/// One grading rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub grade: Grade,
    pub text: String,
    pub condition: Condition,
}

/// An ordered, validated rule set. The order is the order reasons are shown
/// in within one grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// Why a rules file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("rules file is not valid TOML: {0}")]
    Syntax(String),
    #[error("rules file: {0}")]
    File(String),
    #[error("rule {rule}: key `{key}`: {reason}")]
    Rule {
        /// The rule's id in backticks, or `#n` (1-based) if it has none.
        rule: String,
        key: String,
        reason: String,
    },
}

impl Default for Rules {
    /// The rules of `deploy/rules.toml`, compiled in.
    fn default() -> Self {
        Rules::from_toml(DEFAULT_RULES_TOML).expect("deploy/rules.toml is valid")
    }
}

impl Rules {
    /// Parses and checks a rules file; the error names the rule and key.
    pub fn from_toml(src: &str) -> Result<Rules, RulesError> {
        let table: toml::Table =
            toml::from_str(src).map_err(|e| RulesError::Syntax(e.to_string().trim().to_owned()))?;
        if let Some(key) = table.keys().find(|k| *k != "rule") {
            return Err(RulesError::File(format!(
                "unknown key `{key}` (expected only [[rule]] tables)"
            )));
        }
        let entries = match table.get("rule") {
            Some(toml::Value::Array(a)) if !a.is_empty() => a,
            Some(toml::Value::Array(_)) | None => {
                return Err(RulesError::File("no [[rule]] tables".into()))
            }
            Some(_) => {
                return Err(RulesError::File(
                    "`rule` must be written as [[rule]] tables".into(),
                ))
            }
        };
        let mut rules = Vec::with_capacity(entries.len());
        let mut seen = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let t = entry.as_table().ok_or_else(|| {
                RulesError::File(format!("rule #{}: expected a [[rule]] table", i + 1))
            })?;
            let rule = parse_rule(i, t)?;
            if !seen.insert(rule.id.clone()) {
                return Err(RulesError::Rule {
                    rule: format!("`{}`", rule.id),
                    key: "id".into(),
                    reason: "duplicate id".into(),
                });
            }
            rules.push(rule);
        }
        Ok(Rules { rules })
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Typed access to one `[[rule]]` table with errors that name rule and key.
struct RuleTable<'a> {
    label: String,
    t: &'a toml::Table,
}

impl RuleTable<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> RulesError {
        RulesError::Rule {
            rule: self.label.clone(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>, RulesError> {
        match self.t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, got {}", v.type_str()))),
        }
    }

    fn str(&self, key: &str) -> Result<&str, RulesError> {
        self.opt_str(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn opt_int(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<u32>, RulesError> {
        match self.t.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if range.contains(n) => Ok(Some(*n as u32)),
            Some(toml::Value::Integer(n)) => Err(self.err(
                key,
                format!("expected {}..={}, got {n}", range.start(), range.end()),
            )),
            Some(v) => Err(self.err(key, format!("expected an integer, got {}", v.type_str()))),
        }
    }

    fn int(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<u32, RulesError> {
        self.opt_int(key, range)?.ok_or_else(|| {
            self.err(
                key,
                format!("missing (required for when = \"{}\")", self.when()),
            )
        })
    }

    fn when(&self) -> &str {
        self.t.get("when").and_then(|v| v.as_str()).unwrap_or("?")
    }
}

const MAX_WINDOW_DAYS: i64 = 3650;

fn parse_rule(i: usize, t: &toml::Table) -> Result<Rule, RulesError> {
    let mut rt = RuleTable {
        label: format!("#{}", i + 1),
        t,
    };
    let id = rt.str("id")?.to_owned();
    let id_ok = !id.is_empty()
        && id.len() <= 16
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(rt.err("id", "expected 1-16 characters of A-Z a-z 0-9 _ -"));
    }
    if id == GREEN_RULE || id == OVERRIDE_RULE {
        return Err(rt.err("id", format!("`{id}` is reserved")));
    }
    rt.label = format!("`{id}`");
    let grade_raw = rt.str("grade")?;
    let grade = parse_grade(grade_raw).map_err(|_| {
        rt.err(
            "grade",
            format!("expected \"red\" or \"yellow\", got `{grade_raw}`"),
        )
    })?;
    if grade == Grade::Green {
        return Err(rt.err(
            "grade",
            "a rule must force \"red\" or \"yellow\" (green is the grade when no rule matches)",
        ));
    }
    let text = rt.str("text")?;
    if text.trim().is_empty() {
        return Err(rt.err("text", "must not be empty"));
    }
    let when = rt.str("when")?;
    let params: &[&str] = match when {
        "list_active" => &["list"],
        "penalty" => &["window_days", "severity", "min_fine_cny"],
        "failed_sampling" => &["window_days", "min_count", "max_count"],
        "overdue_hazard" | "publicity" => &[],
        "hazard" => &["window_days"],
        "substantiated_complaints" => &["window_days", "min_count"],
        other => {
            return Err(rt.err(
                "when",
                format!(
                    "unknown `{other}` (expected one of {})",
                    WHEN_NAMES.join(", ")
                ),
            ))
        }
    };
    for key in t.keys() {
        let common = matches!(key.as_str(), "id" | "grade" | "text" | "when");
        if !common && !params.contains(&key.as_str()) {
            let known = [
                "list",
                "window_days",
                "severity",
                "min_fine_cny",
                "min_count",
                "max_count",
            ];
            let reason = if known.contains(&key.as_str()) {
                format!("does not apply to when = \"{when}\"")
            } else {
                "unknown key".to_owned()
            };
            return Err(rt.err(key, reason));
        }
    }
    let window = |rt: &RuleTable| rt.int("window_days", 1..=MAX_WINDOW_DAYS);
    let condition = match when {
        "list_active" => {
            let raw = rt.str("list")?;
            let list = ListKind::from_name(raw).ok_or_else(|| {
                rt.err(
                    "list",
                    format!("expected \"serious\" or \"abnormal\", got `{raw}`"),
                )
            })?;
            Condition::ListActive { list }
        }
        "penalty" => {
            let severity = match rt.opt_str("severity")? {
                None => None,
                Some(raw) => Some(Severity::from_name(raw).ok_or_else(|| {
                    rt.err(
                        "severity",
                        format!("expected \"minor\", \"general\" or \"severe\", got `{raw}`"),
                    )
                })?),
            };
            let min_fine_cny = match t.get("min_fine_cny") {
                None => None,
                Some(toml::Value::Integer(n)) if *n >= 0 => Some(*n as f64),
                Some(toml::Value::Float(x)) if x.is_finite() && *x >= 0.0 => Some(*x),
                Some(_) => return Err(rt.err("min_fine_cny", "expected a number ≥ 0")),
            };
            Condition::Penalty {
                window_days: window(&rt)?,
                severity,
                min_fine_cny,
            }
        }
        "failed_sampling" => {
            let min_count = rt.int("min_count", 1..=1000)?;
            let max_count = rt.opt_int("max_count", 1..=1000)?;
            if max_count.is_some_and(|m| m < min_count) {
                return Err(rt.err("max_count", "must be ≥ min_count"));
            }
            Condition::FailedSampling {
                window_days: window(&rt)?,
                min_count,
                max_count,
            }
        }
        "overdue_hazard" => Condition::OverdueHazard,
        "publicity" => Condition::Publicity,
        "hazard" => Condition::Hazard {
            window_days: window(&rt)?,
        },
        _ => Condition::SubstantiatedComplaints {
            window_days: window(&rt)?,
            min_count: rt.int("min_count", 1..=1000)?,
        },
    };
    Ok(Rule {
        id,
        grade,
        text: text.to_owned(),
        condition,
    })
}

/// One line of "why": a rule that matches, or the override, or `G`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule id (`R2`, `Y4`, ...), `override` or `G`.
    pub rule: String,
    pub text: String,
    /// The first day of the unbroken stretch, ending at `as_of`, on which the
    /// rule has matched, as far as the records show.
    pub since: Option<Date>,
    /// The first day after `as_of` on which, with no new records, the rule
    /// stops matching; `None` if it does not end by itself. (For an override:
    /// its last day, `expires_at`.)
    pub until: Option<Date>,
    /// The id of the main record behind it.
    pub record: Option<String>,
}

/// A regulator's reclassification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub grade: Grade,
    pub reason: String,
    /// The last day it applies (inclusive); `None` until removed.
    pub expires_at: Option<Date>,
    pub actor: String,
    pub at: Timestamp,
}

impl Override {
    /// Active through `expires_at` inclusive.
    pub fn is_active(&self, today: Date) -> bool {
        self.expires_at.is_none_or(|e| today <= e)
    }

    /// The day it was made, in China Standard Time (UTC+8, no DST).
    pub fn date(&self) -> Date {
        china_date(self.at)
    }
}

/// The civil date of a timestamp in China Standard Time (UTC+8, no DST since 1991).
pub fn china_date(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
}

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
enum Index<'a> {
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

fn plus_days(d: Date, n: i64) -> Option<Date> {
    d.checked_add(n.days()).ok()
}

impl<'a> Index<'a> {
    fn build(cond: &Condition, records: &'a [Record]) -> Index<'a> {
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
                Index::List(v)
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
                        } if *until >= r.date => Some((r.date, *until, i, r.id.as_str())),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }

    /// `Some(main record)` if the rule matches on day `d`.
    fn eval(&self, d: Date) -> Option<usize> {
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

struct Evaluator<'a> {
    indexes: Vec<Index<'a>>,
    /// Per rule, its candidate days, sorted and distinct.
    candidates: Vec<Vec<Date>>,
    /// All candidate days, sorted and distinct.
    all: Vec<Date>,
}

impl<'a> Evaluator<'a> {
    fn new(rules: &Rules, records: &'a [Record]) -> Evaluator<'a> {
        let indexes: Vec<Index> = rules
            .rules
            .iter()
            .map(|r| Index::build(&r.condition, records))
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

    fn eval(&self, d: Date) -> Vec<Option<usize>> {
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

/// The merchant as the public may see it: personal data masked, no id number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicMerchant {
    pub id: MerchantId,
    pub name: String,
    pub kind: MerchantKind,
    pub uscc: Option<CreditCode>,
    pub address: String,
    pub region: RegionCode,
    pub categories: Vec<String>,
    /// The contact person, masked (`张*`).
    pub contact: Option<String>,
    /// The contact phone, masked (`138****5678`).
    pub phone: Option<String>,
}

impl PublicMerchant {
    pub fn from_merchant(m: &Merchant) -> PublicMerchant {
        PublicMerchant {
            id: m.id.clone(),
            name: m.name.clone(),
            kind: m.kind,
            uscc: m.uscc.clone(),
            address: m.address.clone(),
            region: m.region.clone(),
            categories: m.categories.clone(),
            contact: m.contact_name.as_deref().map(mask_name),
            phone: m.contact_phone.as_deref().map(mask_phone),
        }
    }
}

/// Masks a person's name: the first character, then one `*` per remaining
/// character (`张三` → `张*`). One character or less becomes `*`.
pub fn mask_name(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.len() <= 1 {
        return "*".to_owned();
    }
    let mut out = String::with_capacity(chars.len() + 3);
    out.push(chars[0]);
    out.extend(std::iter::repeat_n('*', chars.len() - 1));
    out
}

/// Masks a phone number: keeps the first 3 and last 4 characters of 11 or
/// more (`13812345678` → `138****5678`), only the last 4 of 8–10, nothing of
/// shorter input (`****`).
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        11.. => (3, 4),
        8..=10 => (0, 4),
        _ => (0, 0),
    };
    // Short input shows nothing, not even its length.
    let stars = if head + tail == 0 { 4 } else { n - head - tail };
    let mut out = String::with_capacity(n + 4);
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', stars));
    out.extend(&chars[n - tail..]);
    out
}

/// An on-site inspection as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionItem {
    pub id: String,
    pub date: Date,
    pub hazards: u32,
    pub deadline: Option<Date>,
    pub rectified: bool,
    pub rectified_on: Option<Date>,
}

/// A sampling test as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingItem {
    pub id: String,
    pub date: Date,
    pub product: String,
    pub standard: Option<String>,
    pub passed: bool,
    pub failed_items: Vec<String>,
}

/// A penalty as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenaltyItem {
    pub id: String,
    pub date: Date,
    pub decision_no: String,
    pub severity: Severity,
    pub fine_cny: f64,
    pub publicity_until: Option<Date>,
}

/// A complaint's outcome and date (never its text, which may name people).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintItem {
    pub id: String,
    pub date: Date,
    pub substantiated: bool,
}

/// Complaint counts (records dated ≤ as_of) and the most recent outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintSummary {
    pub total: u32,
    pub substantiated: u32,
    pub substantiated_180d: u32,
    pub recent: Vec<ComplaintItem>,
}

/// A list the merchant is on at as_of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListItem {
    /// The entry in force (the latest `add`).
    pub id: String,
    pub list: ListKind,
    /// The first day of the current stretch on the list.
    pub since: Date,
    pub reason: Option<String>,
}

/// A merchant self-report (type and date only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportItem {
    pub id: String,
    pub date: Date,
    pub report_type: ReportType,
}

/// The latest signed commitment (date only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitmentItem {
    pub id: String,
    pub date: Date,
}

/// Recent records for the scan page: records dated ≤ as_of, most recent
/// first, at most [`SUMMARY_ITEMS`] of each kind, no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub inspections: Vec<InspectionItem>,
    pub sampling: Vec<SamplingItem>,
    /// Penalties still in their publicity period (or, without one, dated in
    /// the last 365 days): a penalty whose publicity has ended is not shown.
    pub penalties: Vec<PenaltyItem>,
    pub complaints: ComplaintSummary,
    /// Active list entries.
    pub lists: Vec<ListItem>,
    pub self_reports: Vec<SelfReportItem>,
    pub commitment: Option<CommitmentItem>,
}

/// What the scan page shows for one merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub merchant: PublicMerchant,
    /// Effective at `as_of`: the override's grade if one is active, else computed.
    pub grade: Grade,
    pub computed_grade: Grade,
    /// The override active at `as_of`, if any.
    #[serde(rename = "override")]
    pub override_: Option<Override>,
    /// With an active override, its reason first; then the computed reasons.
    pub reasons: Vec<Reason>,
    pub records: RecordSummary,
    pub as_of: Date,
    pub updated_at: Timestamp,
    /// The earlier of the grading's next change and the day after the
    /// override expires.
    pub next_change_at: Option<Date>,
}

impl Projection {
    /// The grade to show on `today`, re-checking the override's expiry.
    pub fn effective(&self, today: Date) -> (Grade, Option<&Override>) {
        effective(self.computed_grade, self.override_.as_ref(), today)
    }
}

/// The grade to show on `today`: the override's while it is active, else
/// the computed one; with the override if it applies.
pub fn effective(
    computed: Grade,
    override_: Option<&Override>,
    today: Date,
) -> (Grade, Option<&Override>) {
    match override_ {
        Some(o) if o.is_active(today) => (o.grade, Some(o)),
        _ => (computed, None),
    }
}

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

fn summarize(records: &[Record], as_of: Date) -> RecordSummary {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_merchant;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }
    const AS_OF: &str = "2025-06-30";
    fn as_of() -> Date {
        d(AS_OF)
    }
    /// `as_of` plus `n` days.
    fn off(n: i64) -> Date {
        plus_days(as_of(), n).unwrap()
    }
    fn record(id: &str, date: Date, body: RecordBody) -> Record {
        Record {
            id: id.into(),
            merchant: MerchantId::parse("XZ-0001").unwrap(),
            date,
            source: None,
            body,
        }
    }
    fn insp(id: &str, date: Date, hazards: u32, deadline: Option<Date>, rectified: bool) -> Record {
        let body = RecordBody::Inspection {
            hazards,
            deadline,
            rectified,
            rectified_on: None,
        };
        record(id, date, body)
    }
    fn samp(id: &str, date: Date, passed: bool) -> Record {
        let body = RecordBody::Sampling {
            product: "散装白酒".into(),
            standard: None,
            passed,
            failed_items: if passed {
                vec![]
            } else {
                vec!["甲醇".into()]
            },
        };
        record(id, date, body)
    }
    fn pen(id: &str, date: Date, severity: Severity, fine: f64, until: Option<Date>) -> Record {
        let body = RecordBody::Penalty {
            decision_no: format!("P-{id}"),
            severity,
            fine_cny: fine,
            publicity_until: until,
        };
        record(id, date, body)
    }
    fn comp(id: &str, date: Date, substantiated: bool) -> Record {
        let body = RecordBody::Complaint {
            substantiated,
            summary: Some("张三 13812345678 投诉缺斤短两".into()),
        };
        record(id, date, body)
    }
    fn list(id: &str, date: Date, list: ListKind, action: ListAction) -> Record {
        let body = RecordBody::List {
            list,
            action,
            reason: Some("通过登记的住所无法联系".into()),
        };
        record(id, date, body)
    }
    use ListAction::{Add, Remove};
    use ListKind::{Abnormal, Serious};
    use Severity::{General, Minor, Severe};

    fn ids(records: &[Record], day: Date) -> Vec<&'static str> {
        let rules: &'static Rules = Box::leak(Box::new(Rules::default()));
        matching_rules(rules, records, day)
    }

    #[test]
    fn the_default_rules_are_those_of_the_contract() {
        let rules = Rules::default();
        let got: Vec<(&str, Grade)> = rules
            .rules()
            .iter()
            .map(|r| (r.id.as_str(), r.grade))
            .collect();
        use Grade::{Red, Yellow};
        assert_eq!(
            got,
            [
                ("R1", Red),
                ("R2", Red),
                ("R3", Red),
                ("R4", Red),
                ("Y1", Yellow),
                ("Y2", Yellow),
                ("Y3", Yellow),
                ("Y4", Yellow),
                ("Y5", Yellow)
            ]
        );
        let c = |id: &str| rules.get(id).unwrap().condition.clone();
        assert_eq!(c("R1"), Condition::ListActive { list: Serious });
        assert_eq!(
            c("R2"),
            Condition::Penalty {
                window_days: 365,
                severity: Some(Severe),
                min_fine_cny: Some(10000.0)
            }
        );
        assert_eq!(
            c("R3"),
            Condition::FailedSampling {
                window_days: 365,
                min_count: 2,
                max_count: None
            }
        );
        assert_eq!(c("R4"), Condition::OverdueHazard);
        assert_eq!(c("Y1"), Condition::ListActive { list: Abnormal });
        assert_eq!(c("Y2"), Condition::Publicity);
        assert_eq!(
            c("Y3"),
            Condition::FailedSampling {
                window_days: 365,
                min_count: 1,
                max_count: Some(1)
            }
        );
        assert_eq!(c("Y4"), Condition::Hazard { window_days: 180 });
        assert_eq!(
            c("Y5"),
            Condition::SubstantiatedComplaints {
                window_days: 180,
                min_count: 3
            }
        );
        assert_eq!(
            rules.get("R3").unwrap().text,
            "近一年内2次及以上监督抽检不合格"
        );
    }

    #[test]
    fn every_rule_matches_exactly_inside_its_window() {
        let f = false;
        let t = true;
        let cases: Vec<(&str, Vec<Record>, Vec<&str>)> = vec![
            ("no records", vec![], vec![]),
            // R1 / Y1: lists
            (
                "serious add long ago",
                vec![list("a", off(-1000), Serious, Add)],
                vec!["R1"],
            ),
            (
                "serious add today",
                vec![list("a", off(0), Serious, Add)],
                vec!["R1"],
            ),
            (
                "serious add tomorrow does not count yet",
                vec![list("a", off(1), Serious, Add)],
                vec![],
            ),
            (
                "serious add then remove",
                vec![
                    list("a", off(-10), Serious, Add),
                    list("b", off(-5), Serious, Remove),
                ],
                vec![],
            ),
            (
                "remove dated today counts",
                vec![
                    list("a", off(-10), Serious, Add),
                    list("b", off(0), Serious, Remove),
                ],
                vec![],
            ),
            (
                "future remove does not count yet",
                vec![
                    list("a", off(-10), Serious, Add),
                    list("b", off(1), Serious, Remove),
                ],
                vec!["R1"],
            ),
            (
                "remove then add, given in reverse order",
                vec![
                    list("b", off(-5), Serious, Add),
                    list("a", off(-10), Serious, Remove),
                ],
                vec!["R1"],
            ),
            (
                "same-day tie: later in slice wins (add)",
                vec![
                    list("a", off(-5), Serious, Remove),
                    list("b", off(-5), Serious, Add),
                ],
                vec!["R1"],
            ),
            (
                "same-day tie: later in slice wins (remove)",
                vec![
                    list("a", off(-5), Serious, Add),
                    list("b", off(-5), Serious, Remove),
                ],
                vec![],
            ),
            (
                "abnormal add",
                vec![list("a", off(-3), Abnormal, Add)],
                vec!["Y1"],
            ),
            (
                "lists are independent",
                vec![
                    list("a", off(-3), Abnormal, Add),
                    list("b", off(-2), Serious, Remove),
                ],
                vec!["Y1"],
            ),
            (
                "remove without add",
                vec![list("a", off(-3), Abnormal, Remove)],
                vec![],
            ),
            // R2: penalty in the last 365 days
            (
                "severe penalty 365 days ago",
                vec![pen("p", off(-365), Severe, 0.0, None)],
                vec![],
            ),
            (
                "severe penalty 364 days ago",
                vec![pen("p", off(-364), Severe, 0.0, None)],
                vec!["R2"],
            ),
            (
                "severe penalty today",
                vec![pen("p", off(0), Severe, 0.0, None)],
                vec!["R2"],
            ),
            (
                "severe penalty tomorrow",
                vec![pen("p", off(1), Severe, 0.0, None)],
                vec![],
            ),
            (
                "fine of exactly 10000",
                vec![pen("p", off(-10), Minor, 10000.0, None)],
                vec!["R2"],
            ),
            (
                "fine just under 10000",
                vec![pen("p", off(-10), General, 9999.99, None)],
                vec![],
            ),
            // R3 / Y3: failed sampling in the last 365 days
            (
                "two failures, older one on day -364",
                vec![samp("s1", off(-364), f), samp("s2", off(-10), f)],
                vec!["R3"],
            ),
            (
                "two failures, older one on day -365",
                vec![samp("s1", off(-365), f), samp("s2", off(-10), f)],
                vec!["Y3"],
            ),
            (
                "three failures",
                vec![
                    samp("s1", off(-300), f),
                    samp("s2", off(-200), f),
                    samp("s3", off(0), f),
                ],
                vec!["R3"],
            ),
            (
                "one failure and a future one",
                vec![samp("s1", off(-1), f), samp("s2", off(1), f)],
                vec!["Y3"],
            ),
            (
                "one failure on day -364",
                vec![samp("s1", off(-364), f)],
                vec!["Y3"],
            ),
            (
                "one failure on day -365",
                vec![samp("s1", off(-365), f)],
                vec![],
            ),
            (
                "passed tests do not count",
                vec![samp("s1", off(-3), t), samp("s2", off(-2), t)],
                vec![],
            ),
            // R4: overdue hazard (no window)
            (
                "deadline yesterday",
                vec![insp("i", off(-30), 1, Some(off(-1)), f)],
                vec!["R4", "Y4"],
            ),
            (
                "deadline today",
                vec![insp("i", off(-30), 1, Some(off(0)), f)],
                vec!["Y4"],
            ),
            (
                "deadline tomorrow",
                vec![insp("i", off(-30), 1, Some(off(1)), f)],
                vec!["Y4"],
            ),
            (
                "rectified",
                vec![insp("i", off(-30), 1, Some(off(-1)), t)],
                vec!["Y4"],
            ),
            (
                "no deadline",
                vec![insp("i", off(-30), 1, None, f)],
                vec!["Y4"],
            ),
            (
                "no hazards",
                vec![insp("i", off(-30), 0, Some(off(-1)), f)],
                vec![],
            ),
            (
                "overdue long ago",
                vec![insp("i", off(-400), 2, Some(off(-380)), f)],
                vec!["R4"],
            ),
            (
                "future inspection",
                vec![insp("i", off(1), 2, Some(off(-10)), f)],
                vec![],
            ),
            // Y2: publicity_until >= as_of
            (
                "publicity ended yesterday",
                vec![pen("p", off(-30), Minor, 100.0, Some(off(-1)))],
                vec![],
            ),
            (
                "publicity ends today",
                vec![pen("p", off(-30), Minor, 100.0, Some(off(0)))],
                vec!["Y2"],
            ),
            (
                "publicity ends tomorrow",
                vec![pen("p", off(-30), Minor, 100.0, Some(off(1)))],
                vec!["Y2"],
            ),
            (
                "future penalty in publicity",
                vec![pen("p", off(1), Minor, 100.0, Some(off(100)))],
                vec![],
            ),
            (
                "severe and in publicity",
                vec![pen("p", off(-30), Severe, 100.0, Some(off(100)))],
                vec!["R2", "Y2"],
            ),
            // Y4: hazards in the last 180 days
            (
                "hazard 180 days ago",
                vec![insp("i", off(-180), 1, None, t)],
                vec![],
            ),
            (
                "hazard 179 days ago",
                vec![insp("i", off(-179), 1, None, t)],
                vec!["Y4"],
            ),
            (
                "hazard tomorrow",
                vec![insp("i", off(1), 1, None, t)],
                vec![],
            ),
            // Y5: >= 3 substantiated complaints in the last 180 days
            (
                "three, oldest on day -179",
                vec![
                    comp("c1", off(-179), t),
                    comp("c2", off(-100), t),
                    comp("c3", off(0), t),
                ],
                vec!["Y5"],
            ),
            (
                "three, oldest on day -180",
                vec![
                    comp("c1", off(-180), t),
                    comp("c2", off(-100), t),
                    comp("c3", off(0), t),
                ],
                vec![],
            ),
            (
                "three, newest tomorrow",
                vec![
                    comp("c1", off(-10), t),
                    comp("c2", off(-5), t),
                    comp("c3", off(1), t),
                ],
                vec![],
            ),
            (
                "unsubstantiated ones do not count",
                vec![
                    comp("c1", off(-10), t),
                    comp("c2", off(-5), t),
                    comp("c3", off(-1), f),
                ],
                vec![],
            ),
        ];
        for (what, records, want) in cases {
            assert_eq!(ids(&records, as_of()), want, "{what}");
        }
    }

    #[test]
    fn the_worst_rule_gives_the_grade_and_reasons_come_worst_first() {
        let records = vec![
            insp("i", off(-10), 1, None, true),
            list("l", off(-20), Abnormal, Add),
            samp("s1", off(-30), false),
            samp("s2", off(-40), false),
        ];
        let g = grade(&Rules::default(), &records, as_of());
        assert_eq!(g.grade, Grade::Red);
        let rules: Vec<&str> = g.reasons.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(rules, ["R3", "Y1", "Y4"]);
        assert_eq!(g.reasons[0].text, "近一年内2次及以上监督抽检不合格");

        let g = grade(&Rules::default(), &records[..2], as_of());
        assert_eq!(g.grade, Grade::Yellow);
    }

    #[test]
    fn no_matching_rule_is_green_with_a_g_reason() {
        let g = grade(&Rules::default(), &[], as_of());
        assert_eq!(g.grade, Grade::Green);
        assert_eq!(g.next_change_at, None);
        assert_eq!(g.reasons.len(), 1);
        assert_eq!(g.reasons[0].rule, "G");
        assert_eq!(g.reasons[0].since, None);

        // Green again since the severe penalty left its window.
        let records = [
            pen("p", off(-400), Severe, 0.0, None),
            samp("ok", off(-3), true),
        ];
        let g = grade(&Rules::default(), &records, as_of());
        assert_eq!(g.grade, Grade::Green);
        assert_eq!(g.reasons[0].since, Some(off(-35)));
    }

    #[test]
    fn reasons_say_since_until_and_which_record() {
        let rules = Rules::default();
        let reason = |records: &[Record], rule: &str| {
            grade(&rules, records, as_of())
                .reasons
                .into_iter()
                .find(|r| r.rule == rule)
                .unwrap_or_else(|| panic!("{rule} does not match"))
        };
        // Window: since the older penalty, until the newer one leaves the window.
        let r = reason(
            &[
                pen("p1", off(-300), Severe, 0.0, None),
                pen("p2", off(-10), Severe, 0.0, None),
            ],
            "R2",
        );
        assert_eq!(
            (r.since, r.until, r.record.as_deref()),
            (Some(off(-300)), Some(off(355)), Some("p2"))
        );
        // Two separate stretches: since the start of the current one.
        let r = reason(
            &[
                pen("p1", off(-800), Severe, 0.0, None),
                pen("p2", off(-10), Severe, 0.0, None),
            ],
            "R2",
        );
        assert_eq!(r.since, Some(off(-10)));
        // Lists: since the first add of the current stretch, no end.
        let r = reason(
            &[
                list("a", off(-50), Serious, Add),
                list("b", off(-20), Serious, Add),
            ],
            "R1",
        );
        assert_eq!(
            (r.since, r.until, r.record.as_deref()),
            (Some(off(-50)), None, Some("b"))
        );
        let r = reason(
            &[
                list("a", off(-100), Serious, Add),
                list("b", off(-60), Serious, Remove),
                list("c", off(-20), Serious, Add),
            ],
            "R1",
        );
        assert_eq!(r.since, Some(off(-20)));
        // A future removal ends it.
        let r = reason(
            &[
                list("a", off(-50), Serious, Add),
                list("b", off(7), Serious, Remove),
            ],
            "R1",
        );
        assert_eq!(r.until, Some(off(7)));
        // Overdue hazard: since the day after the deadline, no end.
        let r = reason(&[insp("i", off(-30), 1, Some(off(-5)), false)], "R4");
        assert_eq!(
            (r.since, r.until, r.record.as_deref()),
            (Some(off(-4)), None, Some("i"))
        );
        // Publicity: until the day after it ends.
        let r = reason(&[pen("p", off(-30), Minor, 100.0, Some(off(5)))], "Y2");
        assert_eq!((r.since, r.until), (Some(off(-30)), Some(off(6))));
        // R3 turns into Y3 when the older failure leaves the window.
        let recs = [samp("s1", off(-300), false), samp("s2", off(-100), false)];
        let r = reason(&recs, "R3");
        assert_eq!(
            (r.since, r.until, r.record.as_deref()),
            (Some(off(-100)), Some(off(65)), Some("s2"))
        );
    }

    #[test]
    fn next_change_at_finds_each_kind_of_event() {
        let f = false;
        let cases: Vec<(&str, Vec<Record>, Option<Date>)> = vec![
            ("nothing ever changes", vec![], None),
            (
                "a list entry never expires",
                vec![list("a", off(-5), Serious, Add)],
                None,
            ),
            (
                "a window ends",
                vec![pen("p", off(-10), Severe, 0.0, None)],
                Some(off(355)),
            ),
            (
                "the later of two overlapping windows",
                vec![
                    insp("i1", off(-100), 1, None, true),
                    insp("i2", off(-10), 1, None, true),
                ],
                Some(off(170)),
            ),
            (
                "a future record starts counting",
                vec![samp("s", off(20), f)],
                Some(off(20)),
            ),
            (
                "a future list removal",
                vec![
                    list("a", off(-5), Abnormal, Add),
                    list("b", off(40), Abnormal, Remove),
                ],
                Some(off(40)),
            ),
            (
                "a publicity period ends",
                vec![pen("p", off(-10), General, 100.0, Some(off(5)))],
                Some(off(6)),
            ),
            (
                "publicity ending today ends tomorrow",
                vec![pen("p", off(-10), General, 100.0, Some(off(0)))],
                Some(off(1)),
            ),
            (
                "a deadline passes",
                vec![insp("i", off(-10), 1, Some(off(3)), f)],
                Some(off(4)),
            ),
            (
                "R3 becomes Y3",
                vec![samp("s1", off(-300), f), samp("s2", off(-100), f)],
                Some(off(65)),
            ),
            (
                "an expired window far back changes nothing",
                vec![samp("s1", off(-900), f)],
                None,
            ),
            (
                "complaints: the third-oldest leaving ends Y5",
                vec![
                    comp("c1", off(-170), true),
                    comp("c2", off(-100), true),
                    comp("c3", off(-50), true),
                ],
                Some(off(10)),
            ),
        ];
        let rules = Rules::default();
        for (what, records, want) in cases {
            assert_eq!(
                grade(&rules, &records, as_of()).next_change_at,
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn overrides_are_active_through_their_expiry_day() {
        let o = |expires_at| Override {
            grade: Grade::Red,
            reason: "现场检查发现重大隐患，待复查".into(),
            expires_at,
            actor: "xz-admin".into(),
            at: "2025-06-01T16:30:00Z".parse().unwrap(),
        };
        assert!(o(None).is_active(off(10_000)));
        assert!(o(Some(off(0))).is_active(off(-1)));
        assert!(o(Some(off(0))).is_active(off(0)));
        assert!(!o(Some(off(0))).is_active(off(1)));
        // 16:30 UTC is already the next day in China.
        assert_eq!(o(None).date(), d("2025-06-02"));
    }

    fn merchant() -> Merchant {
        parse_merchant(
            r#"{"id":"XZ-0001","name":"叙州区好味超市","kind":"shop","uscc":"91350100M000100Y43","address":"叙州区南岸东路1号","region":"511521","categories":["食品"],"contact_name":"张三","contact_phone":"13812345678","id_number":"511521199001011234"}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_projection_applies_an_active_override_and_rechecks_it_when_read() {
        let rules = Rules::default();
        let records = [insp("i", off(-10), 1, None, true)];
        let updated: Timestamp = "2025-06-30T01:00:00Z".parse().unwrap();
        let ov = Override {
            grade: Grade::Red,
            reason: "多次被举报，重点监管".into(),
            expires_at: Some(off(20)),
            actor: "xz-admin".into(),
            at: "2025-06-01T01:00:00Z".parse().unwrap(),
        };
        let p = project(&merchant(), &records, Some(&ov), &rules, as_of(), updated);
        assert_eq!((p.grade, p.computed_grade), (Grade::Red, Grade::Yellow));
        assert_eq!(p.reasons[0].rule, "override");
        assert_eq!(p.reasons[0].since, Some(d("2025-06-01")));
        assert_eq!(p.reasons[0].until, Some(off(20)));
        assert_eq!(p.reasons[1].rule, "Y4");
        assert_eq!(
            p.next_change_at,
            Some(off(21)),
            "override expiry comes before Y4 ends"
        );
        assert_eq!(p.effective(off(20)).0, Grade::Red);
        assert_eq!(p.effective(off(21)), (Grade::Yellow, None));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["override"]["grade"], "red");
        assert_eq!(json["grade"], "red");

        // An override that has already expired is not carried.
        let expired = Override {
            expires_at: Some(off(-1)),
            ..ov.clone()
        };
        let p = project(
            &merchant(),
            &records,
            Some(&expired),
            &rules,
            as_of(),
            updated,
        );
        assert_eq!((p.grade, p.override_.as_ref()), (Grade::Yellow, None));
        assert_eq!(p.reasons[0].rule, "Y4");
        assert_eq!(p.next_change_at, Some(off(170)));

        // Without expiry it never ends by itself.
        let forever = Override {
            expires_at: None,
            grade: Grade::Green,
            ..ov
        };
        let p = project(
            &merchant(),
            &records,
            Some(&forever),
            &rules,
            as_of(),
            updated,
        );
        assert_eq!(p.grade, Grade::Green);
        assert_eq!(p.next_change_at, Some(off(170)));
        assert_eq!(p.effective(off(5000)).0, Grade::Green);
    }

    #[test]
    fn the_projection_shows_no_personal_data() {
        let records = [
            comp("c1", off(-5), true),
            comp("c2", off(-400), false),
            samp("s", off(-3), false),
        ];
        let p = project(
            &merchant(),
            &records,
            None,
            &Rules::default(),
            as_of(),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(p.merchant.contact.as_deref(), Some("张*"));
        assert_eq!(p.merchant.phone.as_deref(), Some("138****5678"));
        let text = serde_json::to_string(&p).unwrap();
        for secret in [
            "13812345678",
            "511521199001011234",
            "张三",
            "缺斤短两",
            "id_number",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let c = &p.records.complaints;
        assert_eq!((c.total, c.substantiated, c.substantiated_180d), (2, 1, 1));
        assert_eq!(c.recent[0].id, "c1");
    }

    #[test]
    fn the_record_summary_is_recent_first_bounded_and_public_only() {
        let mut records: Vec<Record> = (0..15)
            .map(|i| samp(&format!("s{i:02}"), off(-i * 7), true))
            .collect();
        records.push(samp("future", off(3), false));
        records.push(pen("old", off(-500), Severe, 20000.0, Some(off(-100))));
        records.push(pen("public", off(-500), General, 500.0, Some(off(10))));
        records.push(pen("recent", off(-30), Minor, 50.0, None));
        records.push(pen("stale", off(-365), Minor, 50.0, None));
        records.push(list("l1", off(-40), Abnormal, Add));
        records.push(list("l2", off(-30), Abnormal, Add));
        records.push(list("l3", off(-20), Serious, Add));
        records.push(list("l4", off(-10), Serious, Remove));
        records.push(record(
            "cm",
            off(-60),
            RecordBody::Commitment {
                summary: Some("本人张三承诺".into()),
            },
        ));
        records.push(record(
            "sr",
            off(-2),
            RecordBody::SelfReport {
                report_type: ReportType::Invoice,
                summary: Some("x".into()),
            },
        ));
        let s = summarize(&records, as_of());
        let sampling: Vec<&str> = s.sampling.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            sampling,
            ["s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"]
        );
        let penalties: Vec<&str> = s.penalties.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(penalties, ["recent", "public"]);
        assert_eq!(s.lists.len(), 1);
        assert_eq!((s.lists[0].id.as_str(), s.lists[0].since), ("l2", off(-40)));
        assert_eq!(s.commitment.as_ref().map(|c| c.id.as_str()), Some("cm"));
        assert_eq!(s.self_reports[0].report_type, ReportType::Invoice);
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("张三"));
    }

    #[test]
    fn masking_never_returns_the_input() {
        let cases = [
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("张", "*"),
            ("", "*"),
            (" 李四 ", "李*"),
            ("Li Wei", "L*****"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_name(input), want, "{input:?}");
        }
        let cases = [
            ("13812345678", "138****5678"),
            ("+8613812345678", "+86*******5678"),
            ("028-12345678", "028*****5678"),
            ("12345678", "****5678"),
            ("1234567", "****"),
            ("110", "****"),
            ("", "****"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_phone(input), want, "{input:?}");
        }
    }

    #[test]
    fn invalid_rules_files_are_refused_naming_rule_and_key() {
        let ok = "[[rule]]\nid = \"X1\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"hazard\"\nwindow_days = 30\n";
        assert!(Rules::from_toml(ok).is_ok());
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "no [[rule]] tables"),
            ("[[rule]\n".into(), "not valid TOML"),
            ("colour = 1\n".into(), "unknown key `colour`"),
            (ok.replace("when = \"hazard\"", "when = \"weather\""), "rule `X1`: key `when`: unknown `weather`"),
            (ok.replace("window_days = 30\n", ""), "rule `X1`: key `window_days`: missing (required for when = \"hazard\")"),
            (ok.replace("window_days = 30", "window_days = 0"), "rule `X1`: key `window_days`: expected 1..=3650, got 0"),
            (ok.replace("window_days = 30", "window_days = \"30\""), "rule `X1`: key `window_days`: expected an integer, got string"),
            (format!("{ok}{ok}"), "rule `X1`: key `id`: duplicate id"),
            (ok.replace("grade = \"red\"", "grade = \"purple\""), "rule `X1`: key `grade`: expected \"red\" or \"yellow\", got `purple`"),
            (ok.replace("grade = \"red\"", "grade = \"green\""), "rule `X1`: key `grade`: a rule must force"),
            (ok.replace("id = \"X1\"\n", ""), "rule #1: key `id`: missing"),
            (ok.replace("id = \"X1\"", "id = \"G\""), "key `id`: `G` is reserved"),
            (ok.replace("text = \"t\"", "text = \" \""), "rule `X1`: key `text`: must not be empty"),
            (format!("{ok}list = \"serious\"\n"), "rule `X1`: key `list`: does not apply to when = \"hazard\""),
            (format!("{ok}windw_days = 3\n"), "rule `X1`: key `windw_days`: unknown key"),
            (
                "[[rule]]\nid = \"L\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"list_active\"\nlist = \"black\"\n".into(),
                "rule `L`: key `list`: expected \"serious\" or \"abnormal\", got `black`",
            ),
            (
                "[[rule]]\nid = \"S\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"failed_sampling\"\nwindow_days = 9\nmin_count = 3\nmax_count = 2\n".into(),
                "rule `S`: key `max_count`: must be ≥ min_count",
            ),
            (
                "[[rule]]\nid = \"P\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"penalty\"\nwindow_days = 9\nseverity = \"grave\"\n".into(),
                "rule `P`: key `severity`: expected",
            ),
            (
                "[[rule]]\nid = \"P\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"penalty\"\nwindow_days = 9\nmin_fine_cny = -1\n".into(),
                "rule `P`: key `min_fine_cny`: expected a number ≥ 0",
            ),
        ];
        for (src, want) in cases {
            let err = Rules::from_toml(&src).expect_err(&src).to_string();
            assert!(err.contains(want), "{src}\n  got:  {err}\n  want: {want}");
        }
    }

    #[test]
    fn rules_are_data() {
        // A stricter county: any penalty in 90 days is yellow.
        let src = "[[rule]]\nid = \"P90\"\ngrade = \"yellow\"\ntext = \"近三个月内受到行政处罚\"\nwhen = \"penalty\"\nwindow_days = 90\n";
        let rules = Rules::from_toml(src).unwrap();
        let g = grade(&rules, &[pen("p", off(-89), Minor, 1.0, None)], as_of());
        assert_eq!(
            (g.grade, g.reasons[0].rule.as_str()),
            (Grade::Yellow, "P90")
        );
        assert_eq!(g.next_change_at, Some(off(1)));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn body() -> impl Strategy<Value = RecordBody> {
            let date = || proptest::option::of((-500i64..200).prop_map(off));
            prop_oneof![
                (0u32..3, date(), any::<bool>()).prop_map(|(hazards, deadline, rectified)| {
                    RecordBody::Inspection {
                        hazards,
                        deadline,
                        rectified,
                        rectified_on: None,
                    }
                }),
                any::<bool>().prop_map(|passed| RecordBody::Sampling {
                    product: "x".into(),
                    standard: None,
                    passed,
                    failed_items: vec![]
                }),
                (
                    0usize..3,
                    prop_oneof![Just(0.0), Just(500.0), Just(10000.0)],
                    date()
                )
                    .prop_map(|(s, fine_cny, publicity_until)| {
                        RecordBody::Penalty {
                            decision_no: "P".into(),
                            severity: Severity::ALL[s],
                            fine_cny,
                            publicity_until,
                        }
                    }),
                any::<bool>().prop_map(|substantiated| RecordBody::Complaint {
                    substantiated,
                    summary: None
                }),
                (any::<bool>(), any::<bool>()).prop_map(|(serious, add)| RecordBody::List {
                    list: if serious { Serious } else { Abnormal },
                    action: if add { Add } else { Remove },
                    reason: None
                }),
            ]
        }

        fn records() -> impl Strategy<Value = Vec<Record>> {
            proptest::collection::vec((-600i64..120, body()), 0..14).prop_map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (day, body))| record(&format!("r{i:02}"), off(day), body))
                    .collect()
            })
        }

        fn adverse() -> impl Strategy<Value = Record> {
            (-600i64..120, body())
                .prop_filter("adverse", |(_, b)| match b {
                    RecordBody::Inspection { hazards, .. } => *hazards > 0,
                    RecordBody::Sampling { passed, .. } => !passed,
                    RecordBody::Penalty { .. } => true,
                    RecordBody::Complaint { substantiated, .. } => *substantiated,
                    RecordBody::List { action, .. } => *action == Add,
                    _ => false,
                })
                .prop_map(|(day, body)| record("new", off(day), body))
        }

        proptest! {
            #[test]
            fn an_adverse_record_never_improves_the_grade(mut recs in records(), extra in adverse()) {
                let rules = Rules::default();
                let before = grade(&rules, &recs, as_of()).grade;
                recs.push(extra);
                let after = grade(&rules, &recs, as_of()).grade;
                prop_assert!(after >= before, "{:?} -> {:?}", before, after);
            }

            #[test]
            fn grading_does_not_depend_on_record_order(
                recs in records().prop_map(|mut v| {
                    // Same-day entries of one list are ordered by the slice: keep one.
                    let mut seen = HashSet::new();
                    v.retain(|r| match &r.body {
                        RecordBody::List { list, .. } => seen.insert((*list, r.date)),
                        _ => true,
                    });
                    v
                }).prop_shuffle().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
            ) {
                let rules = Rules::default();
                let (a, b) = recs;
                prop_assert_eq!(grade(&rules, &a, as_of()), grade(&rules, &a, as_of()));
                prop_assert_eq!(grade(&rules, &a, as_of()), grade(&rules, &b, as_of()));
            }

            #[test]
            fn next_change_at_is_the_first_day_the_matching_set_changes(recs in records()) {
                let rules = Rules::default();
                let g = grade(&rules, &recs, as_of());
                let ev = Evaluator::new(&rules, &recs);
                let set = |day: Date| ev.eval(day).iter().map(Option::is_some).collect::<Vec<_>>();
                let now = set(as_of());
                prop_assert_eq!(matching_rules(&rules, &recs, as_of()).len(), now.iter().filter(|m| **m).count());
                let horizon = g.next_change_at.unwrap_or(off(1000));
                prop_assert!(horizon > as_of());
                let mut day = off(1);
                while day < horizon {
                    prop_assert_eq!(&set(day), &now, "changed on {} before {:?}", day, g.next_change_at);
                    day = plus_days(day, 1).unwrap();
                }
                if let Some(n) = g.next_change_at {
                    prop_assert_ne!(set(n), now);
                }
            }

            #[test]
            fn since_and_until_bound_the_stretch_a_rule_matches(recs in records()) {
                let rules = Rules::default();
                let g = grade(&rules, &recs, as_of());
                for r in g.reasons.iter().filter(|r| r.rule != GREEN_RULE) {
                    let ev = Evaluator::new(&rules, &recs);
                    let i = rules.rules().iter().position(|x| x.id == r.rule).unwrap();
                    let holds = |day: Date| ev.indexes[i].eval(day).is_some();
                    let since = r.since.expect("a matching rule has a since");
                    prop_assert!(since <= as_of());
                    prop_assert!(!holds(plus_days(since, -1).unwrap()), "{} also matched before {}", r.rule, since);
                    let end = r.until.unwrap_or(off(1000));
                    let mut day = since;
                    while day < end {
                        prop_assert!(holds(day), "{} not matching on {}", r.rule, day);
                        day = plus_days(day, 1).unwrap();
                    }
                    if let Some(until) = r.until {
                        prop_assert!(!holds(until));
                    }
                }
            }
        }
    }
}
