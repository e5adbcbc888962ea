//! A merchant's records as a timeline (newest first, in words a clerk
//! reads), and its grade history pieced together from what the store keeps:
//! the grade printed on each code it was issued, every override's change as
//! the audit log records it, and the current grading.

use maud::{html, Markup};
use serde_json::Value;

use super::layout::grade_badge;
use crate::clock;
use crate::model::{
    AuditEntry, Grade, IssuedCode, ListAction, ListKind, Projection, Record, RecordBody,
    ReportType, Severity,
};

/// Most records shown on a merchant's page.
pub const MAX_RECORDS_SHOWN: usize = 200;

fn kind_label(body: &RecordBody) -> &'static str {
    match body {
        RecordBody::Inspection { .. } => "现场检查",
        RecordBody::Sampling { .. } => "监督抽检",
        RecordBody::Penalty { .. } => "行政处罚",
        RecordBody::Complaint { .. } => "投诉举报",
        RecordBody::List { .. } => "名录",
        RecordBody::SelfReport { .. } => "自查报告",
        RecordBody::Commitment { .. } => "质量承诺",
        RecordBody::Repair { .. } => "信用修复",
        RecordBody::Reply { .. } => "商户回复",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "是"
    } else {
        "否"
    }
}

fn fine(cny: f64) -> String {
    if cny.fract() == 0.0 && cny.abs() < 1e15 {
        format!("{}", cny as i64)
    } else {
        format!("{cny:.2}")
    }
}

/// What a record says, in one line.
pub fn describe(body: &RecordBody) -> String {
    match body {
        RecordBody::Inspection { hazards: 0, .. } => "未发现隐患".into(),
        RecordBody::Inspection {
            hazards,
            deadline,
            rectified,
            rectified_on,
            ..
        } => {
            let mut s = format!("发现隐患 {hazards} 处；已整改：{}", yes_no(*rectified));
            if let Some(d) = deadline {
                s.push_str(&format!("；整改期限 {d}"));
            }
            if let Some(d) = rectified_on {
                s.push_str(&format!("；整改日期 {d}"));
            }
            s
        }
        RecordBody::Sampling {
            product,
            standard,
            passed,
            failed_items,
        } => {
            let mut s = format!("产品 {product}");
            if let Some(std) = standard {
                s.push_str(&format!("（{std}）"));
            }
            s.push_str(if *passed { "：合格" } else { "：不合格" });
            if !failed_items.is_empty() {
                s.push_str(&format!("，不合格项目：{}", failed_items.join("、")));
            }
            s
        }
        RecordBody::Penalty {
            decision_no,
            severity,
            fine_cny,
            publicity_until,
        } => {
            let severity = match severity {
                Severity::Minor => "轻微",
                Severity::General => "一般",
                Severity::Severe => "严重",
            };
            let mut s = format!(
                "决定书 {decision_no}；{severity}；罚款 {} 元",
                fine(*fine_cny)
            );
            if let Some(d) = publicity_until {
                s.push_str(&format!("；公示至 {d}"));
            }
            s
        }
        RecordBody::Complaint {
            substantiated,
            summary,
        } => {
            let mut s = if *substantiated {
                "查证属实"
            } else {
                "未查实"
            }
            .to_owned();
            if let Some(t) = summary {
                s.push_str(&format!("：{t}"));
            }
            s
        }
        RecordBody::List {
            list,
            action,
            reason,
        } => {
            let action = match action {
                ListAction::Add => "列入",
                ListAction::Remove => "移出",
            };
            let list = match list {
                ListKind::Abnormal => "经营异常名录",
                ListKind::Serious => "严重违法失信名单",
            };
            let mut s = format!("{action}{list}");
            if let Some(r) = reason {
                s.push_str(&format!("：{r}"));
            }
            s
        }
        RecordBody::SelfReport {
            report_type,
            summary,
        } => {
            let t = match report_type {
                ReportType::Invoice => "索票索证",
                ReportType::IncomingCheck => "进货查验",
                ReportType::SelfCheck => "自查记录",
            };
            match summary {
                Some(s) => format!("{t}：{s}"),
                None => t.to_owned(),
            }
        }
        RecordBody::Commitment { summary } => match summary {
            Some(s) => format!("签署质量承诺书：{s}"),
            None => "签署质量承诺书".into(),
        },
        RecordBody::Repair { record } => format!("信用修复：记录 {record}"),
        RecordBody::Reply { record, rule, text } => {
            let about = record
                .as_deref()
                .map(|r| format!("记录 {r}"))
                .or_else(|| rule.as_deref().map(|r| format!("规则 {r}")))
                .unwrap_or_default();
            format!("商户回复（{about}）：{text}")
        }
    }
}

/// The records, newest first (by date, then latest imported first).
pub fn records(records: &[Record]) -> Markup {
    let mut order: Vec<(usize, &Record)> = records.iter().enumerate().collect();
    order.sort_by(|(i, a), (j, b)| b.date.cmp(&a.date).then(j.cmp(i)));
    html! {
        @if order.is_empty() {
            p.muted { "没有记录。" }
        } @else {
            ol.timeline {
                @for (_, r) in order.iter().take(MAX_RECORDS_SHOWN) {
                    li {
                        strong { (r.date) " " (kind_label(&r.body)) }
                        br;
                        (describe(&r.body))
                        br;
                        span.muted {
                            "编号 " (r.id)
                            @if let Some(src) = &r.source { " · 来源 " (src) }
                        }
                    }
                }
            }
            @if order.len() > MAX_RECORDS_SHOWN {
                p.muted { "只显示最近的 " (MAX_RECORDS_SHOWN) " 条，共 " (order.len()) " 条。" }
            }
        }
    }
}

