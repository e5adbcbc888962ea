//! The batch job's reads and the change stream: grading inputs, pages, bulk imports.

use super::*;

pub(super) async fn grading_inputs_bring_merchant_records_override_and_previous_grade(b: Backend) {
    let s = &b.store;
    let (ma, mb) = (merchant("A", "a"), merchant("B", "b"));
    s.upsert_merchants(vec![ma.clone(), mb.clone()])
        .await
        .unwrap();
    let recs = vec![
        record("r2", "A", "2026-01-02"),
        failed_sampling("r1", "A", "2026-01-01"),
    ];
    s.add_records(recs.clone()).await.unwrap();
    let o = Override {
        grade: Grade::Red,
        reason: "调查中".into(),
        expires_at: None,
        actor: "admin".into(),
        at: at(5),
    };
    let pb = project(&mb, &[], Some(&o));
    s.set_override(
        &id("B"),
        Some(o.clone()),
        pb,
        entry(5, "admin", "override.set", "B"),
    )
    .await
    .unwrap();
    let got = s.grading_inputs(ids(&["B", "X", "A"])).await.unwrap();
    assert_eq!(got.len(), 2, "unknown merchants are left out");
    assert_eq!(got[0].merchant, mb);
    assert_eq!(got[0].records, Vec::<Record>::new());
    assert_eq!(got[0].override_, Some(o));
    assert_eq!(got[0].previous, Some(Grade::Red));
    assert_eq!(got[1].merchant, ma);
    assert_eq!(got[1].records, recs, "import order");
    assert_eq!(got[1].override_, None);
    assert_eq!(got[1].previous, None, "never graded");
    assert!(s.grading_inputs(Vec::new()).await.unwrap().is_empty());
}

pub(super) async fn last_refresh_round_trip(b: Backend) {
    let s = &b.store;
    assert_eq!(s.last_refresh().await.unwrap(), None);
    s.note_refresh(at(42)).await.unwrap();
    assert_eq!(s.last_refresh().await.unwrap(), Some(at(42)));
}

pub(super) async fn changes_since_lists_changed_merchants(b: Backend) {
    let s = &b.store;
    assert_eq!(
        s.changes_since(0).await.unwrap(),
        (Some(Vec::new()), 0),
        "nothing yet"
    );
    s.upsert_merchants(merchants(&["A", "B", "C"]))
        .await
        .unwrap();
    s.put_projections(vec![plain("A", None), plain("B", None)])
        .await
        .unwrap();
    let (all, cursor) = s.changes_since(0).await.unwrap();
    assert_eq!(all, None, "a reader without a cursor drops everything");
    assert!(cursor > 0);
    assert_eq!(
        s.changes_since(cursor).await.unwrap(),
        (Some(Vec::new()), cursor)
    );

    s.put_projections(vec![plain("B", None), plain("A", None), plain("B", None)])
        .await
        .unwrap();
    let (changed, c2) = changed_since(&b, cursor).await;
    assert_eq!(changed, ids(&["A", "B"]));
    assert!(c2 > cursor);

    s.issue_code(code(1, "C", Grade::Green), None)
        .await
        .unwrap();
    let (changed, c3) = changed_since(&b, c2).await;
    assert_eq!(changed, ids(&["C"]));
    s.revoke_code(1, entry(1, "a", "code.revoke", "1"))
        .await
        .unwrap();
    let (changed, c4) = changed_since(&b, c3).await;
    assert_eq!(changed, ids(&["C"]));
    let (changed, _) = changed_since(&b, c2).await;
    assert_eq!(changed, ids(&["C"]), "from an older cursor");
    let (changed, _) = changed_since(&b, cursor).await;
    assert_eq!(changed, ids(&["A", "B", "C"]));
    assert_eq!(s.changes_since(c4).await.unwrap(), (Some(Vec::new()), c4));
}

pub(super) async fn changes_since_says_everything_when_too_much_changed(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    s.put_projections(vec![plain("A", None)]).await.unwrap();
    let cursor = cursor_now(&b).await;
    let limit = b.max_changes_listed;
    s.put_projections(vec![plain("A", None); limit as usize])
        .await
        .unwrap();
    let (changed, at_limit) = s.changes_since(cursor).await.unwrap();
    assert_eq!(changed, Some(ids(&["A"])), "{limit} changes are listed");
    s.put_projections(vec![plain("B", None)]).await.unwrap();
    let (changed, next) = s.changes_since(cursor).await.unwrap();
    assert_eq!(changed, None, "{} changes are too many to list", limit + 1);
    assert!(next > at_limit);
    assert_eq!(
        s.changes_since(next).await.unwrap(),
        (Some(Vec::new()), next)
    );
}

