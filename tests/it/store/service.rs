//! What the service owns: overrides, codes, the audit log, tokens.

use super::*;

pub(super) async fn override_set_and_clear_write_projection_and_audit(b: Backend) {
    let s = &b.store;
    let m = merchant("A", "好味超市");
    s.upsert_merchants(vec![m.clone(), merchant("B", "b")])
        .await
        .unwrap();
    let green = project(&m, &[], None);
    s.put_projections(vec![green.clone()]).await.unwrap();
    assert_eq!(s.override_of(&id("A")).await.unwrap(), None);
    let cursor = cursor_now(&b).await;

    let o = Override {
        grade: Grade::Red,
        reason: "群众举报销售过期食品".into(),
        expires_at: Some(date(2099, 12, 31)),
        actor: "admin-1".into(),
        at: at(10),
    };
    let red = project(&m, &[], Some(&o));
    assert_eq!(red.grade, Grade::Red);
    let set = entry(10, "admin-1", "override.set", "A");
    s.set_override(&id("A"), Some(o.clone()), red.clone(), set.clone())
        .await
        .unwrap();
    assert_eq!(s.override_of(&id("A")).await.unwrap(), Some(o));
    assert_eq!(s.projection(&id("A")).await.unwrap(), Some(red));
    let filter = |target: &str| AuditFilter {
        target: Some(target.into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit(filter("A")).await.unwrap(), vec![set.clone()]);
    let (changed, cursor) = changed_since(&b, cursor).await;
    assert_eq!(changed, ids(&["A"]));

    let clear = entry(11, "admin-2", "override.clear", "A");
    s.set_override(&id("A"), None, green.clone(), clear.clone())
        .await
        .unwrap();
    assert_eq!(s.override_of(&id("A")).await.unwrap(), None);
    assert_eq!(s.projection(&id("A")).await.unwrap(), Some(green));
    assert_eq!(
        s.audit(filter("A")).await.unwrap(),
        vec![clear, set],
        "newest first"
    );
    assert_eq!(
        s.audit(filter("B")).await.unwrap(),
        Vec::<AuditEntry>::new()
    );
    let (changed, _) = changed_since(&b, cursor).await;
    assert_eq!(changed, ids(&["A"]));

    // An override of a never-graded merchant grades it.
    let b_red = project(&merchant("B", "b"), &[], None);
    s.set_override(
        &id("B"),
        None,
        b_red,
        entry(12, "admin-1", "override.clear", "B"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new()
    );
}

pub(super) async fn next_serial_is_unique_and_increasing(b: Backend) {
    let s = &b.store;
    let mut last = 0;
    for _ in 0..20 {
        let n = s.next_serial().await.unwrap();
        assert!(n > last, "{n} after {last}");
        last = n;
    }
    let all = futures_util::future::join_all((0..50).map(|_| s.next_serial())).await;
    let all: BTreeSet<u32> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 50, "concurrent serials are distinct");
    assert!(all.iter().all(|&n| n > last));
}

pub(super) async fn issue_code_supersedes_the_active_code(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    assert_eq!(s.code(1).await.unwrap(), None);
    assert_eq!(
        s.codes_of(&id("A")).await.unwrap(),
        Vec::<IssuedCode>::new()
    );
    let c1 = code(101, "A", Grade::Green);
    s.issue_code(c1.clone(), None).await.unwrap();
    assert_eq!(s.code(101).await.unwrap(), Some(c1.clone()));
    assert_eq!(s.codes_of(&id("A")).await.unwrap(), vec![c1.clone()]);

    let c2 = code(102, "A", Grade::Red);
    let audit = entry(20, "admin-1", "code.issue", "A");
    s.issue_code(c2.clone(), Some(audit.clone())).await.unwrap();
    let superseded = IssuedCode {
        status: CodeStatus::Superseded,
        ..c1.clone()
    };
    assert_eq!(
        s.codes_of(&id("A")).await.unwrap(),
        vec![superseded.clone(), c2.clone()]
    );
    assert_eq!(s.code(101).await.unwrap(), Some(superseded));
    assert_eq!(s.code(102).await.unwrap(), Some(c2.clone()));

    let c3 = code(103, "B", Grade::Yellow);
    s.issue_code(c3.clone(), None).await.unwrap();
    assert_eq!(s.codes_of(&id("B")).await.unwrap(), vec![c3]);
    assert_eq!(
        s.code(102).await.unwrap().unwrap().status,
        CodeStatus::Active,
        "B's code leaves A's alone"
    );

    // A serial is issued once, to whichever merchant.
    for again in [code(102, "A", Grade::Green), code(102, "B", Grade::Green)] {
        let err = s.issue_code(again, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }
    assert_eq!(
        s.code(102).await.unwrap(),
        Some(c2),
        "a refused issue changes nothing"
    );
    assert_eq!(s.codes_of(&id("A")).await.unwrap().len(), 2);
    assert_eq!(
        s.audit(AuditFilter::default()).await.unwrap(),
        vec![audit],
        "audited only when asked"
    );
}

pub(super) async fn scan_view_is_the_projection_and_every_code_status(b: Backend) {
    let s = &b.store;
    let m = merchant("A", "好味超市");
    s.upsert_merchants(vec![m.clone(), merchant("B", "B")])
        .await
        .unwrap();
    s.issue_code(code(1, "A", Grade::Green), None)
        .await
        .unwrap();
    assert!(
        s.scan_view(&id("A")).await.unwrap().is_none(),
        "no projection, no view (even with a code)"
    );
    let p = project(&m, &[failed_sampling("s1", "A", "2026-01-10")], None);
    s.put_projections(vec![p.clone()]).await.unwrap();
    s.issue_code(code(2, "A", Grade::Yellow), None)
        .await
        .unwrap();
    s.issue_code(code(3, "A", Grade::Yellow), None)
        .await
        .unwrap();
    s.issue_code(code(4, "B", Grade::Green), None)
        .await
        .unwrap();
    s.revoke_code(2, entry(1, "admin-1", "code.revoke", "2"))
        .await
        .unwrap();
    let read = s.scan_view(&id("A")).await.unwrap().unwrap();
    // The projection left as stored JSON where the backend read it as
    // such: the JSON of that very projection.
    if let StoredProjection::Json(json) = &read.projection {
        assert_eq!(serde_json::to_string(&p).unwrap(), *json);
    }
    assert_eq!(read.projection.parse().unwrap(), p);
    let mut codes = read.codes;
    codes.sort_unstable_by_key(|c| c.0);
    assert_eq!(
        codes,
        vec![
            (1, CodeStatus::Superseded),
            (2, CodeStatus::Revoked),
            (3, CodeStatus::Active)
        ],
        "every code of A and none of B's"
    );
    let from_codes: Vec<(u32, CodeStatus)> = s
        .codes_of(&id("A"))
        .await
        .unwrap()
        .iter()
        .map(|c| (c.serial, c.status))
        .collect();
    assert_eq!(codes, from_codes, "the same statuses as codes_of");
    assert!(
        s.scan_view(&id("C")).await.unwrap().is_none(),
        "unknown merchant"
    );
}

pub(super) async fn revoke_code_returns_the_code_as_it_was(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A"])).await.unwrap();
    let c1 = code(7, "A", Grade::Green);
    s.issue_code(c1.clone(), None).await.unwrap();
    let cursor = cursor_now(&b).await;
    let audit = entry(30, "admin-1", "code.revoke", "7");
    assert_eq!(
        s.revoke_code(7, audit.clone()).await.unwrap(),
        Some(c1.clone())
    );
    let revoked = IssuedCode {
        status: CodeStatus::Revoked,
        ..c1
    };
    assert_eq!(s.code(7).await.unwrap(), Some(revoked.clone()));
    assert_eq!(s.codes_of(&id("A")).await.unwrap(), vec![revoked.clone()]);
    let (changed, _) = changed_since(&b, cursor).await;
    assert_eq!(changed, ids(&["A"]));

    // Revoking it again changes nothing and is not audited: the caller
    // sees it was revoked already.
    assert_eq!(
        s.revoke_code(7, entry(32, "admin-2", "code.revoke", "7"))
            .await
            .unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(s.code(7).await.unwrap(), Some(revoked));

    assert_eq!(
        s.revoke_code(8, entry(31, "admin-1", "code.revoke", "8"))
            .await
            .unwrap(),
        None,
        "unknown serial"
    );
    assert_eq!(
        s.audit(AuditFilter::default()).await.unwrap(),
        vec![audit],
        "neither an unknown serial nor a second revocation is audited"
    );
}

pub(super) async fn inactive_codes_are_the_revoked_and_superseded_serials_in_order(b: Backend) {
    let s = &b.store;
    s.upsert_merchants(merchants(&["A", "B", "C"]))
        .await
        .unwrap();
    assert_eq!(s.inactive_codes().await.unwrap(), vec![], "no codes yet");
    // A: 30 superseded by 5 (serials need not ascend by issue), then 5 by 41.
    for c in [
        code(30, "A", Grade::Green),
        code(5, "A", Grade::Red),
        code(41, "A", Grade::Yellow),
    ] {
        s.issue_code(c, None).await.unwrap();
    }
    // B: 12 revoked, still B's only code. C: 7 active.
    s.issue_code(code(12, "B", Grade::Green), None)
        .await
        .unwrap();
    s.issue_code(code(7, "C", Grade::Green), None)
        .await
        .unwrap();
    s.revoke_code(12, entry(40, "admin-1", "code.revoke", "12"))
        .await
        .unwrap();
    assert_eq!(
        s.inactive_codes().await.unwrap(),
        vec![
            (5, CodeStatus::Superseded),
            (12, CodeStatus::Revoked),
            (30, CodeStatus::Superseded),
        ]
    );
    // Revoking a superseded code makes it revoked on the list.
    s.revoke_code(30, entry(41, "admin-1", "code.revoke", "30"))
        .await
        .unwrap();
    assert_eq!(
        s.inactive_codes().await.unwrap(),
        vec![
            (5, CodeStatus::Superseded),
            (12, CodeStatus::Revoked),
            (30, CodeStatus::Revoked),
        ]
    );
}

pub(super) async fn audit_filters_by_target_actor_since_and_limit_newest_first(b: Backend) {
    let s = &b.store;
    let log: Vec<AuditEntry> = (0..6)
        .map(|i| {
            entry(
                i * 60,
                if i % 2 == 0 { "alice" } else { "bob" },
                "override.set",
                if i < 3 { "A" } else { "B" },
            )
        })
        .collect();
    for e in &log {
        s.append_audit(e.clone()).await.unwrap();
    }
    let newest_first = |pick: &[usize]| pick.iter().map(|&i| log[i].clone()).collect::<Vec<_>>();
    let q =
        |target: Option<&str>, actor: Option<&str>, since: Option<i64>, limit: usize| AuditFilter {
            target: target.map(Into::into),
            actor: actor.map(Into::into),
            since: since.map(at),
            limit,
        };
    assert_eq!(
        s.audit(q(None, None, None, 0)).await.unwrap(),
        newest_first(&[5, 4, 3, 2, 1, 0])
    );
    assert_eq!(
        s.audit(q(Some("A"), None, None, 0)).await.unwrap(),
        newest_first(&[2, 1, 0])
    );
    assert_eq!(
        s.audit(q(None, Some("bob"), None, 0)).await.unwrap(),
        newest_first(&[5, 3, 1])
    );
    assert_eq!(
        s.audit(q(None, None, Some(180), 0)).await.unwrap(),
        newest_first(&[5, 4, 3])
    );
    assert_eq!(
        s.audit(q(None, None, None, 2)).await.unwrap(),
        newest_first(&[5, 4])
    );
    assert_eq!(
        s.audit(q(Some("B"), Some("alice"), Some(200), 10))
            .await
            .unwrap(),
        newest_first(&[4])
    );
    assert_eq!(
        s.audit(q(Some("C"), None, None, 0)).await.unwrap(),
        Vec::<AuditEntry>::new()
    );

    // Default limit 100, and a log longer than one read.
    for i in 0..300 {
        s.append_audit(entry(1000 + i, "carol", "code.issue", "C"))
            .await
            .unwrap();
    }
    let page = s.audit(q(None, None, None, 0)).await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0].at, at(1299));
    let alice = s.audit(q(None, Some("alice"), None, 1000)).await.unwrap();
    assert_eq!(
        alice,
        newest_first(&[4, 2, 0]),
        "found past 300 newer entries"
    );
}

pub(super) async fn tokens_round_trip(b: Backend) {
    let s = &b.store;
    let t = ApiToken {
        id: "k1".into(),
        name: "县市场监管局".into(),
        secret_sha256: [7; 32],
        scope: "511521".into(),
        created_at: at(0),
        revoked: false,
    };
    assert_eq!(s.token("k1").await.unwrap(), None);
    assert_eq!(s.tokens().await.unwrap(), Vec::<ApiToken>::new());
    s.put_token(t.clone()).await.unwrap();
    assert_eq!(s.token("k1").await.unwrap(), Some(t.clone()));
    let revoked = ApiToken {
        revoked: true,
        ..t.clone()
    };
    s.put_token(revoked.clone()).await.unwrap();
    assert_eq!(s.token("k1").await.unwrap(), Some(revoked.clone()));
    assert_eq!(s.token("k2").await.unwrap(), None);
    let k0 = ApiToken {
        id: "k0".into(),
        ..t
    };
    s.put_token(k0.clone()).await.unwrap();
    assert_eq!(s.tokens().await.unwrap(), vec![k0, revoked], "by id");
}
