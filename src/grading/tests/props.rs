//! Properties of the grading function over generated records: what it says
//! of `since`, `until` and `next_change_at` holds day by day.

use std::collections::HashSet;

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
                plan: None,
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
        // A credit repair of one of the generated records (ids r00..r13).
        (0usize..14).prop_map(|i| RecordBody::Repair {
            record: format!("r{i:02}")
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
    fn a_repair_never_worsens_the_grade_and_never_ends_a_red_rule(
        recs in records(),
        target in 0usize..14,
        day in -600i64..120,
    ) {
        let rules = Rules::default();
        let before = grade(&rules, &recs, as_of());
        let mut repaired = recs.clone();
        repaired.push(record("fix", off(day), RecordBody::Repair { record: format!("r{target:02}") }));
        let after = grade(&rules, &repaired, as_of());
        prop_assert!(after.grade <= before.grade, "{:?} -> {:?}", before.grade, after.grade);
        let red = |g: &Grading| -> Vec<String> {
            g.reasons
                .iter()
                .filter(|r| rules.get(&r.rule).is_some_and(|x| x.grade == Grade::Red))
                .map(|r| r.rule.clone())
                .collect()
        };
        prop_assert_eq!(red(&before), red(&after));
    }

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
