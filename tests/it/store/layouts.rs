//! Any JSON layout, any re-run: records in Python's layout, CSV, compact.

use super::*;

/// The merchants of the layout fixtures.
pub(super) fn layout_merchants() -> Vec<serde_json::Value> {
    vec![
        json!({"id": "L1", "name": "叙州区好味超市", "kind": "shop", "uscc": "91350100M000100Y43",
               "address": "叙州区南岸东路1号", "region": "511521", "categories": ["食品", "酒类"],
               "contact_name": "张三", "contact_phone": "13800001234"}),
        json!({"id": "L2", "name": "Café \"Zhang\" 小吃", "kind": "vendor", "address": "集市",
               "region": "511521", "categories": []}),
        json!({"id": "L3", "name": "粮油店", "kind": "shop", "address": "南岸西路2号",
               "region": "511521", "categories": ["粮油"], "id_number": "511521199001011234"}),
    ]
}

/// Records of every kind; ids with non-ASCII characters, a quote and a
/// backslash (escaped in any JSON layout), and a field the contract does
/// not know.
pub(super) fn layout_records() -> Vec<serde_json::Value> {
    vec![
        json!({"id": "H1", "merchant": "L1", "kind": "inspection", "date": "2026-02-01",
               "source": "双随机-2026-3", "hazards": 2, "deadline": "2026-02-10", "rectified": false}),
        json!({"id": "抽检/2026-01", "merchant": "L1", "kind": "sampling", "date": "2026-01-15",
               "product": "散装白酒", "standard": "GB 2757-2012", "passed": false,
               "failed_items": ["甲醇", "铅"]}),
        json!({"id": "P\"1\\a", "merchant": "L1", "kind": "penalty", "date": "2025-12-01",
               "decision_no": "叙市监处罚〔2025〕12号", "severity": "general", "fine_cny": 5000.5,
               "publicity_until": "2026-06-01"}),
        json!({"id": "C1", "merchant": "L2", "kind": "complaint", "date": "2026-02-20",
               "substantiated": true, "summary": "缺斤短两\n已核实", "operator": "王五"}),
        json!({"id": "LS1", "merchant": "L2", "kind": "list", "date": "2025-11-01",
               "list": "abnormal", "action": "add", "reason": "地址无法联系"}),
        json!({"id": "SR1", "merchant": "L3", "kind": "self_report", "date": "2026-02-25",
               "report_type": "incoming_check", "summary": "进货查验"}),
        json!({"id": "CM1", "merchant": "L3", "kind": "commitment", "date": "2026-01-02"}),
        json!({"id": "H2", "merchant": "L3", "kind": "inspection", "date": "2026-02-26",
               "hazards": 0, "rectified": true, "rectified_on": "2026-02-27", "source": null}),
    ]
}

/// JSON as Python's `json.dumps` writes it by default: a space after each
/// colon and comma, every non-ASCII character as a `\u` escape; and, unlike
/// the compact fixtures, with each object's keys in reverse order.
pub(super) fn python_style(v: &serde_json::Value) -> String {
    use serde_json::Value;
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                ' '..='~' => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
        out.push('"');
    }
    fn value(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    value(item, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, item)) in m.iter().rev().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out);
                    out.push_str(": ");
                    value(item, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    value(v, &mut out);
    out
}

/// One CSV file of `rows` (a header of every field any row has; lists
/// joined with `;`, absent and null fields empty).
pub(super) fn csv_of(rows: &[serde_json::Value]) -> String {
    use serde_json::Value;
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for k in r.as_object().unwrap().keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&names).unwrap();
    for r in rows {
        let cells = names.iter().map(|n| match r.get(n) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        });
        w.write_record(cells).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// Regression test of issue 17: records written with a space after each