pub(super) async fn projection_pages_and_queries(b: Backend) {
    let s = &b.store;
    let names = ["E", "A", "C", "B", "D"];
    s.upsert_merchants(merchants(&names)).await.unwrap();
    let mut ps: Vec<Projection> = names.iter().map(|m| plain(m, None)).collect();
    ps.retain(|p| p.merchant.id.as_str() != "D"); // D has no projection yet
    s.put_projections(ps).await.unwrap();
    let page = |after: Option<&str>, limit| {
        let after = after.map(id);
        async move {
            s.projections_page(after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.merchant.id.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, 2).await, ["A", "B"]);
    assert_eq!(page(Some("B"), 2).await, ["C", "E"], "D has no projection");
    assert_eq!(page(Some("E"), 2).await, Vec::<String>::new());
    assert_eq!(page(None, 100).await, ["A", "B", "C", "E"]);

    let found = s
        .search(&MerchantQuery {
            q: Some("商户C".into()),
            page: 1,
            per_page: 10,
            ..MerchantQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].merchant.id, id("C"));
    assert_eq!(s.stats(None).await.unwrap().total, 4);

    s.issue_code(code(1, "A", Grade::Red), None).await.unwrap();
    s.issue_code(code(2, "B", Grade::Green), None)
        .await
        .unwrap();
    let reprint = s.reprint().await.unwrap();
    assert_eq!(reprint.len(), 1, "A's code shows red, A is green");
    assert_eq!(reprint[0].merchant_id, id("A"));
}

// ---------- Redis only ----------

/// The Redis store of a backend.
/// A bulk import (as a large refresh runs it) leaves due exactly the
/// merchants that changed or got new records, as an ordinary import does.
pub(super) async fn bulk_import_marks_exactly_the_merchants_it_changed(b: Backend) {
    let s = &b.store;
    let all = merchants(&["A", "B", "C", "D"]);
    s.upsert_merchants(all.clone()).await.unwrap();
    s.add_records(vec![record("a1", "A", "2026-01-01")])
        .await
        .unwrap();
    let graded: Vec<Projection> = ["A", "B", "C", "D"]
        .iter()
        .map(|m| plain(m, None))
        .collect();
    s.put_projections(graded).await.unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new()
    );

    let bulk = s.begin_bulk_import(1_000_000_000).await.unwrap();
    // Unchanged A, B, D; C renamed; a new E.
    let mut again = all.clone();
    again[2] = merchant("C", "改名超市");
    again.push(merchant("E", "新店"));
    assert_eq!(bulk.upsert_merchants(again).await.unwrap(), 2);
    let added = bulk
        .add_records(vec![
            record("a1", "A", "2026-01-01"),
            record("b1", "B", "2026-01-02"),
            record("b1", "D", "2026-01-02"),
            record("b2", "B", "2026-01-03"),
        ])
        .await
        .unwrap();
    assert_eq!(
        added,
        RecordsAdded {
            inserted: 2,
            duplicate: 2
        }
    );
    bulk.finish().await.unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        ids(&["B", "C", "E"])
    );
    let ids_of = |rs: Vec<Record>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids_of(s.records(&id("B")).await.unwrap()), ["b1", "b2"]);
    assert_eq!(
        ids_of(s.records(&id("D")).await.unwrap()),
        Vec::<String>::new()
    );
    // An import that is not large enough for bulk mode ends as well.
    s.begin_bulk_import(0)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
}

/// A bulk import keeps the first record of each id in input order, also
/// when the repeat comes in a later batch for another merchant (the
/// records may be stored merchant by merchant at the end), and a second
/// import stores none of them again.
pub(super) async fn a_bulk_import_stores_the_first_of_each_record_id_across_batches_and_runs(
    b: Backend,
) {
    const LONG: &str = "record-id-longer-than-thirty-two-bytes-0001";
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B", "C"]))
        .await
        .unwrap();
    let ids_of = |rs: Vec<Record>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();

    let bulk = s.begin_bulk_import(1_000_000_000).await.unwrap();
    let first = bulk
        .add_records(vec![
            record("x1", "C", "2026-01-01"),
            record("x2", "B", "2026-01-02"),
            record(LONG, "B", "2026-01-02"),
        ])
        .await
        .unwrap();
    assert_eq!(first.inserted, 3);
    // x1 again for A (whose records sort before C's), x3 twice in one
    // batch, an id longer than a sort key again.
    let second = bulk
        .add_records(vec![
            record("x1", "A", "2026-01-03"),
            record("x3", "A", "2026-01-04"),
            record("x3", "B", "2026-01-05"),
            record("x4", "C", "2026-01-06"),
            record(LONG, "A", "2026-01-07"),
        ])
        .await
        .unwrap();
    // A backend that stores the records at the end tells then which of
    // those it counted repeat an earlier id of the import.
    let repeated = bulk.finish().await.unwrap().repeated;
    assert_eq!(
        (second.inserted - repeated, second.duplicate + repeated),
        (2, 3)
    );
    assert_eq!(ids_of(s.records(&id("A")).await.unwrap()), ["x3"]);
    assert_eq!(ids_of(s.records(&id("B")).await.unwrap()), ["x2", LONG]);
    assert_eq!(ids_of(s.records(&id("C")).await.unwrap()), ["x1", "x4"]);

    // The same records and one new one in a second bulk import.
    let bulk = s.begin_bulk_import(1_000_000_000).await.unwrap();
    let again = bulk
        .add_records(vec![
            record("x4", "C", "2026-01-06"),
            record("x1", "B", "2026-01-01"),
            record("x5", "B", "2026-01-07"),
        ])
        .await
        .unwrap();
    assert_eq!(bulk.finish().await.unwrap().repeated, 0);
    assert_eq!(
        again,
        RecordsAdded {
            inserted: 1,
            duplicate: 2
        }
    );
    assert_eq!(
        ids_of(s.records(&id("B")).await.unwrap()),
        ["x2", LONG, "x5"]
    );
    assert_eq!(ids_of(s.records(&id("C")).await.unwrap()), ["x1", "x4"]);
}

