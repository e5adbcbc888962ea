//! Properties of the parser over generated lines: the fast path agrees with
//! the general one, nothing panics, every forbidden character is refused.

use super::*;
use proptest::prelude::*;

/// Any JSON value a field might hold, good or bad.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..40).prop_map(Value::from),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(20000)),
        prop::sample::select(vec![
            "",
            " ",
            "2025-06-01",
            "2026-13-01",
            "2026-02-30",
            "0001-01-01",
            "M1",
            "商户",
            "inspection",
            "sampling",
            "penalty",
            "complaint",
            "list",
            "self_report",
            "commitment",
            "foo",
            "severe",
            "minor",
            "serious",
            "abnormal",
            "add",
            "remove",
            "invoice",
            "shop",
            "vendor",
            "511504",
            "91350100M000100Y43",
            "a\\u0001b",
            "x\\ny",
            "91350100M000100Y44",
        ])
        .prop_map(|s| Value::String(serde_json::from_str(&format!("\"{s}\"")).unwrap())),
        prop::collection::vec(
            prop_oneof![
                Just(Value::from("甲醇")),
                Just(Value::from("")),
                Just(Value::from(3))
            ],
            0..3
        )
        .prop_map(Value::Array),
        Just(serde_json::json!({"a": 1})),
    ]
}

const FIELDS: &[&str] = &[
    "id",
    "merchant",
    "kind",
    "date",
    "source",
    "hazards",
    "deadline",
    "rectified",
    "rectified_on",
    "product",
    "standard",
    "passed",
    "failed_items",
    "decision_no",
    "severity",
    "fine_cny",
    "publicity_until",
    "substantiated",
    "summary",
    "list",
    "action",
    "reason",
    "report_type",
    "name",
    "uscc",
    "address",
    "region",
    "categories",
    "contact_name",
    "contact_phone",
    "id_number",
    "unknown",
];

/// A good line of each shape with text fields, one text field of
/// it, and whether that field is prose (may hold line breaks).
const TEXT_FIELDS: &[(&str, &str, bool)] = &[
    (INSPECTION, "id", false),
    (INSPECTION, "source", false),
    (SAMPLING, "product", false),
    (SAMPLING, "standard", false),
    (SAMPLING, "failed_items[0]", false),
    (PENALTY, "decision_no", false),
    (COMPLAINT, "summary", true),
    (LIST, "reason", true),
    (SELF_REPORT, "summary", true),
    (COMMITMENT, "summary", true),
    (MERCHANT, "name", false),
    (MERCHANT, "address", false),
    (MERCHANT, "uscc", false),
    (MERCHANT, "categories[0]", false),
    (MERCHANT, "contact_name", false),
    (MERCHANT, "contact_phone", false),
    (MERCHANT, "id_number", false),
];
const INSPECTION: &str = r#"{"id":"r1","merchant":"M1","kind":"inspection","date":"2025-06-01","source":"s","hazards":1,"rectified":false}"#;
const SAMPLING: &str = r#"{"id":"r1","merchant":"M1","kind":"sampling","date":"2025-06-01","product":"米","standard":"GB","passed":false,"failed_items":["铅"]}"#;
const PENALTY: &str = r#"{"id":"r1","merchant":"M1","kind":"penalty","date":"2025-06-01","decision_no":"P-1","severity":"minor","fine_cny":5}"#;
const COMPLAINT: &str = r#"{"id":"r1","merchant":"M1","kind":"complaint","date":"2025-06-01","substantiated":true,"summary":"x"}"#;
const LIST: &str = r#"{"id":"r1","merchant":"M1","kind":"list","date":"2025-06-01","list":"serious","action":"add","reason":"x"}"#;
const SELF_REPORT: &str = r#"{"id":"r1","merchant":"M1","kind":"self_report","date":"2025-06-01","report_type":"invoice","summary":"x"}"#;
const COMMITMENT: &str =
    r#"{"id":"r1","merchant":"M1","kind":"commitment","date":"2025-06-01","summary":"x"}"#;
const MERCHANT: &str = r#"{"id":"M1","name":"店","kind":"shop","uscc":"91350100M000100Y43","address":"路","region":"511504","categories":["食品"],"contact_name":"张三","contact_phone":"138","id_number":"5115"}"#;

/// Every character the text rules refuse somewhere.
fn forbidden_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
        prop::sample::select(vec![
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}', '\u{2028}', '\u{2029}',
        ]),
    ]
}

