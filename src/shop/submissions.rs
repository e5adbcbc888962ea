//! What a shop submits for review, parsed once from a JSON body or a form
//! into typed values, with messages that name the field: a self-report
//! (索票索证, 进货查验, 自查), a reply to a reason or a record, and an
//! application for credit repair.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{
    check_text, truncate, ReportType, TextKind, MAX_ID_CHARS, MAX_LIST_ITEMS, MAX_NAME_CHARS,
    MAX_REPLY_CHARS, MAX_TEXT_CHARS,
};

/// How far back a self-report may be dated.
pub const MAX_REPORT_AGE_DAYS: i64 = 366;

/// One line of an incoming-goods check or self-inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckItem {
    pub item: String,
    pub ok: bool,
}

/// A submission awaiting a regulator's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Submission {
    SelfReport {
        report_type: ReportType,
        date: Date,
        supplier: Option<String>,
        product: Option<String>,
        batch: Option<String>,
        items: Vec<CheckItem>,
        summary: Option<String>,
    },
    Reply {
        record_id: Option<String>,
        rule: Option<String>,
        text: String,
    },
    Repair {
        record_id: String,
        commitment: bool,
        statement: String,
    },
}

impl Submission {
    /// The review kind: `self_report`, `reply` or `repair`.
    pub fn kind(&self) -> &'static str {
        match self {
            Submission::SelfReport { .. } => "self_report",
            Submission::Reply { .. } => "reply",
            Submission::Repair { .. } => "repair",
        }
    }
}

/// The review kinds, as named in `?kind=`.
pub const REVIEW_KINDS: [&str; 3] = ["self_report", "reply", "repair"];

/// Typed access to a body's fields with messages naming them. A `null`
/// or an empty string counts as absent.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(format!("field `{key}`: expected a string")),
        }
    }

    fn opt_text(&self, key: &str, max: usize, kind: TextKind) -> Result<Option<String>, String> {
        let Some(s) = self.opt_str(key)? else {
            return Ok(None);
        };
        check_text(s, max, kind).map_err(|e| format!("field `{key}`: {e}"))?;
        Ok(Some(s.to_owned()))
    }

    fn text(&self, key: &str, max: usize, kind: TextKind) -> Result<String, String> {
        self.opt_text(key, max, kind)?
            .ok_or_else(|| format!("field `{key}`: required (1-{max} characters)"))
    }

    fn date(&self, key: &str) -> Result<Date, String> {
        let raw = self
            .opt_str(key)?
            .ok_or_else(|| format!("field `{key}`: required (YYYY-MM-DD)"))?;
        raw.parse::<Date>()
            .ok()
            .filter(|_| raw.len() == 10)
            .ok_or_else(|| {
                format!(
                    "field `{key}`: expected YYYY-MM-DD, got `{}`",
                    truncate(raw)
                )
            })
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("field `{key}`: expected true or false")),
        }
    }
}

/// A self-report: `{"report_type", "date", "supplier"?, "product"?,
/// "batch"?, "items"?: [{"item", "ok"}], "summary"?}`, dated within the
/// last [`MAX_REPORT_AGE_DAYS`] days and not after `today`.
pub fn self_report(body: &Map<String, Value>, today: Date) -> Result<Submission, String> {
    let f = Fields(body);
    let raw = f
        .opt_str("report_type")?
        .ok_or("field `report_type`: required (invoice, incoming_check or self_check)")?;
    let report_type = ReportType::from_name(raw).ok_or_else(|| {
        format!(
            "field `report_type`: expected invoice, incoming_check or self_check, got `{}`",
            truncate(raw)
        )
    })?;
    let date = f.date("date")?;
    if date > today {
        return Err(format!("field `date`: {date} is after today"));
    }
    if today
        .since(date)
        .map_or(true, |s| s.get_days() > MAX_REPORT_AGE_DAYS as i32)
    {
        return Err(format!(
            "field `date`: {date} is more than {MAX_REPORT_AGE_DAYS} days ago"
        ));
    }
    let items = match body.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() > MAX_LIST_ITEMS => {
            return Err(format!(
                "field `items`: at most {MAX_LIST_ITEMS} entries, got {}",
                items.len()
            ))
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| check_item(i, v))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field `items`: expected a list of {\"item\", \"ok\"}".into()),
    };
    Ok(Submission::SelfReport {
        report_type,
        date,
        supplier: f.opt_text("supplier", MAX_NAME_CHARS, TextKind::Line)?,
        product: f.opt_text("product", MAX_NAME_CHARS, TextKind::Line)?,
        batch: f.opt_text("batch", MAX_ID_CHARS, TextKind::Line)?,
        items,
        summary: f.opt_text("summary", MAX_TEXT_CHARS, TextKind::Lines)?,
    })
}

