//! Merchants, records, projections and regrade marks.

use super::*;

pub(super) async fn ping_answers(b: Backend) {
    b.store.ping().await.expect("ping");
}

pub(super) async fn upsert_merchants_counts_new_and_changed_ones(b: Backend) {
    let s = &b.store;
    assert_eq!(s.upsert_merchants(merchants(&["A", "B"])).await.unwrap(), 2);
    assert_eq!(
        s.upsert_merchants(merchants(&["A", "B"])).await.unwrap(),
        0,
        "unchanged"
    );
    let renamed = merchant("A", "新名字");
    assert_eq!(
        s.upsert_merchants(vec![
            renamed.clone(),
            merchant("B", "商户B"),
            merchant("C", "商户C")
        ])
        .await
        .unwrap(),
        2,
        "A changed, B unchanged, C new"
    );
    assert_eq!(s.merchant(&id("A")).await.unwrap(), Some(renamed.clone()));
    assert_eq!(
        s.merchant(&id("B")).await.unwrap(),
        Some(merchant("B", "商户B"))
    );
    assert_eq!(s.merchant(&id("X")).await.unwrap(), None);
    assert_eq!(
        s.upsert_merchants(vec![merchant("D", "d"), merchant("D", "d")])
            .await
            .unwrap(),
        1,
        "the same merchant twice in one batch counts once"
    );
    let renamed_again = merchant("A", "又一个名字");
    assert_eq!(
        s.upsert_merchants(vec![renamed_again, renamed.clone(), merchant("D", "d")])
            .await
            .unwrap(),
        2,
        "each of A's two lines compares with the one before it"
    );
    assert_eq!(
        s.merchant(&id("A")).await.unwrap(),
        Some(renamed),
        "the last line"
    );
    assert_eq!(s.upsert_merchants(Vec::new()).await.unwrap(), 0);
    assert_eq!(
        s.all_merchant_ids().await.unwrap(),
        ids(&["A", "B", "C", "D"])
    );
    assert_eq!(
        s.known_merchants(ids(&["C", "X", "A", "Y"])).await.unwrap(),
        ids(&["C", "A"]),
        "known ones, in the order asked"
    );
    assert_eq!(
        s.known_merchants(Vec::new()).await.unwrap(),
        Vec::<MerchantId>::new()
    );
}

pub(super) async fn add_records_keeps_import_order_and_skips_duplicate_ids(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    let first = vec![
        record("r3", "A", "2026-01-03"),
        record("r1", "A", "2026-01-01"),
        record("r4", "B", "2026-01-04"),
        record("r2", "A", "2026-01-02"),
    ];
    assert_eq!(
        s.add_records(first.clone()).await.unwrap(),
        RecordsAdded {
            inserted: 4,
            duplicate: 0
        }
    );
    let ids_of = |rs: Vec<Record>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(s.records(&id("A")).await.unwrap()),
        ["r3", "r1", "r2"],
        "import order"
    );
    assert_eq!(
        s.records(&id("A")).await.unwrap()[0],
        first[0],
        "stored as given"
    );

    // r1 again with other content, r4 again, r5 new: only r5 lands, r1 stays as it was.
    let again = vec![
        record("r1", "A", "2025-12-31"),
        record("r5", "A", "2026-01-05"),
        record("r4", "B", "2026-01-04"),
    ];
    assert_eq!(
        s.add_records(again).await.unwrap(),
        RecordsAdded {
            inserted: 1,
            duplicate: 2
        }
    );
    let a = s.records(&id("A")).await.unwrap();
    assert_eq!(ids_of(a.clone()), ["r3", "r1", "r2", "r5"]);
    assert_eq!(a[1], first[1], "a duplicate is left as it was");

    // Record ids are global: the same id for another merchant is a duplicate.
    assert_eq!(
        s.add_records(vec![record("r1", "B", "2026-01-06")])
            .await
            .unwrap(),
        RecordsAdded {
            inserted: 0,
            duplicate: 1
        }
    );
    assert_eq!(ids_of(s.records(&id("B")).await.unwrap()), ["r4"]);

    // Within one batch the first of one id wins.
    assert_eq!(
        s.add_records(vec![
            record("r6", "A", "2026-01-06"),
            record("r6", "A", "2026-01-07"),
            record("r7", "B", "2026-01-07"),
            record("r7", "A", "2026-01-07"),
        ])
        .await
        .unwrap(),
        RecordsAdded {
            inserted: 2,
            duplicate: 2
        }
    );
    assert_eq!(
        ids_of(s.records(&id("A")).await.unwrap()),
        ["r3", "r1", "r2", "r5", "r6"]
    );
    assert_eq!(s.records(&id("A")).await.unwrap()[4].date, date(2026, 1, 6));
    assert_eq!(ids_of(s.records(&id("B")).await.unwrap()), ["r4", "r7"]);
    assert_eq!(s.records(&id("X")).await.unwrap(), Vec::<Record>::new());
    assert_eq!(
        s.add_records(Vec::new()).await.unwrap(),
        RecordsAdded::default()
    );

    // A bigger batch spread over many merchants (and, in a cluster, slots).
    let many: Vec<Merchant> = (0..50)
        .map(|i| merchant(&format!("M{i:03}"), "m"))
        .collect();
    s.upsert_merchants(many).await.unwrap();
    let batch: Vec<Record> = (0..1000)
        .map(|i| {
            record(
                &format!("x{i:04}"),
                &format!("M{:03}", i % 50),
                "2026-02-01",
            )
        })
        .collect();
    assert_eq!(
        s.add_records(batch).await.unwrap(),
        RecordsAdded {
            inserted: 1000,
            duplicate: 0
        }
    );
    let m7 = ids_of(s.records(&id("M007")).await.unwrap());
    let expected: Vec<String> = (0..20).map(|k| format!("x{:04}", 7 + 50 * k)).collect();
    assert_eq!(m7, expected, "batch order per merchant");
}