/// The regrade right after a first bulk load may take the records from the
/// import (Redis and the embedded store keep them sorted): what it is given
/// is what the store holds, also for merchants without records, and also
/// when a record was added after the import.
pub(super) async fn the_grading_inputs_after_a_first_bulk_load_are_the_stored_records(b: Backend) {
    let s = &b.store;
    let list: Vec<String> = (0..30).map(|i| format!("G{i:02}")).collect();
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    s.upsert_merchants(merchants(&refs)).await.unwrap();
    let bulk = s.begin_bulk_import(1_000_000_000).await.unwrap();
    // Merchants in scrambled order, several batches, G00 and G29 without records.
    for batch in 0..3 {
        let recs: Vec<Record> = (0..40)
            .map(|i| {
                let m = 1 + (i * 7 + batch * 3) % 28;
                record(
                    &format!("g{batch}-{i}"),
                    &format!("G{m:02}"),
                    &format!("2026-01-{:02}", 1 + (i + batch) % 28),
                )
            })
            .collect();
        bulk.add_records(recs).await.unwrap();
    }
    let imported = bulk.finish().await.unwrap();
    let all = ids(&refs);
    let stream = |ids: Vec<MerchantId>, imported: Option<Imported>| {
        let s = s.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(100);
            s.stream_grading_inputs(ids, 7, imported, tx).await.unwrap();
            let mut out = Vec::new();
            while let Some(batch) = rx.recv().await {
                out.extend(batch);
            }
            out
        }
    };
    let want = s.grading_inputs(all.clone()).await.unwrap();
    assert_eq!(want.len(), 30);
    assert_eq!(want[0].records, Vec::<Record>::new());
    assert_eq!(want[29].records, Vec::<Record>::new());
    assert_eq!(want.iter().map(|i| i.records.len()).sum::<usize>(), 120);
    let got = stream(all.clone(), Some(imported)).await;
    assert_eq!(got, want);

    // Once more after another bulk import that adds a record: the import's
    // sort no longer holds every record.
    let bulk = s.begin_bulk_import(1_000_000_000).await.unwrap();
    let imported = bulk.finish().await.unwrap();
    s.add_records(vec![record("late", "G00", "2026-02-01")])
        .await
        .unwrap();
    let want = s.grading_inputs(all.clone()).await.unwrap();
    assert_eq!(want[0].records.len(), 1);
    assert_eq!(stream(all, Some(imported)).await, want);
}

/// The open data's sampling results: each merchant with a sampling record,
/// in id order, with its sampling records alone in import order.
pub(super) async fn the_sampling_inputs_are_each_merchants_sampling_records_in_id_order(
    b: Backend,
) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["S3", "S1", "S2"]))
        .await
        .unwrap();
    s.add_records(vec![
        failed_sampling("s3-a", "S3", "2026-01-03"),
        record("s1-a", "S1", "2026-01-01"),
        failed_sampling("s1-b", "S1", "2026-01-02"),
        record("s2-a", "S2", "2026-01-01"),
        failed_sampling("s3-b", "S3", "2026-01-01"),
    ])
    .await
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100);
    s.stream_sampling_inputs(1, tx).await.unwrap();
    let mut got = Vec::new();
    while let Some(batch) = rx.recv().await {
        got.extend(batch);
    }
    let shown: Vec<(&str, Vec<&str>)> = got
        .iter()
        .map(|i| {
            let ids = i.records.iter().map(|r| r.id.as_str()).collect();
            (i.merchant.id.as_str(), ids)
        })
        .collect();
    assert_eq!(shown, [("S1", vec!["s1-b"]), ("S3", vec!["s3-a", "s3-b"])]);
    assert_eq!(got[1].merchant.name, "商户S3");
}
