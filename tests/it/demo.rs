//! The demo data, graded end to end: every rule of CONTRACT §4 fires for some
//! merchant, and every grade appears with its reasons.

use std::collections::BTreeSet;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_designed_merchant_scans_with_its_expected_grade_and_rules() {
    let app = spawn_app().await;
    let today = yisaozhi::clock::today();
    let mut rules_seen = BTreeSet::new();
    let mut grades_seen = BTreeSet::new();
    for (id, grade, rules) in yisaozhi::demo_data::expected_grades(today) {
        let scan = app.scan(id).await;
        assert_eq!(scan["code"]["status"], "valid", "{id}");
        assert_eq!(scan["grade"], grade, "{id}: {scan}");
        let got: BTreeSet<String> = scan["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap().to_owned())
            .collect();
        let mut want: BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
        if want.is_empty() {
            // Green says why too: none of the rules applies.
            want.insert("G".into());
        }
        assert_eq!(got, want, "{id}");
        for r in scan["reasons"].as_array().unwrap() {
            assert!(
                !r["text"].as_str().unwrap().is_empty(),
                "{id}: reason without text"
            );
        }
        rules_seen.extend(want.into_iter().filter(|r| r != "G"));
        grades_seen.insert(grade);
    }
    for rule in ["R1", "R2", "R3", "R4", "Y1", "Y2", "Y3", "Y4", "Y5"] {
        assert!(rules_seen.contains(rule), "no demo merchant fires {rule}");
    }
    assert_eq!(grades_seen.len(), 3);
}

#[tokio::test]
async fn demo_input_files_are_written_in_the_contract_format() {
    let app = spawn_app().await;
    let merchants = std::fs::read_to_string(app.dir.path().join("merchants.jsonl")).unwrap();
    let records = std::fs::read_to_string(app.dir.path().join("records.jsonl")).unwrap();
    let merchants: Vec<_> = merchants
        .lines()
        .map(yisaozhi::records::parse_merchant)
        .collect();
    let records: Vec<_> = records
        .lines()
        .map(yisaozhi::records::parse_record)
        .collect();
    assert!(merchants.len() >= 60);
    assert!(merchants.iter().all(Result::is_ok));
    assert!(records.iter().all(Result::is_ok));
    let token = std::fs::read_to_string(app.dir.path().join("admin-token")).unwrap();
    assert_eq!(token.trim(), app.token);
}

#[tokio::test]
async fn preparing_the_demo_twice_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let first = yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let second = yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    assert_eq!(first.token, second.token);
    assert!(first.codes_issued >= 60);
    assert_eq!(second.codes_issued, 0);
    assert_eq!(second.summary.imported, 0);
    assert_eq!(second.summary.duplicate, first.summary.imported);
    assert_eq!(first.samples.len(), 3);
}