/// One step of a merchant's grade history.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When, as a local date and time (or a date).
    pub when: String,
    pub grade: Grade,
    pub what: String,
}

fn grade_in(v: &Value) -> Option<Grade> {
    v.get("grade")
        .and_then(Value::as_str)
        .and_then(Grade::from_name)
}

fn local(t: jiff::Timestamp) -> String {
    t.to_zoned(clock::zone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// A local date and time, or a date, as text that sorts in time order
/// (a date sorts before the times of its day).
fn sort_key(t: jiff::Timestamp) -> String {
    t.to_zoned(clock::zone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The grade history, newest first: the grade today, each override set or
/// cleared (`audit`, the merchant's entries), and the grade printed on each
/// code when it was issued.
pub fn history(
    p: Option<&Projection>,
    codes: &[IssuedCode],
    audit: &[AuditEntry],
    today: jiff::civil::Date,
) -> Vec<Step> {
    let mut steps: Vec<(String, Step)> = Vec::new();
    for e in audit.iter().filter(|e| e.action.starts_with("override.")) {
        let Some(grade) = grade_in(&e.after) else {
            continue;
        };
        let what = if e.action == "override.set" {
            format!("{} 改判", e.actor)
        } else {
            format!("{} 撤销改判，恢复按规则评定", e.actor)
        };
        steps.push((
            sort_key(e.at),
            Step {
                when: local(e.at),
                grade,
                what,
            },
        ));
    }
    for c in codes {
        steps.push((
            c.issued_at.to_string(),
            Step {
                when: c.issued_at.to_string(),
                grade: c.printed_grade,
                what: format!("签发第 {} 号码（码上印制的等级）", c.serial),
            },
        ));
    }
    steps.sort_by(|a, b| b.0.cmp(&a.0));
    let mut out: Vec<Step> = Vec::with_capacity(steps.len() + 1);
    if let Some(p) = p {
        let (grade, active) = p.effective(today);
        out.push(Step {
            when: format!("今天（{today}）"),
            grade,
            what: match active {
                Some(_) => format!(
                    "改判生效中；按规则（截至 {}）为{}",
                    p.as_of,
                    p.computed_grade.label_zh()
                ),
                None => format!("按规则评定（截至 {}）", p.as_of),
            },
        });
    }
    out.extend(steps.into_iter().map(|(_, s)| s));
    out
}

pub fn history_list(steps: &[Step]) -> Markup {
    html! {
        @if steps.is_empty() {
            p.muted { "没有等级记录。" }
        } @else {
            ol.timeline {
                @for s in steps {
                    li { (s.when) " " (grade_badge(s.grade)) br; span.muted { (s.what) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CodeStatus, MerchantId};

    fn at(local: &str) -> jiff::Timestamp {
        local
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(clock::zone())
            .unwrap()
            .timestamp()
    }

    fn override_entry(action: &str, when: &str, grade: &str) -> AuditEntry {
        AuditEntry {
            at: at(when),
            actor: "县局".into(),
            action: action.into(),
            target: "XZ-0001".into(),
            before: serde_json::json!({"grade": "green"}),
            after: serde_json::json!({"grade": grade}),
            reason: None,
        }
    }

    #[test]
    fn the_grade_history_starts_today_then_goes_back_in_time() {
        let today: jiff::civil::Date = "2026-06-05".parse().unwrap();
        let p = &crate::grading::demo_projections(today, None)[0];
        let code = |serial, day: &str, grade| IssuedCode {
            serial,
            merchant: MerchantId::parse("XZ-0001").unwrap(),
            kid: 1,
            token: yisaozhi_codes::sign(
                &yisaozhi_codes::Claims {
                    kid: yisaozhi_codes::KeyId(1),
                    merchant: "XZ-0001".into(),
                    serial,
                    issued: clock::to_day(today).unwrap(),
                    expires: clock::to_day(today).unwrap(),
                    grade,
                },
                &yisaozhi_codes::SigningKey::from_bytes(&[7; 32]),
            )
            .unwrap(),
            issued_at: day.parse().unwrap(),
            expires_at: "2027-01-01".parse().unwrap(),
            printed_grade: grade,
            status: CodeStatus::Superseded,
        };
        let codes = [
            code(1, "2026-06-01", Grade::Green),
            code(2, "2026-06-03", Grade::Red),
        ];
        // The audit log lists the newest first; the order given is not relied on.
        let audit = [
            override_entry("override.set", "2026-06-02T23:30:00", "red"),
            override_entry("override.clear", "2026-06-04T08:00:00", "green"),
            override_entry("code.revoke", "2026-06-04T09:00:00", "red"),
        ];
        let steps = history(Some(p), &codes, &audit, today);
        let seen: Vec<(&str, Grade)> = steps.iter().map(|s| (s.when.as_str(), s.grade)).collect();
        assert_eq!(
            seen,
            [
                ("今天（2026-06-05）", p.effective(today).0),
                ("2026-06-04 08:00", Grade::Green),
                ("2026-06-03", Grade::Red),
                ("2026-06-02 23:30", Grade::Red),
                ("2026-06-01", Grade::Green),
            ]
        );
        assert!(steps[1].what.contains("撤销改判"));
        assert!(history(None, &[], &[], today).is_empty());
    }
}