fn object_line() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((prop::sample::select(FIELDS), any_value()), 0..14),
        prop::sample::select(vec![
            "inspection",
            "sampling",
            "penalty",
            "list",
            "commitment",
        ]),
        any::<bool>(),
    )
        .prop_map(|(fields, kind, duplicate)| {
            let mut parts = vec![
                r#""id":"r1""#.to_owned(),
                r#""merchant":"M1""#.to_owned(),
                r#""date":"2025-06-01""#.to_owned(),
                r#""name":"店""#.to_owned(),
                r#""address":"路""#.to_owned(),
                r#""region":"511504""#.to_owned(),
                r#""categories":[]"#.to_owned(),
                format!(r#""kind":"{kind}""#),
            ];
            for (k, v) in &fields {
                parts.push(format!("{}:{v}", Value::from(*k)));
            }
            if duplicate {
                parts.push(r#""id":"r2""#.to_owned());
            }
            format!("{{{}}}", parts.join(","))
        })
}

proptest! {
    /// The typed fast path and the `Value` path accept the same
    /// lines, give the same records, and refuse with the same words.
    #[test]
    fn the_fast_path_agrees_with_the_general_one(line in object_line()) {
        let slow_record = object(&line, Mode::Input).and_then(|m| record_from_value(&m, Mode::Input));
        prop_assert_eq!(parse_record(&line), slow_record.clone(), "{}", line);
        if let Ok(r) = slow_record {
            let mut binary = Vec::new();
            encode_record(&r, &mut binary);
            prop_assert_eq!(decode_record(&r.merchant, &binary), Ok(r), "{}", line);
        }
        let slow_merchant = object(&line, Mode::Input).and_then(|m| merchant_from_value(&m, Mode::Input));
        prop_assert_eq!(parse_merchant(&line), slow_merchant, "{}", line);
    }

    #[test]
    fn the_parsers_never_panic(line in ".{0,300}") {
        let _ = parse_record(&line);
        let _ = parse_merchant(&line);
    }

    /// Any byte soup made of JSON's punctuation, escapes and the
    /// characters the text rules refuse: the parsers answer, never panic.
    #[test]
    fn the_parsers_never_panic_on_json_like_junk(
        junk in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "[", "]", "\"", ":", ",", " ", "\\", "\\u", "\\u202e", "\\ud800",
            "0", "1e999", "-", "null", "true", "id", "kind", "\"id\"", "\"kind\"",
            "\u{0}", "\u{202e}", "\u{85}", "\n", "\r", "话", "😀",
        ]), 0..80)
    ) {
        let line: String = junk.concat();
        let _ = parse_record(&line);
        let _ = parse_merchant(&line);
        let _ = parse_stored_record(&line);
        let _ = parse_stored_merchant(&line);
        let _ = json_without_repeated_keys(&line);
        let header = CsvHeader::parse("id,merchant,kind,date,summary", Path::new("x.csv")).unwrap();
        let _ = RowParser::Csv(std::sync::Arc::new(header)).record(&line);
    }

    /// A forbidden character anywhere in any text field of a
    /// record or a merchant, read from JSONL or CSV, is refused with
    /// the field named.
    #[test]
    fn a_forbidden_character_in_any_text_field_is_refused(
        (base, field, lines) in prop::sample::select(TEXT_FIELDS),
        bad in forbidden_char(),
        at in 0usize..4,
    ) {
        let ok = lines && matches!(bad, '\n' | '\t');
        prop_assume!(!ok);
        let mut obj: Map<String, Value> = serde_json::from_str(base).unwrap();
        let (key, list) = match field.strip_suffix("[0]") {
            Some(key) => (key, true),
            None => (field, false),
        };
        let mut text: Vec<char> = "甲乙丙".chars().collect();
        text.insert(at.min(text.len()), bad);
        let text: String = text.into_iter().collect();
        obj.insert(key.into(), if list { Value::from(vec![text.clone()]) } else { Value::from(text.clone()) });
        let line = Value::Object(obj.clone()).to_string();
        let merchant = obj.contains_key("region");
        let want = format!("field `{field}`: contains ");
        let got = if merchant { parse_merchant(&line).map(drop) } else { parse_record(&line).map(drop) };
        prop_assert!(got.as_ref().is_err_and(|e| e.starts_with(&want)), "{}: {:?}", line, got);
        // The same entry as a CSV row.
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(obj.keys()).unwrap();
        let header = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(obj.values().map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";"),
            other => other.to_string(),
        })).unwrap();
        let row = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let parser = RowParser::Csv(std::sync::Arc::new(CsvHeader::parse(header.trim_end(), Path::new("x.csv")).unwrap()));
        let row = row.trim_end_matches(['\r', '\n']);
        // CSV list items are trimmed: a space-like character at an
        // end of one is dropped, not stored.
        let trimmed = list && (at == 0 || at >= 3) && bad.is_whitespace();
        let got = if merchant { parser.merchant(row).map(drop) } else { parser.record(row).map(drop) };
        prop_assert!(trimmed || got.as_ref().is_err_and(|e| e.starts_with(&want)), "{}: {:?}", row, got);
    }

    /// Any key of a good line repeated, with any value, in either
    /// layout: the line is refused with the key named.
    #[test]
    fn a_line_with_any_key_repeated_is_refused(
        (base, _, _) in prop::sample::select(TEXT_FIELDS),
        pick in any::<prop::sample::Index>(),
        value in any_value(),
        spaced in any::<bool>(),
    ) {
        let obj: Map<String, Value> = serde_json::from_str(base).unwrap();
        let keys: Vec<&String> = obj.keys().collect();
        let key = keys[pick.index(keys.len())];
        let sep = if spaced { ", " } else { "," };
        let line = format!("{}{sep}{}:{value}}}", base.trim_end_matches('}'), Value::from(key.as_str()));
        let want = format!("key `{key}` appears twice");
        let got = if obj.contains_key("region") { parse_merchant(&line).map(drop) } else { parse_record(&line).map(drop) };
        prop_assert!(got.as_ref().is_err_and(|e| e.contains(&want)), "{}: {:?}", line, got);
    }

    #[test]
    fn reasons_stay_short(junk in "[a-z\u{4e00}-\u{4e10}]{0,600}") {
        let line = rec(&format!(r#""kind":"sampling","product":"x","passed":false,"failed_items":["{junk}"]"#));
        if let Err(e) = parse_record(&line) {
            prop_assert!(e.chars().count() < 200, "{}", e);
        }
    }
}