pub(super) async fn projection_round_trip(b: Backend) {
    let s = &b.store;
    let m = merchant("A", "好味超市");
    s.upsert_merchants(vec![m.clone()]).await.unwrap();
    let recs = vec![
        failed_sampling("s1", "A", "2026-01-10"),
        record("c1", "A", "2026-02-01"),
    ];
    s.add_records(recs.clone()).await.unwrap();
    let p = project(&m, &s.records(&id("A")).await.unwrap(), None);
    assert_eq!(p.grade, Grade::Yellow, "one failed sampling");
    assert!(p.next_change_at.is_some());
    s.put_projections(vec![p.clone()]).await.unwrap();
    assert_eq!(s.projection(&id("A")).await.unwrap(), Some(p.clone()));
    assert_eq!(s.projection(&id("B")).await.unwrap(), None);

    let p2 = project(&m, &[], None);
    s.put_projections(vec![p2.clone()]).await.unwrap();
    assert_eq!(s.projection(&id("A")).await.unwrap(), Some(p2), "replaced");
    s.put_projections(Vec::new()).await.unwrap();
}

pub(super) async fn a_batch_of_projections_clears_marks_and_keeps_each_merchants_last_due_day(
    b: Backend,
) {
    let s = &b.store;
    // Enough merchants that one batch spans many slots and several share
    // each index key.
    let names: Vec<String> = (0..300).map(|i| format!("M{i:04}")).collect();
    let list: Vec<&str> = names.iter().map(String::as_str).collect();
    s.upsert_merchants(merchants(&list)).await.unwrap();
    let soon = AS_OF.checked_add(jiff::Span::new().days(3)).unwrap();
    let mut batch: Vec<Projection> = list
        .iter()
        .enumerate()
        .map(|(i, m)| plain(m, (i % 3 == 0).then_some(soon)))
        .collect();
    // Twice in the batch: the later projection is the one that counts.
    batch.push(plain(list[1], Some(soon)));
    batch.push(plain(list[1], None));
    batch.push(plain(list[3], None));
    batch.push(plain(list[2], None));
    batch.push(plain(list[2], Some(soon)));
    s.put_projections(batch).await.unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new(),
        "every mark cleared"
    );
    let due: Vec<&str> = list
        .iter()
        .enumerate()
        .filter(|&(i, _)| (i % 3 == 0 && i != 3) || i == 2)
        .map(|(_, m)| *m)
        .collect();
    assert_eq!(s.due_for_regrade(soon).await.unwrap(), ids(&due));
    for (m, next) in [(list[1], None), (list[2], Some(soon)), (list[3], None)] {
        let p = s.projection(&id(m)).await.unwrap().expect("stored");
        assert_eq!(p.next_change_at, next, "{m}");
    }
}

pub(super) async fn due_for_regrade_is_marked_ungraded_and_expiring_only(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B", "C", "D", "E"]))
        .await
        .unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        ids(&["A", "B", "C", "D", "E"]),
        "never graded"
    );
    let in_10 = AS_OF.checked_add(jiff::Span::new().days(10)).unwrap();
    s.put_projections(vec![
        plain("A", None),
        plain("B", Some(in_10)),
        plain("C", None),
        plain("D", Some(date(2030, 1, 1))),
        plain("E", None),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new(),
        "all graded"
    );
    let day_before = in_10.yesterday().unwrap();
    assert_eq!(
        s.due_for_regrade(day_before).await.unwrap(),
        Vec::<MerchantId>::new()
    );
    assert_eq!(
        s.due_for_regrade(in_10).await.unwrap(),
        ids(&["B"]),
        "next_change_at ≤ as_of"
    );
    assert_eq!(
        s.due_for_regrade(date(2030, 1, 1)).await.unwrap(),
        ids(&["B", "D"])
    );

    // New records and changed merchants mark; unchanged ones do not.
    s.add_records(vec![record("r1", "C", "2026-02-01")])
        .await
        .unwrap();
    s.add_records(vec![record("r1", "E", "2026-02-01")])
        .await
        .unwrap(); // duplicate id: no mark
    s.upsert_merchants(vec![merchant("D", "改名"), merchant("E", "商户E")])
        .await
        .unwrap();
    s.upsert_merchants(merchants(&["F"])).await.unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        ids(&["C", "D", "F"])
    );
    assert_eq!(
        s.due_for_regrade(in_10).await.unwrap(),
        ids(&["B", "C", "D", "F"])
    );

    // A projection clears the mark; a projection without next_change_at leaves the due index.
    s.put_projections(vec![
        plain("C", None),
        plain("D", None),
        plain("F", None),
        plain("B", None),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new()
    );
    assert_eq!(
        s.due_for_regrade(date(2030, 1, 1)).await.unwrap(),
        Vec::<MerchantId>::new()
    );
}