/// colon (as Python's `json` module writes them) imported fine the first
/// time on Redis Cluster, but a second refresh of the same files failed
/// with "store data corrupt: record …: its JSON does not start with its id".
/// The fixtures are imported in three layouts (compact; Python's, with
/// keys in another order; CSV), each refresh run twice, on every store:
/// nothing after the first run is new, nothing is rejected, and the stored
/// records and projections are those of the compact run.
pub(super) async fn a_second_refresh_of_records_with_a_space_after_each_colon_changes_nothing(
    b: Backend,
) {
    use yisaozhi::refresh::{self, RefreshOptions};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ms = layout_merchants();
    let rs = layout_records();
    let lines = |items: &[serde_json::Value], f: fn(&serde_json::Value) -> String| {
        items.iter().map(|v| f(v) + "\n").collect::<String>()
    };
    let layouts = [
        (
            "compact",
            "jsonl",
            lines(&ms, |v| v.to_string()),
            lines(&rs, |v| v.to_string()),
        ),
        (
            "python",
            "jsonl",
            lines(&ms, python_style),
            lines(&rs, python_style),
        ),
        ("csv", "csv", csv_of(&ms), csv_of(&rs)),
    ];
    // Spaces after colons, non-ASCII escaped, keys in another order.
    assert!(
        layouts[1].3.starts_with(r#"{"source": "\u53cc"#),
        "{}",
        layouts[1].3
    );
    let all = (ms.len() + rs.len()) as u64;
    let rules = Rules::default();
    let mut first = None;
    for (name, ext, merchants_text, records_text) in &layouts {
        let merchants = dir.join(format!("{name}-merchants.{ext}"));
        let records = dir.join(format!("{name}-records.{ext}"));
        std::fs::write(&merchants, merchants_text).unwrap();
        std::fs::write(&records, records_text).unwrap();
        for run in 1..=2 {
            let opts = RefreshOptions {
                merchants: Some(merchants.clone()),
                records: vec![records.clone()],
                as_of: AS_OF,
                full: false,
                rejects: dir.join("rejects.jsonl"),
                shard: None,
                stop: None,
            };
            let summary = refresh::run(b.store.as_ref(), &rules, &opts)
                .await
                .unwrap_or_else(|e| panic!("{name} run {run}: {e:#}"));
            let what = format!("{name} run {run}: {summary:?}");
            assert_eq!(summary.rejected, 0, "{what}");
            if first.is_none() {
                assert_eq!((summary.imported, summary.duplicate), (all, 0), "{what}");
            } else {
                assert_eq!((summary.imported, summary.duplicate), (0, all), "{what}");
            }
            let stored = crate::refresh::without_updated_at(
                crate::helpers::all_projections(b.store.as_ref()).await,
            );
            assert_eq!(stored.len(), ms.len(), "{what}");
            let first = first.get_or_insert_with(|| stored.clone());
            assert_eq!(&stored, first, "{what}");
        }
    }
    for m in &ms {
        let mid = id(m["id"].as_str().unwrap());
        let want: Vec<Record> = rs
            .iter()
            .filter(|r| r["merchant"] == m["id"])
            .map(|r| records::parse_record(&r.to_string()).unwrap())
            .collect();
        assert_eq!(
            b.store.records(&mid).await.unwrap(),
            want,
            "records of {mid}"
        );
        let want_m = records::parse_merchant(&m.to_string()).unwrap();
        assert_eq!(b.store.merchant(&mid).await.unwrap(), Some(want_m));
    }
}

/// A cluster store written by a version that kept each JSONL line as it
/// was read holds records in any layout: a re-run still finds them by the
/// value of their id and stores none of them twice.
#[tokio::test]
pub(super) async fn cluster_records_stored_as_read_by_an_earlier_version_are_not_stored_twice() {
    let b = Backend::cluster().await;
    let r = redis_of(&b);
    b.store.upsert_merchants(merchants(&["A"])).await.unwrap();
    let port = redis_helpers::cluster().nodes[0].port;
    let legacy = [
        (
            "s1",
            r#"{"id": "s1", "merchant": "A", "kind": "complaint", "date": "2026-01-01", "substantiated": false}"#,
        ),
        (
            "s2",
            r#"{"merchant":"A","id":"s2","kind":"complaint","date":"2026-01-02","substantiated":false}"#,
        ),
        (
            "s3",
            r#"{"id":"\u0073\u0033","merchant":"A","kind":"complaint","date":"2026-01-03","substantiated":false}"#,
        ),
    ];
    let list = format!("{}:{{A}}:records", r.prefix());
    for (rid, json) in legacy {
        let owner = format!(
            "{}:{{{}}}:ix:record-owner",
            r.prefix(),
            yisaozhi::store::redis::slot_tag(slot_of(rid))
        );
        assert_eq!(
            redis_cli(port, &["-c", "hsetnx", &owner, rid, "A"]).trim(),
            "1"
        );
        assert_eq!(
            redis_cli(port, &["-c", "rpush", &list, json])
                .trim()
                .parse::<usize>()
                .ok(),
            Some(rid[1..].parse().unwrap())
        );
    }
    let again = vec![
        record("s1", "A", "2026-01-01"),
        record("s2", "A", "2026-01-02"),
        record("s3", "A", "2026-01-03"),
        record("s4", "A", "2026-01-04"),
    ];
    assert_eq!(
        b.store.add_records(again.clone()).await.unwrap(),
        RecordsAdded {
            inserted: 1,
            duplicate: 3
        }
    );
    assert_eq!(b.store.records(&id("A")).await.unwrap(), again);
}
