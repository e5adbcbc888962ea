//! Credit repair and replies in grading and the projection.

use super::*;

fn repair(id: &str, date: Date, of: &str) -> Record {
    record(id, date, RecordBody::Repair { record: of.into() })
}

#[test]
fn a_repair_ends_publicity_and_the_abnormal_list_from_its_date_but_no_red_rule() {
    let rules = Rules::default();
    let rules_of = |g: &Grading| g.reasons.iter().map(|r| r.rule.clone()).collect::<Vec<_>>();
    let p = pen("p1", off(-30), Minor, 500.0, Some(off(60)));
    let l = list("l1", off(-20), Abnormal, Add);
    // Repaired in the past: both end.
    let g = grade(
        &rules,
        &[
            p.clone(),
            l.clone(),
            repair("x1", off(-5), "p1"),
            repair("x2", off(-1), "l1"),
        ],
        as_of(),
    );
    assert_eq!(
        (g.grade, rules_of(&g)),
        (Grade::Green, vec!["G".to_owned()])
    );
    // Repaired tomorrow: still matching today, until the repair's date.
    let g = grade(&rules, &[p.clone(), repair("x1", off(1), "p1")], as_of());
    assert_eq!(rules_of(&g), ["Y2"]);
    assert_eq!(
        (g.reasons[0].until, g.next_change_at),
        (Some(off(1)), Some(off(1)))
    );
    let g = grade(&rules, &[l.clone(), repair("x2", off(3), "l1")], as_of());
    assert_eq!(
        (g.reasons[0].until, g.next_change_at),
        (Some(off(3)), Some(off(3)))
    );
    // A repair dated before its record, or of an entry already replaced, changes nothing.
    let g = grade(&rules, &[p.clone(), repair("x1", off(-40), "p1")], as_of());
    assert_eq!(rules_of(&g), ["Y2"]);
    let again = list("l2", off(-10), Abnormal, Add);
    let g = grade(
        &rules,
        &[l.clone(), again, repair("x2", off(-5), "l1")],
        as_of(),
    );
    assert_eq!(rules_of(&g), ["Y1"]);
    // Red rules are not repairable: a severe penalty stays red; the serious list too.
    let severe = pen("p2", off(-30), Severe, 20000.0, Some(off(60)));
    let serious = list("l3", off(-20), Serious, Add);
    let g = grade(
        &rules,
        &[
            severe,
            serious,
            repair("x3", off(-5), "p2"),
            repair("x4", off(-5), "l3"),
        ],
        as_of(),
    );
    assert_eq!(rules_of(&g), ["R1", "R2"]);
    // The summary agrees: the repaired penalty and list entry are not shown.
    let s = summarize(
        &[
            p,
            l,
            repair("x1", off(-5), "p1"),
            repair("x2", off(-1), "l1"),
        ],
        &rules,
        as_of(),
    );
    assert!(s.penalties.is_empty() && s.lists.is_empty(), "{s:?}");
}

#[test]
fn the_rules_file_says_which_rules_a_repair_ends() {
    let rules = Rules::default();
    let ids = |v: Vec<&Rule>| v.into_iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(rules.repair_ends(&pen("p", as_of(), Severe, 1e5, Some(off(9))).body)),
        ["Y2"]
    );
    assert!(rules
        .repair_ends(&pen("p", as_of(), Minor, 1.0, None).body)
        .is_empty());
    assert_eq!(
        ids(rules.repair_ends(&list("l", as_of(), Abnormal, Add).body)),
        ["Y1"]
    );
    assert!(rules
        .repair_ends(&list("l", as_of(), Serious, Add).body)
        .is_empty());
    let red = "[[rule]]\nid = \"R1\"\ngrade = \"red\"\ntext = \"t\"\nwhen = \"list_active\"\nlist = \"serious\"\nrepairable = true\n";
    assert_eq!(
        Rules::from_toml(red).unwrap_err().to_string(),
        "rule `R1`: key `repairable`: red rules are not repairable"
    );
    let hazard = "[[rule]]\nid = \"Y4\"\ngrade = \"yellow\"\ntext = \"t\"\nwhen = \"hazard\"\nwindow_days = 180\nrepairable = true\n";
    assert!(Rules::from_toml(hazard)
        .unwrap_err()
        .to_string()
        .contains("only `publicity` and `list_active`"));
}

#[test]
fn a_reply_shows_under_the_reason_or_record_it_answers_once_on_record() {
    let m = parse_merchant(r#"{"id":"XZ-0001","name":"店","kind":"shop","address":"路1号","region":"511504","categories":[]}"#).unwrap();
    let reply = |id: &str, date: Date, of: Option<&str>, rule: Option<&str>, text: &str| {
        record(
            id,
            date,
            RecordBody::Reply {
                record: of.map(Into::into),
                rule: rule.map(Into::into),
                text: text.into(),
            },
        )
    };
    let records = [
        pen("p1", off(-30), Minor, 500.0, Some(off(60))),
        reply("a", off(-3), None, Some("Y2"), "旧的回复"),
        reply("b", off(-2), None, Some("Y2"), "已整改"),
        reply("c", off(-2), Some("p1"), None, "无异议"),
        reply("d", off(5), Some("p1"), None, "以后的"),
        reply("e", off(-100), None, Some("Y1"), "上次的"),
    ];
    let p = project(
        &m,
        &records,
        None,
        &Rules::default(),
        as_of(),
        Timestamp::UNIX_EPOCH,
    );
    let y2 = p.reasons.iter().find(|r| r.rule == "Y2").unwrap();
    assert_eq!(
        y2.reply,
        Some(Reply {
            text: "已整改".into(),
            at: off(-2)
        })
    );
    assert_eq!(
        p.records.penalties[0]
            .reply
            .as_ref()
            .map(|r| r.text.as_str()),
        Some("无异议")
    );
    // Without replies the projection's JSON has no `reply` key at all.
    let plain = project(
        &m,
        &records[..1],
        None,
        &Rules::default(),
        as_of(),
        Timestamp::UNIX_EPOCH,
    );
    assert!(!serde_json::to_string(&plain).unwrap().contains("reply"));
}
