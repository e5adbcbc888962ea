//! The queue of pending submissions on each store: a region prefix reads
//! its own key range, a decision takes a submission out, an entry left by
//! a decision that stopped half-way is dropped when read, and a merchant
//! that moved takes its entries to its new region.

use super::*;
use yisaozhi::model::{RegionCode, ReportType};
use yisaozhi::shop::review_queue::PENDING;
use yisaozhi::shop::reviews::{self, Review, ReviewStatus, REVIEWS};
use yisaozhi::shop::submissions::Submission;
use yisaozhi::store::documents;

async fn submit(s: &SharedStore, mid: &str, second: i64) -> String {
    let check = Submission::SelfReport {
        report_type: ReportType::SelfCheck,
        date: AS_OF,
        supplier: None,
        product: None,
        batch: None,
        items: vec![],
        summary: None,
    };
    reviews::submit(&**s, &Rules::default(), &id(mid), check, at(second))
        .await
        .unwrap()
        .id
}

/// The ids of the queue of `prefix` (read in full).
async fn queue(s: &SharedStore, prefix: &str) -> Vec<String> {
    let (items, complete) = reviews::pending(&**s, prefix, at(100)).await.unwrap();
    assert!(complete);
    items.into_iter().map(|r: Review| r.id).collect()
}

fn moved(mid: &str, region: &str) -> Merchant {
    let mut m = merchant(mid, &format!("商户{mid}"));
    m.region = RegionCode::parse(region).unwrap();
    m
}

pub(super) async fn the_pending_queue_reads_a_regions_range_and_drops_stale_entries(b: Backend) {
    let s = b.store.clone();
    // A and B in 511521, C in 511502.
    let mut all = merchants(&["A", "B"]);
    all.push(moved("C", "511502"));
    s.upsert_merchants(all).await.unwrap();
    let a1 = submit(&s, "A", 1).await;
    let b1 = submit(&s, "B", 2).await;
    let c1 = submit(&s, "C", 3).await;
    let a2 = submit(&s, "A", 4).await;
    assert_eq!(
        queue(&s, "").await,
        [&a1, &b1, &c1, &a2].map(String::as_str)
    );
    assert_eq!(
        queue(&s, "5115").await,
        [&a1, &b1, &c1, &a2].map(String::as_str)
    );
    assert_eq!(
        queue(&s, "51152").await,
        [&a1, &b1, &a2].map(String::as_str)
    );
    assert_eq!(queue(&s, "511502").await, [&c1].map(String::as_str));
    assert!(queue(&s, "5116").await.is_empty());

    // Decided: out of the queue, its entry removed.
    reviews::decide(
        &*s,
        &Rules::default(),
        &a1,
        false,
        Some("照片不清".into()),
        "测试",
        &|_| true,
        AS_OF,
        at(5),
    )
    .await
    .unwrap();
    assert_eq!(queue(&s, "51152").await, [&b1, &a2].map(String::as_str));
    let entry = |region: &str, rid: &str| {
        let (s, key) = (s.clone(), format!("{region}/{rid}"));
        async move { s.document(PENDING, &key).await.unwrap() }
    };
    assert!(entry("511521", &a1).await.is_none());

    // Decided, its entry left behind: not counted, and dropped.
    let text = s.document(REVIEWS, &b1).await.unwrap().unwrap();
    let mut decided: Review = serde_json::from_str(&text).unwrap();
    decided.status = ReviewStatus::Accepted;
    assert!(
        documents::replace(&*s, REVIEWS, &b1, text, Some(&decided), None)
            .await
            .unwrap()
    );
    assert!(entry("511521", &b1).await.is_some());
    assert_eq!(queue(&s, "51152").await, [&a2].map(String::as_str));
    assert!(entry("511521", &b1).await.is_none());

    // A moves to 511502: a read of its old range moves its entry along.
    s.upsert_merchants(vec![moved("A", "511502")])
        .await
        .unwrap();
    assert!(queue(&s, "51152").await.is_empty());
    assert_eq!(queue(&s, "511502").await, [&c1, &a2].map(String::as_str));
    assert!(entry("511502", &a2).await.is_some());
}
