//! The parser's unit tests: good and bad lines of every shape, the
//! canonical stored form, and the bounded line reader.

use std::io;
use std::path::Path;

use jiff::civil::Date;
use serde_json::{Map, Value};

use super::fields::{merchant_from_value, record_from_value, Mode};
use super::parse::object;
use super::*;
use crate::model::*;

const USCC: &str = "91350100M000100Y43";

fn merchant_line(extra: &str) -> String {
    let base = r#""id":"XZ-0001","name":"叙州区好味超市","kind":"shop","uscc":"91350100M000100Y43","address":"叙州区南岸东路1号","region":"511521","categories":["食品","酒类"]"#;
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

/// Replaces (or with `None`, removes) one field of a JSON object line.
fn with(line: &str, key: &str, value: Option<Value>) -> String {
    let mut v: Map<String, Value> = serde_json::from_str(line).unwrap();
    match value {
        Some(x) => {
            v.insert(key.to_owned(), x);
        }
        None => {
            v.remove(key);
        }
    }
    Value::Object(v).to_string()
}

#[test]
fn a_complete_merchant_line_parses() {
    let m = parse_merchant(&merchant_line(
        r#""contact_name":"张三","contact_phone":"13812345678","id_number":"511521199001011234","extra":1"#,
    ))
    .unwrap();
    assert_eq!(m.id.as_str(), "XZ-0001");
    assert_eq!(m.kind, MerchantKind::Shop);
    assert_eq!(m.uscc.as_ref().unwrap().as_str(), USCC);
    assert_eq!(m.categories, vec!["食品", "酒类"]);
    assert_eq!(m.contact_phone.as_deref(), Some("13812345678"));
    // The store form round-trips.
    let back: Merchant = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn good_merchant_variants_parse() {
    let base = merchant_line("");
    let cases: Vec<(&str, String)> = vec![
        (
            "vendor without uscc",
            with(&with(&base, "kind", Some("vendor".into())), "uscc", None),
        ),
        ("shop without uscc", with(&base, "uscc", None)),
        ("uscc null", with(&base, "uscc", Some(Value::Null))),
        ("uscc empty", with(&base, "uscc", Some("".into()))),
        (
            "uscc lowercase",
            with(&base, "uscc", Some(USCC.to_lowercase().into())),
        ),
        (
            "no categories",
            with(&base, "categories", Some(serde_json::json!([]))),
        ),
        (
            "name at the bound",
            with(&base, "name", Some("店".repeat(200).into())),
        ),
        (
            "32 categories",
            with(&base, "categories", Some(serde_json::json!(vec!["x"; 32]))),
        ),
    ];
    for (what, line) in cases {
        assert!(
            parse_merchant(&line).is_ok(),
            "{what}: {line}: {:?}",
            parse_merchant(&line)
        );
    }
}

#[test]
fn bad_merchant_lines_are_refused_with_a_reason() {
    let base = merchant_line("");
    use serde_json::json as j;
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "invalid JSON"),
        ("{".into(), "invalid JSON"),
        ("[1,2]".into(), "expected a JSON object, got a list"),
        ("\"x\"".into(), "expected a JSON object, got a string"),
        (with(&base, "name", None), "missing field `name`"),
        (
            with(&base, "name", Some(Value::Null)),
            "missing field `name`",
        ),
        (
            with(&base, "name", Some("  ".into())),
            "field `name`: must not be empty",
        ),
        (
            with(&base, "name", Some(j!(5))),
            "field `name`: expected a string, got a number",
        ),
        (
            with(&base, "name", Some("店".repeat(201).into())),
            "field `name`: longer than 200 characters",
        ),
        (
            with(&base, "name", Some("a\u{0}b".into())),
            "field `name`: contains a control character",
        ),
        (with(&base, "id", None), "missing field `id`"),
        (
            with(&base, "id", Some("a b".into())),
            "field `id`: expected 1-32 characters",
        ),
        (
            with(&base, "id", Some("a".repeat(33).into())),
            "field `id`: expected 1-32 characters",
        ),
        (
            with(&base, "kind", Some("stall".into())),
            "field `kind`: expected one of shop, vendor, got `stall`",
        ),
        (with(&base, "kind", None), "missing field `kind`"),
        (
            with(&base, "uscc", Some("91350100M000100Y44".into())),
            "field `uscc`: check character does not match",
        ),
        (
            with(&base, "uscc", Some("9135".into())),
            "field `uscc`: expected 18 characters",
        ),
        (
            with(&base, "uscc", Some("91350100M000100I43".into())),
            "field `uscc`: contains a character outside",
        ),
        (
            with(&base, "uscc", Some(j!(1))),
            "field `uscc`: expected a string, got a number",
        ),
        (with(&base, "address", None), "missing field `address`"),
        (
            with(&base, "address", Some("".into())),
            "field `address`: must not be empty",
        ),
        (
            with(&base, "region", Some("51152".into())),
            "field `region`: expected 6 digits (GB/T 2260 code), got `51152`",
        ),
        (
            with(&base, "region", Some(j!(511521))),
            "field `region`: expected a string, got a number",
        ),
        (with(&base, "region", None), "missing field `region`"),
        (
            with(&base, "categories", None),
            "missing field `categories`",
        ),
        (
            with(&base, "categories", Some("食品".into())),
            "field `categories`: expected a list of strings",
        ),
        (
            with(&base, "categories", Some(j!(vec!["x"; 33]))),
            "field `categories`: more than 32 entries",
        ),
        (
            with(&base, "categories", Some(j!(["a", 1]))),
            "field `categories[1]`: expected a string",
        ),
        (
            with(&base, "categories", Some(j!(["a", ""]))),
            "field `categories[1]`: must not be empty",
        ),
        (
            with(&base, "contact_phone", Some("1".repeat(65).into())),
            "field `contact_phone`: longer than 64 characters",
        ),
        (
            with(&base, "id_number", Some(j!(true))),
            "field `id_number`: expected a string, got a boolean",
        ),
        (
            with(&base, "name", Some("好味\u{202e}市超".into())),
            "field `name`: contains an invisible bidirectional formatting character (U+202E) at character 3",
        ),
        (
            with(&base, "address", Some("南岸\u{200e}路".into())),
            "field `address`: contains an invisible bidirectional formatting character (U+200E)",
        ),
        (
            with(&base, "name", Some("好味\n超市".into())),
            "field `name`: contains a control character (U+000A)",
        ),
        (
            with(&base, "contact_name", Some("张\t三".into())),
            "field `contact_name`: contains a control character (U+0009)",
        ),
        (
            with(&base, "categories", Some(j!(["食品", "酒\u{2069}"]))),
            "field `categories[1]`: contains an invisible bidirectional",
        ),
        (
            with(&base, "uscc", Some("\u{202d}91350100M000100Y43".into())),
            "field `uscc`: contains an invisible bidirectional",
        ),
        (
            format!("{},\"name\":\"别家\"}}", base.trim_end_matches('}')),
            "key `name` appears twice",
        ),
    ];
    for (line, want) in cases {
        let err = parse_merchant(&line).expect_err(&line);
        assert!(err.contains(want), "{line}\n  got:  {err}\n  want: {want}");
    }
}

