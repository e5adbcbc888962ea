//! The rules as data: `deploy/rules.toml` (CONTRACT §4) parsed into a
//! checked, ordered [`Rules`] whose errors name the rule and the key.

use std::collections::HashSet;

use crate::model::{parse_grade, Grade, ListAction, ListKind, RecordBody, Severity, OVERRIDE_RULE};

/// The rule id reported when no rule matches (CONTRACT §4, row `G`).
pub const GREEN_RULE: &str = "G";
/// What the consumer reads for a green grade.
pub const GREEN_TEXT: &str = "未发现列入名录、处罚、抽检不合格、未整改隐患或属实投诉等需关注的情形";

/// The default rules (CONTRACT §4), as shipped in `deploy/rules.toml`.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../deploy/rules.toml");

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
    /// Whether an accepted credit repair ends this rule for the record it
    /// repairs (`repairable = true` in the rules file): only yellow rules
    /// of kind `publicity` or `list_active`.
    pub repairable: bool,
}

/// An ordered, validated rule set. The order is the order reasons are shown
/// in within one grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub(super) rules: Vec<Rule>,
    pub(super) patrol: PatrolFrequency,
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
        if let Some(key) = table
            .keys()
            .find(|k| !matches!(k.as_str(), "rule" | "patrol"))
        {
            return Err(RulesError::File(format!(
                "unknown key `{key}` (expected [[rule]] tables and [patrol])"
            )));
        }
        let patrol = PatrolFrequency::from_table(table.get("patrol"))?;
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
        Ok(Rules { rules, patrol })
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The repairable rules a credit repair of `record` would end: a
    /// penalty with a publicity period, or an `add` entry of a list.
    pub fn repair_ends(&self, record: &RecordBody) -> Vec<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.repairable)
            .filter(|r| match (&r.condition, record) {
                (
                    Condition::Publicity,
                    RecordBody::Penalty {
                        publicity_until: Some(_),
                        ..
                    },
                ) => true,
                (
                    Condition::ListActive { list },
                    RecordBody::List {
                        list: l,
                        action: ListAction::Add,
                        ..
                    },
                ) => list == l,
                _ => false,
            })
            .collect()
    }

    /// How often an assistant patrols a merchant of each grade.
    pub fn patrol(&self) -> &PatrolFrequency {
        &self.patrol
    }
}

/// `[patrol]`: days between patrols of a merchant by its live grade
/// (CONTRACT §7); a key left out keeps its default (red 30, yellow 90,
/// green 365).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatrolFrequency {
    pub red: u32,
    pub yellow: u32,
    pub green: u32,
}

impl Default for PatrolFrequency {
    fn default() -> Self {
        PatrolFrequency {
            red: 30,
            yellow: 90,
            green: 365,
        }
    }
}

impl PatrolFrequency {
    /// Days between patrols of a merchant of grade `g`.
    pub fn days(&self, g: Grade) -> u32 {
        match g {
            Grade::Red => self.red,
            Grade::Yellow => self.yellow,
            Grade::Green => self.green,
        }
    }

    fn from_table(v: Option<&toml::Value>) -> Result<PatrolFrequency, RulesError> {
        let mut out = PatrolFrequency::default();
        let Some(v) = v else {
            return Ok(out);
        };
        let err =
            |key: &str, reason: String| RulesError::File(format!("[patrol] key `{key}`: {reason}"));
        let t = v
            .as_table()
            .ok_or_else(|| RulesError::File("`patrol` must be a [patrol] table".into()))?;
        for (key, value) in t {
            let slot = match key.as_str() {
                "red" => &mut out.red,
                "yellow" => &mut out.yellow,
                "green" => &mut out.green,
                _ => return Err(err(key, "unknown key (expected red, yellow, green)".into())),
            };
            *slot = match value {
                toml::Value::Integer(n) if (1..=MAX_WINDOW_DAYS).contains(n) => *n as u32,
                toml::Value::Integer(n) => {
                    return Err(err(
                        key,
                        format!("expected 1..={MAX_WINDOW_DAYS} days, got {n}"),
                    ))
                }
                other => {
                    return Err(err(
                        key,
                        format!("expected a whole number of days, got {}", other.type_str()),
                    ))
                }
            };
        }
        Ok(out)
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
        let common = matches!(
            key.as_str(),
            "id" | "grade" | "text" | "when" | "repairable"
        );
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
    let repairable = match t.get("repairable") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(v) => {
            return Err(rt.err(
                "repairable",
                format!("expected true or false, got {}", v.type_str()),
            ))
        }
    };
    if repairable && grade == Grade::Red {
        return Err(rt.err("repairable", "red rules are not repairable"));
    }
    if repairable
        && !matches!(
            condition,
            Condition::Publicity | Condition::ListActive { .. }
        )
    {
        return Err(rt.err(
            "repairable",
            format!("a credit repair ends only `publicity` and `list_active` rules, not `{when}`"),
        ));
    }
    Ok(Rule {
        id,
        grade,
        text: text.to_owned(),
        condition,
        repairable,
    })
}
