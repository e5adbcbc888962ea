//! Tables of cases for the rules, the grading function and the projection.

use jiff::civil::Date;
use jiff::Timestamp;

use super::engine::{plus_days, Evaluator};
use super::project::summarize;
use super::*;
use crate::model::*;
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
        plan: None,
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
    let s = summarize(&records, &Rules::default(), as_of());
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

mod props;
mod repair;