fn check_item(i: usize, v: &Value) -> Result<CheckItem, String> {
    let key = format!("items[{i}]");
    let Value::Object(m) = v else {
        return Err(format!("field `{key}`: expected {{\"item\", \"ok\"}}"));
    };
    let f = Fields(m);
    let item = f
        .text("item", MAX_NAME_CHARS, TextKind::Line)
        .map_err(|e| format!("{key}: {e}"))?;
    let ok = f
        .boolean("ok")
        .map_err(|e| format!("{key}: {e}"))?
        .ok_or_else(|| format!("{key}: field `ok`: required (true or false)"))?;
    Ok(CheckItem { item, ok })
}

/// A reply: `{"record_id" | "rule", "text"}`, text of 1–300 characters.
pub fn reply(body: &Map<String, Value>) -> Result<Submission, String> {
    let f = Fields(body);
    let record_id = f.opt_text("record_id", MAX_ID_CHARS, TextKind::Line)?;
    let rule = f.opt_text("rule", MAX_ID_CHARS, TextKind::Line)?;
    if record_id.is_some() == rule.is_some() {
        return Err("a reply answers exactly one of field `record_id` or field `rule`".into());
    }
    Ok(Submission::Reply {
        record_id,
        rule,
        text: f.text("text", MAX_REPLY_CHARS, TextKind::Lines)?,
    })
}

/// An application for credit repair: `{"record_id", "commitment": true,
/// "statement"}`.
pub fn repair(body: &Map<String, Value>) -> Result<Submission, String> {
    let f = Fields(body);
    let record_id = f.text("record_id", MAX_ID_CHARS, TextKind::Line)?;
    if f.boolean("commitment")? != Some(true) {
        return Err(
            "field `commitment`: must be true (the shop commits to keep the law from now on)"
                .into(),
        );
    }
    Ok(Submission::Repair {
        record_id,
        commitment: true,
        statement: f.text("statement", MAX_TEXT_CHARS, TextKind::Lines)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn self_reports_are_checked_field_by_field() {
        let today: Date = "2026-03-01".parse().unwrap();
        let good = json!({"report_type": "incoming_check", "date": "2026-02-27",
            "supplier": "某某批发部", "items": [{"item": "外包装完好", "ok": true}]});
        assert!(matches!(
            self_report(&obj(good), today),
            Ok(Submission::SelfReport { items, .. }) if items.len() == 1
        ));
        let cases = [
            (
                json!({"date": "2026-02-27"}),
                "field `report_type`: required",
            ),
            (
                json!({"report_type": "x", "date": "2026-02-27"}),
                "expected invoice",
            ),
            (
                json!({"report_type": "invoice", "date": "2026-3-1"}),
                "field `date`: expected YYYY-MM-DD",
            ),
            (
                json!({"report_type": "invoice", "date": "2026-03-02"}),
                "after today",
            ),
            (
                json!({"report_type": "invoice", "date": "2024-01-01"}),
                "days ago",
            ),
            (
                json!({"report_type": "invoice", "date": "2026-03-01", "supplier": "a\u{202e}b"}),
                "field `supplier`",
            ),
            (
                json!({"report_type": "invoice", "date": "2026-03-01", "items": [{"item": "x"}]}),
                "items[0]: field `ok`",
            ),
            (
                json!({"report_type": "invoice", "date": "2026-03-01", "items": vec![json!({"item": "x", "ok": true}); 33]}),
                "at most 32",
            ),
        ];
        for (body, want) in cases {
            let err = self_report(&obj(body.clone()), today).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn a_reply_answers_one_thing_in_at_most_300_characters() {
        assert!(reply(&obj(json!({"rule": "Y2", "text": "已整改"}))).is_ok());
        let long = "好".repeat(301);
        let cases = [
            json!({"text": "x"}),
            json!({"rule": "Y2", "record_id": "r1", "text": "x"}),
            json!({"rule": "Y2", "text": long}),
            json!({"rule": "Y2", "text": "a\u{2066}b"}),
            json!({"rule": "Y2", "text": " "}),
        ];
        for body in cases {
            assert!(reply(&obj(body.clone())).is_err(), "{body}");
        }
        assert!(reply(&obj(json!({"rule": "Y2", "text": "好".repeat(300)}))).is_ok());
    }

    #[test]
    fn a_repair_needs_the_commitment_and_a_statement() {
        assert!(repair(&obj(
            json!({"record_id": "p1", "commitment": true, "statement": "已缴纳罚款"})
        ))
        .is_ok());
        for body in [
            json!({"record_id": "p1", "commitment": false, "statement": "x"}),
            json!({"record_id": "p1", "statement": "x"}),
            json!({"record_id": "p1", "commitment": true}),
            json!({"commitment": true, "statement": "x"}),
        ] {
            assert!(repair(&obj(body.clone())).is_err(), "{body}");
        }
    }
}
