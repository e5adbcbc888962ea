//! The shop's side on each store: an activation code used once of many
//! concurrent logins, revoking ending sessions, a submission decided once
//! of concurrent decisions and imported as a graded record, and the queue
//! and a shop's own list read back.

use super::*;
use yisaozhi::shop::access::{self, LoginError, SessionKind};
use yisaozhi::shop::reviews::{self, ReviewError, ReviewFilter, ReviewStatus};
use yisaozhi::shop::submissions::Submission;

fn now() -> Timestamp {
    at(100)
}

pub(super) async fn an_activation_code_opens_one_session_of_concurrent_logins(b: Backend) {
    let s = b.store.clone();
    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    let code = access::issue_code(&*s, &id("A"), "clerk", now())
        .await
        .unwrap();
    // The code is bound to its merchant.
    assert!(matches!(
        access::activate(&*s, &id("B"), &code, SessionKind::Token, now()).await,
        Err(LoginError::Refused)
    ));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (s, code) = (s.clone(), code.clone());
            tokio::spawn(async move {
                access::activate(&*s, &id("A"), &code, SessionKind::Session, now()).await
            })
        })
        .collect();
    let mut secrets = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(secret) => secrets.push(secret),
            Err(LoginError::Refused) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(secrets.len(), 1, "exactly one login wins the code");
    let shop = access::authenticate(&*s, &secrets[0], now())
        .await
        .unwrap()
        .expect("open session");
    assert_eq!(shop.merchant, id("A"));
    // Expired after 90 days.
    let later = now()
        .checked_add(jiff::SignedDuration::from_hours(91 * 24))
        .unwrap();
    assert!(access::authenticate(&*s, &secrets[0], later)
        .await
        .unwrap()
        .is_none());
    // The issue and the use are audited; no secret is.
    let log = s
        .audit(AuditFilter {
            target: Some("A".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["shop.activate", "shop.access.issue"]);
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&code.replace('-', "")) && !text.contains(&secrets[0]));
}

pub(super) async fn revoking_access_ends_sessions_and_a_new_code_replaces_the_old(b: Backend) {
    let s = &*b.store;
    s.upsert_merchants(merchants(&["A"])).await.unwrap();
    let old = access::issue_code(s, &id("A"), "clerk", now())
        .await
        .unwrap();
    let new = access::issue_code(s, &id("A"), "clerk", now())
        .await
        .unwrap();
    assert!(
        access::activate(s, &id("A"), &old, SessionKind::Token, now())
            .await
            .is_err()
    );
    let secret = access::activate(s, &id("A"), &new, SessionKind::Token, now())
        .await
        .unwrap();
    assert!(access::authenticate(s, &secret, now())
        .await
        .unwrap()
        .is_some());
    access::revoke(s, &id("A"), "clerk", now()).await.unwrap();
    assert!(access::authenticate(s, &secret, now())
        .await
        .unwrap()
        .is_none());
    // A new code after the revocation opens a new session; the old stays closed.
    let again = access::issue_code(s, &id("A"), "clerk", now())
        .await
        .unwrap();
    let fresh = access::activate(s, &id("A"), &again, SessionKind::Token, now())
        .await
        .unwrap();
    assert!(access::authenticate(s, &fresh, now())
        .await
        .unwrap()
        .is_some());
    assert!(access::authenticate(s, &secret, now())
        .await
        .unwrap()
        .is_none());
}

pub(super) async fn a_submission_is_decided_once_and_becomes_a_graded_record(b: Backend) {
    let s = b.store.clone();
    let rules = Rules::default();
    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    let submission = Submission::SelfReport {
        report_type: yisaozhi::model::ReportType::IncomingCheck,
        date: AS_OF,
        supplier: Some("某批发部".into()),
        product: None,
        batch: None,
        items: vec![],
        summary: None,
    };
    let first = reviews::submit(&*s, &rules, &id("A"), submission.clone(), now())
        .await
        .unwrap();
    let second = reviews::submit(&*s, &rules, &id("B"), submission, at(200))
        .await
        .unwrap();
    assert_eq!(first.status, ReviewStatus::Pending);
    let tasks: Vec<_> = [true, false, true, false]
        .into_iter()
        .map(|accept| {
            let (s, rules, rid) = (s.clone(), rules.clone(), first.id.clone());
            tokio::spawn(async move {
                reviews::decide(
                    &*s,
                    &rules,
                    &rid,
                    accept,
                    Some("已核实".into()),
                    "clerk",
                    &|_| true,
                    AS_OF,
                    now(),
                )
                .await
            })
        })
        .collect();
    let mut decided = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(d) => decided.push(d.review),
            Err(ReviewError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(decided.len(), 1, "a decision is made once");
    let stored = reviews::get(&*s, &first.id).await.unwrap().unwrap();
    assert_eq!(stored, decided[0]);
    let record = format!("shop-{}", first.id);
    let has_record = s
        .records(&id("A"))
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == record);
    assert_eq!(has_record, stored.status == ReviewStatus::Accepted);
    if has_record {
        let p = s
            .projection(&id("A"))
            .await
            .unwrap()
            .expect("graded at once");
        assert_eq!(p.records.self_reports[0].id, record);
    }
    // Outside the scope: refused before anything is written.
    assert!(matches!(
        reviews::decide(
            &*s,
            &rules,
            &second.id,
            true,
            None,
            "other",
            &|_| false,
            AS_OF,
            now()
        )
        .await,
        Err(ReviewError::Forbidden(_))
    ));
    // The queue, oldest first, filtered; each shop's own list.
    let pending = reviews::list(
        &*s,
        &ReviewFilter {
            status: Some(ReviewStatus::Pending),
            limit: 10,
            ..ReviewFilter::default()
        },
        &|_| true,
    )
    .await
    .unwrap()
    .0;
    assert_eq!(
        pending.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str()]
    );
    let all = reviews::list(
        &*s,
        &ReviewFilter {
            limit: 1,
            ..ReviewFilter::default()
        },
        &|_| true,
    )
    .await
    .unwrap();
    // Only submissions of merchants in the regions the caller sees.
    let elsewhere = reviews::list(
        &*s,
        &ReviewFilter {
            limit: 10,
            ..ReviewFilter::default()
        },
        &|r| r.as_str().starts_with("5115") && r.as_str() != "511521",
    )
    .await
    .unwrap();
    assert!(
        elsewhere.0.is_empty() && elsewhere.1.is_none(),
        "{elsewhere:?}"
    );
    assert_eq!(all.0[0].id, first.id);
    assert_eq!(all.1.as_deref(), Some(first.id.as_str()), "a next page");
    assert_eq!(
        reviews::filed(&*s, &id("B")).await.unwrap()[0].id,
        second.id
    );
    assert_eq!(reviews::filed(&*s, &id("A")).await.unwrap().len(), 1);
}