fn rec(kind_fields: &str) -> String {
    format!(
        r#"{{"id":"r1","merchant":"XZ-0001","date":"2025-06-01","source":"双随机-2025-17",{kind_fields}}}"#
    )
}

#[test]
fn good_record_lines_of_every_kind_parse_and_round_trip() {
    let d = |s: &str| s.parse::<Date>().unwrap();
    let cases: Vec<(String, RecordBody)> = vec![
        (
            rec(r#""kind":"inspection","hazards":2,"deadline":"2025-06-15","rectified":false"#),
            RecordBody::Inspection {
                hazards: 2,
                deadline: Some(d("2025-06-15")),
                rectified: false,
                rectified_on: None,
                plan: None,
            },
        ),
        (
            rec(
                r#""kind":"inspection","hazards":0,"rectified":true,"rectified_on":"2025-06-03","deadline":null"#,
            ),
            RecordBody::Inspection {
                hazards: 0,
                deadline: None,
                rectified: true,
                rectified_on: Some(d("2025-06-03")),
                plan: None,
            },
        ),
        (
            rec(
                r#""kind":"sampling","product":"散装白酒","standard":"GB 2757-2012","passed":false,"failed_items":["甲醇"]"#,
            ),
            RecordBody::Sampling {
                product: "散装白酒".into(),
                standard: Some("GB 2757-2012".into()),
                passed: false,
                failed_items: vec!["甲醇".into()],
            },
        ),
        (
            rec(r#""kind":"sampling","product":"大米","passed":true"#),
            RecordBody::Sampling {
                product: "大米".into(),
                standard: None,
                passed: true,
                failed_items: vec![],
            },
        ),
        (
            rec(
                r#""kind":"penalty","decision_no":"叙市监处罚〔2025〕12号","severity":"general","fine_cny":5000,"publicity_until":"2025-09-01""#,
            ),
            RecordBody::Penalty {
                decision_no: "叙市监处罚〔2025〕12号".into(),
                severity: Severity::General,
                fine_cny: 5000.0,
                publicity_until: Some(d("2025-09-01")),
            },
        ),
        (
            rec(r#""kind":"penalty","decision_no":"P-1","severity":"minor","fine_cny":0.5"#),
            RecordBody::Penalty {
                decision_no: "P-1".into(),
                severity: Severity::Minor,
                fine_cny: 0.5,
                publicity_until: None,
            },
        ),
        (
            rec(r#""kind":"complaint","substantiated":true,"summary":"缺斤短两\n已核实""#),
            RecordBody::Complaint {
                substantiated: true,
                summary: Some("缺斤短两\n已核实".into()),
            },
        ),
        (
            rec(r#""kind":"list","list":"serious","action":"add","reason":"提供虚假材料""#),
            RecordBody::List {
                list: ListKind::Serious,
                action: ListAction::Add,
                reason: Some("提供虚假材料".into()),
            },
        ),
        (
            rec(
                r#""kind":"list","list":"abnormal","action":"remove","operator":"unknown fields are ignored""#,
            ),
            RecordBody::List {
                list: ListKind::Abnormal,
                action: ListAction::Remove,
                reason: None,
            },
        ),
        (
            rec(r#""kind":"self_report","report_type":"incoming_check""#),
            RecordBody::SelfReport {
                report_type: ReportType::IncomingCheck,
                summary: None,
            },
        ),
        (
            rec(r#""kind":"commitment","summary":"""#),
            RecordBody::Commitment { summary: None },
        ),
        (
            rec(r#""kind":"repair","record":"p-17""#),
            RecordBody::Repair {
                record: "p-17".into(),
            },
        ),
        (
            rec(r#""kind":"reply","rule":"Y2","text":"已整改\n罚款已缴清""#),
            RecordBody::Reply {
                record: None,
                rule: Some("Y2".into()),
                text: "已整改\n罚款已缴清".into(),
            },
        ),
        (
            rec(r#""kind":"reply","record":"p-17","rule":"","text":"无异议""#),
            RecordBody::Reply {
                record: Some("p-17".into()),
                rule: None,
                text: "无异议".into(),
            },
        ),
    ];
    for (line, body) in cases {
        let r = parse_record(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(r.body, body, "{line}");
        assert_eq!(r.date, d("2025-06-01"));
        assert_eq!(r.source.as_deref(), Some("双随机-2025-17"));
        let json = record_to_json(&r);
        assert_eq!(json["kind"], r.body.kind());
        assert_eq!(parse_record(&json.to_string()).unwrap(), r, "{json}");
        let via_serde: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(via_serde, r);
        let canonical = serde_json::to_vec(&r).unwrap();
        let marked = memchr::memmem::find(&canonical, SAMPLING_KIND_MEMBER).is_some();
        assert_eq!(marked, r.is_sampling(), "{line}");
        let mut binary = Vec::new();
        encode_record(&r, &mut binary);
        assert_eq!(decode_record(&r.merchant, &binary), Ok(r.clone()), "{line}");
        for cut in 0..binary.len() {
            assert!(
                decode_record(&r.merchant, &binary[..cut]).is_err(),
                "{line}"
            );
        }
    }
}

#[test]
fn bad_record_lines_are_refused_with_a_reason() {
    let insp = rec(r#""kind":"inspection","hazards":1,"rectified":false"#);
    let samp = rec(r#""kind":"sampling","product":"大米","passed":false"#);
    let pen = rec(r#""kind":"penalty","decision_no":"P-1","severity":"severe","fine_cny":100"#);
    let comp = rec(r#""kind":"complaint","substantiated":true"#);
    let list = rec(r#""kind":"list","list":"serious","action":"add""#);
    let selfr = rec(r#""kind":"self_report","report_type":"invoice""#);
    let comm = rec(r#""kind":"commitment""#);
    use serde_json::json as j;
    let cases: Vec<(String, &str)> = vec![
        // common fields
        (with(&insp, "id", None), "missing field `id`"),
        (with(&insp, "id", Some("".into())), "field `id`: must not be empty"),
        (with(&insp, "id", Some("x".repeat(65).into())), "field `id`: longer than 64 characters"),
        (with(&insp, "merchant", None), "missing field `merchant`"),
        (with(&insp, "merchant", Some("商户".into())), "field `merchant`: expected 1-32 characters"),
        (with(&insp, "kind", None), "missing field `kind`"),
        (rec(r#""kind":"repair""#), "missing field `record`"),
        (rec(r#""kind":"reply","text":"x""#), "exactly one of field `record` or field `rule`"),
        (rec(r#""kind":"reply","record":"a","rule":"Y2","text":"x""#), "exactly one of field `record` or field `rule`"),
        (rec(&format!(r#""kind":"reply","rule":"Y2","text":"{}""#, "好".repeat(301))), "field `text`"),
        (rec(r#""kind":"reply","rule":"Y2","text":"a\u202eb""#), "field `text`"),
        (with(&insp, "kind", Some("foo".into())), "unknown kind `foo` (expected one of inspection, sampling, penalty, complaint, list, self_report, commitment, repair, reply)"),
        (with(&insp, "kind", Some(j!(3))), "field `kind`: expected a string, got a number"),
        (with(&insp, "date", None), "missing field `date`"),
        (with(&insp, "date", Some("2026-13-01".into())), "field `date`: expected YYYY-MM-DD, got `2026-13-01`"),
        (with(&insp, "date", Some("2026-02-30".into())), "field `date`: expected YYYY-MM-DD, got `2026-02-30`"),
        (with(&insp, "date", Some("2026-1-01".into())), "field `date`: expected YYYY-MM-DD"),
        (with(&insp, "date", Some("2026-01-01T00:00".into())), "field `date`: expected YYYY-MM-DD"),
        (with(&insp, "date", Some("0001-01-01".into())), "field `date`: year out of range"),
        (with(&insp, "date", Some(j!(20260101))), "field `date`: expected a string, got a number"),
        (with(&insp, "source", Some("s".repeat(201).into())), "field `source`: longer than 200 characters"),
        // inspection
        (with(&insp, "hazards", None), "missing field `hazards`"),
        (with(&insp, "hazards", Some(j!(-1))), "field `hazards`: expected an integer ≥ 0, got `-1`"),
        (with(&insp, "hazards", Some(j!(1.5))), "field `hazards`: expected an integer ≥ 0, got `1.5`"),
        (with(&insp, "hazards", Some("2".into())), "field `hazards`: expected an integer ≥ 0, got a string"),
        (with(&insp, "rectified", None), "missing field `rectified`"),
        (with(&insp, "rectified", Some("no".into())), "field `rectified`: expected true or false, got a string"),
        (with(&insp, "deadline", Some("tomorrow".into())), "field `deadline`: expected YYYY-MM-DD, got `tomorrow`"),
        (with(&insp, "rectified_on", Some(j!(1))), "field `rectified_on`: expected a date (YYYY-MM-DD), got a number"),
        // sampling
        (with(&samp, "product", None), "missing field `product`"),
        (with(&samp, "product", Some("".into())), "field `product`: must not be empty"),
        (with(&samp, "passed", None), "missing field `passed`"),
        (with(&samp, "failed_items", Some(j!(vec!["x"; 33]))), "field `failed_items`: more than 32 entries"),
        (with(&samp, "failed_items", Some("甲醇".into())), "field `failed_items`: expected a list of strings"),
        (with(&samp, "standard", Some("s".repeat(201).into())), "field `standard`: longer than 200 characters"),
        // penalty
        (with(&pen, "decision_no", None), "missing field `decision_no`"),
        (with(&pen, "severity", Some("grave".into())), "field `severity`: expected one of minor, general, severe, got `grave`"),
        (with(&pen, "severity", None), "missing field `severity`"),
        (with(&pen, "fine_cny", None), "missing field `fine_cny`"),
        (with(&pen, "fine_cny", Some(j!(-1))), "field `fine_cny`: expected a number ≥ 0, got `-1`"),
        (with(&pen, "fine_cny", Some("100".into())), "field `fine_cny`: expected a number ≥ 0, got a string"),
        (rec(r#""kind":"penalty","decision_no":"P-1","severity":"severe","fine_cny":1e999"#), "invalid JSON"),
        (with(&pen, "publicity_until", Some("2025/09/01".into())), "field `publicity_until`: expected YYYY-MM-DD"),
        // complaint
        (with(&comp, "substantiated", None), "missing field `substantiated`"),
        (with(&comp, "substantiated", Some(j!(1))), "field `substantiated`: expected true or false, got a number"),
        (with(&comp, "summary", Some("话".repeat(1001).into())), "field `summary`: longer than 1000 characters"),
        // list
        (with(&list, "list", Some("black".into())), "field `list`: expected one of abnormal, serious, got `black`"),
        (with(&list, "list", None), "missing field `list`"),
        (with(&list, "action", Some("delete".into())), "field `action`: expected one of add, remove, got `delete`"),
        (with(&list, "reason", Some(j!(["a"]))), "field `reason`: expected a string, got a list"),
        // self_report
        (with(&selfr, "report_type", Some("receipt".into())), "field `report_type`: expected one of invoice, incoming_check, self_check, got `receipt`"),
        (with(&selfr, "report_type", None), "missing field `report_type`"),
        // commitment
        (with(&comm, "summary", Some(j!(false))), "field `summary`: expected a string, got a boolean"),
        // input bounds (issue 17): amounts, control and bidirectional characters
        (with(&pen, "fine_cny", Some(j!(1e11 + 1.0))), "field `fine_cny`: expected at most 100000000000 (10^11 CNY)"),
        (with(&pen, "fine_cny", Some(j!(1e300))), "field `fine_cny`: expected at most"),
        (with(&comp, "summary", Some("好\u{202e}txt.exe".into())), "field `summary`: contains an invisible bidirectional formatting character (U+202E) at character 2"),
        (with(&list, "reason", Some("a\u{2067}b".into())), "field `reason`: contains an invisible bidirectional formatting character (U+2067)"),
        (with(&selfr, "summary", Some("\u{200f}".into())), "field `summary`: contains an invisible bidirectional"),
        (with(&comm, "summary", Some("a\u{61c}".into())), "field `summary`: contains an invisible bidirectional formatting character (U+061C)"),
        (with(&comp, "summary", Some("a\u{0}b".into())), "field `summary`: contains a control character (U+0000) at character 2"),
        (with(&comp, "summary", Some("a\rb".into())), "field `summary`: contains a control character (U+000D)"),
        (with(&comp, "summary", Some("a\u{7f}".into())), "field `summary`: contains a control character (U+007F)"),
        (with(&comp, "summary", Some("a\u{85}".into())), "field `summary`: contains a control character (U+0085)"),
        (with(&insp, "source", Some("双随机\n第2批".into())), "field `source`: contains a control character (U+000A) at character 4: remove it (line breaks and tabs are allowed only in summaries and reasons)"),
        (with(&insp, "id", Some("r\t1".into())), "field `id`: contains a control character (U+0009)"),
        (with(&samp, "product", Some("\u{1b}[31m大米".into())), "field `product`: contains a control character (U+001B)"),
        (with(&samp, "standard", Some("GB\u{202a}".into())), "field `standard`: contains an invisible bidirectional"),
        (with(&samp, "failed_items", Some(j!(["铅", "甲\u{2066}醇"]))), "field `failed_items[1]`: contains an invisible bidirectional formatting character (U+2066)"),
        (with(&pen, "decision_no", Some("P\u{0}1".into())), "field `decision_no`: contains a control character (U+0000)"),
        (with(&comp, "summary", Some(format!("{}\u{202e}", "话".repeat(1001)).into())), "field `summary`: longer than 1000 characters"),
        // a repeated key, known or not, at any depth
        (format!("{},\"kind\":\"commitment\"}}", insp.trim_end_matches('}')), "key `kind` appears twice in one object: keep one (at column"),
        (format!("{},\"hazards\":9}}", insp.trim_end_matches('}')), "key `hazards` appears twice"),
        (format!("{},\"x\":1,\"x\":2}}", comm.trim_end_matches('}')), "key `x` appears twice"),
        (format!("{},\"x\":[{{\"a\":1,\"a\":2}}]}}", comm.trim_end_matches('}')), "key `a` appears twice"),
        (format!("{}, \"id\": \"r2\"}}", comm.trim_end_matches('}')), "key `id` appears twice"),
    ];
    for (line, want) in cases {
        let err = parse_record(&line).expect_err(&line);
        assert!(err.contains(want), "{line}\n  got:  {err}\n  want: {want}");
    }
}

#[test]
fn prose_keeps_its_line_breaks_and_the_bounds_are_inclusive() {
    let ok = [
        rec(r#""kind":"complaint","substantiated":true,"summary":"缺斤短两\r\n已核实\t(复查)""#),
        rec(r#""kind":"list","list":"serious","action":"add","reason":"第一条\n第二条""#),
        rec(r#""kind":"penalty","decision_no":"P-1","severity":"severe","fine_cny":100000000000"#),
        rec(r#""kind":"penalty","decision_no":"P-1","severity":"severe","fine_cny":0"#),
        rec(r#""kind":"sampling","product":"ＡＢＣ😀 עִברִית العربية","passed":true"#),
    ];
    for line in ok {
        assert!(
            parse_record(&line).is_ok(),
            "{line}: {:?}",
            parse_record(&line)
        );
    }
}

/// Issue 17: what is stored of a record is its canonical form, the
/// same whatever the layout of the line it was read from.
#[test]
fn a_record_in_any_json_layout_has_one_canonical_form() {
    let layouts = [
        r#"{"id":"H1","merchant":"M1","kind":"penalty","date":"2026-01-02","decision_no":"叙〔2025〕1号","severity":"minor","fine_cny":50}"#,
        r#"{"id": "H1", "merchant": "M1", "kind": "penalty", "date": "2026-01-02", "decision_no": "叙〔2025〕1号", "severity": "minor", "fine_cny": 50}"#,
        r#"{ "fine_cny" : 50.0 , "severity" : "minor" , "decision_no" : "\u53d9\u3014\u0032025\u30151\u53f7" , "date" : "2026-01-02" , "kind" : "penalty" , "merchant" : "M1" , "id" : "\u0048\u0031" , "extra" : {"a": [1, 2]} }"#,
    ];
    let records: Vec<Record> = layouts.iter().map(|l| parse_record(l).unwrap()).collect();
    let canonical: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    assert!(
        canonical[0].starts_with(r#"{"id":"H1","#),
        "{}",
        canonical[0]
    );
    assert!(
        canonical.iter().all(|c| *c == canonical[0]),
        "{canonical:#?}"
    );
    // The stored form reads back, whichever way a store reads it.
    assert_eq!(parse_stored_record(&canonical[0]).unwrap(), records[0]);
    assert_eq!(
        serde_json::from_str::<Record>(&canonical[0]).unwrap(),
        records[0]
    );
}

/// Data an earlier version stored (which allowed more) still reads: only
/// input is held to the input rules.
#[test]
fn stored_records_are_read_without_the_input_rules() {
    let stored = rec(r#""kind":"complaint","substantiated":true,"summary":"a\u202eb\u0000""#);
    assert!(parse_record(&stored).is_err());
    let r = parse_stored_record(&stored).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&stored).unwrap(), r);
    let fine = rec(r#""kind":"penalty","decision_no":"P-1","severity":"severe","fine_cny":1e12"#);
    assert!(parse_record(&fine).is_err());
    assert!(parse_stored_record(&fine).is_ok());
    let twice = format!(
        "{},\"id\":\"r1\"}}",
        rec(r#""kind":"commitment""#).trim_end_matches('}')
    );
    assert!(parse_record(&twice).is_err());
    assert!(parse_stored_record(&twice).is_ok());
    let merchant = merchant_line(r#""contact_name":"张\u202e三""#);
    assert!(parse_merchant(&merchant).is_err());
    assert!(parse_stored_merchant(&merchant).is_ok());
    assert!(serde_json::from_str::<Merchant>(&merchant).is_ok());
    // Lengths stay bounded either way.
    let long = rec(&format!(
        r#""kind":"commitment","summary":"{}""#,
        "话".repeat(1001)
    ));
    assert!(parse_stored_record(&long).is_err());
}

/// The typed fast path reads objects only: serde's derived struct
/// readers would also take a list of the fields in declaration order.
#[test]
fn a_json_list_is_never_read_as_a_record_or_a_merchant() {
    let mut record = vec![Value::Null; 23];
    for (i, v) in ["r1", "M1", "commitment", "2025-06-01"].iter().enumerate() {
        record[i] = Value::from(*v);
    }
    let line = Value::Array(record).to_string();
    assert_eq!(
        parse_record(&line),
        Err("expected a JSON object, got a list".into())
    );
    let merchant: Vec<Value> = ["M1", "店", "shop", "", "路", "511504"]
        .iter()
        .map(|v| Value::from(*v))
        .chain([Value::Array(vec![]), Value::Null, Value::Null, Value::Null])
        .collect();
    let line = Value::Array(merchant).to_string();
    assert_eq!(
        parse_merchant(&line),
        Err("expected a JSON object, got a list".into())
    );
}

#[test]
fn a_repeated_key_is_named_with_its_column() {
    assert_eq!(
        json_without_repeated_keys(r#"{"grade":"green","reason":"x","grade":"red"}"#),
        Err("key `grade` appears twice in one object: keep one (at column 37)".into())
    );
    assert_eq!(
        json_without_repeated_keys(r#"{"a":{"b":1},"c":{"b":1}}"#),
        Ok(serde_json::json!({"a":{"b":1},"c":{"b":1}}))
    );
    assert!(json_without_repeated_keys("{")
        .unwrap_err()
        .starts_with("invalid JSON"));
    // Nesting is bounded by serde_json's recursion limit, not the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(json_without_repeated_keys(&deep).is_err());
}

#[test]
fn hostile_input_is_echoed_only_in_part() {
    let line = rec(&format!(r#""kind":"{}""#, "k".repeat(5000)));
    let err = parse_record(&line).unwrap_err();
    assert!(err.len() < 300, "{err}");
}

#[test]
fn jsonl_reader_reports_file_and_line_and_skips_blank_lines() {
    let good = rec(r#""kind":"commitment""#);
    let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_LINE_BYTES + 10));
    let mut input = Vec::new();
    input.extend_from_slice(b"\xEF\xBB\xBF");
    input.extend_from_slice(good.as_bytes());
    input.extend_from_slice(b"\r\n\n   \n");
    input.extend_from_slice(long.as_bytes());
    input.extend_from_slice(b"\n\xFF\xFE\n{\"id\":1}\n");
    input.extend_from_slice(good.as_bytes()); // no final newline
    let mut oks = Vec::new();
    let mut rejects = Vec::new();
    let n = read_jsonl_from(
        io::BufReader::with_capacity(16, input.as_slice()),
        "records.jsonl",
        parse_record,
        |r, line| oks.push((r, line)),
        |r| rejects.push(r),
    )
    .unwrap();
    assert_eq!(n, 7);
    assert_eq!(oks.len(), 2);
    let lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![4, 5, 6], "{rejects:?}");
    assert!(rejects[0].reason.contains("longer than 65536 bytes"));
    assert!(rejects[1].reason.contains("UTF-8"));
    assert_eq!(rejects[2].file, "records.jsonl");
    assert_eq!(
        rejects[2].to_string(),
        format!("records.jsonl:6: {}", rejects[2].reason)
    );
}

#[test]
fn jsonl_reader_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("ysz-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("merchants.jsonl");
    std::fs::write(&path, format!("{}\n{{}}\n", merchant_line(""))).unwrap();
    let mut oks = Vec::new();
    let mut rejects = Vec::new();
    let n = read_jsonl(
        &path,
        parse_merchant,
        |_, line| oks.push(line),
        |r| rejects.push(r),
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!((n, oks), (2, vec![1]));
    assert_eq!(rejects[0].line, 2);
    assert!(rejects[0].file.ends_with("merchants.jsonl"));
    assert!(read_jsonl(&dir.join("missing"), parse_merchant, |_, _| (), |_| ()).is_err());
}

mod props;

/// A record's text may hold the sampling kind's member, escaped: only a
/// sampling record's canonical JSON holds it as written.
#[test]
fn only_a_sampling_records_canonical_json_holds_its_kind_member() {
    let line = rec(r#""kind":"complaint","substantiated":true,"summary":"\"kind\":\"sampling\"""#);
    let r = parse_record(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(!r.is_sampling());
    let canonical = serde_json::to_vec(&r).unwrap();
    assert_eq!(memchr::memmem::find(&canonical, SAMPLING_KIND_MEMBER), None);
    assert!(String::from_utf8(canonical).unwrap().contains("kind"));
}
