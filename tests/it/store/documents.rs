//! Documents: small named collections (sessions, tips, the roster, plans,
//! reviews) with insert-once, compare-and-swap and paged listing.

use super::*;
use yisaozhi::store::documents::{self, Collection, Expect};

const THINGS: Collection = Collection::new("things");
const OTHERS: Collection = Collection::new("other_things");

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Thing {
    n: u32,
    text: String,
}

fn thing(n: u32) -> Thing {
    Thing {
        n,
        text: format!("第{n}件"),
    }
}

pub(super) async fn documents_put_get_insert_swap_remove(b: Backend) {
    let s = &*b.store;
    assert_eq!(documents::get::<Thing>(s, THINGS, "a").await.unwrap(), None);
    documents::put(s, THINGS, "a", &thing(1), None)
        .await
        .unwrap();
    assert_eq!(
        documents::get(s, THINGS, "a").await.unwrap(),
        Some(thing(1))
    );
    // Collections are apart: the same key elsewhere is another document.
    assert_eq!(documents::get::<Thing>(s, OTHERS, "a").await.unwrap(), None);

    // Insert writes only where nothing is.
    assert!(!documents::insert(s, THINGS, "a", &thing(2), None)
        .await
        .unwrap());
    assert_eq!(
        documents::get(s, THINGS, "a").await.unwrap(),
        Some(thing(1))
    );
    assert!(documents::insert(s, THINGS, "b", &thing(2), None)
        .await
        .unwrap());

    // Compare-and-swap: only against the text as stored.
    let stored = s.document(THINGS, "a").await.unwrap().unwrap();
    assert!(!s
        .swap_document(
            THINGS,
            "a",
            Expect::Equals("{}".into()),
            Some("{\"n\":9,\"text\":\"x\"}".into()),
            None
        )
        .await
        .unwrap());
    assert!(
        documents::replace(s, THINGS, "a", stored.clone(), Some(&thing(3)), None)
            .await
            .unwrap()
    );
    assert!(
        !documents::replace(s, THINGS, "a", stored, Some(&thing(4)), None)
            .await
            .unwrap(),
        "a second swap from the same old text loses"
    );
    assert_eq!(
        documents::get(s, THINGS, "a").await.unwrap(),
        Some(thing(3))
    );

    // Remove says whether there was one.
    assert!(documents::remove(s, THINGS, "a", None).await.unwrap());
    assert!(!documents::remove(s, THINGS, "a", None).await.unwrap());
    assert_eq!(documents::get::<Thing>(s, THINGS, "a").await.unwrap(), None);
}

pub(super) async fn documents_list_in_key_order_in_pages(b: Backend) {
    let s = &*b.store;
    let keys: Vec<String> = (0..25).rev().map(|i| format!("k{i:03}")).collect();
    for (i, k) in keys.iter().enumerate() {
        documents::put(s, THINGS, k, &thing(i as u32), None)
            .await
            .unwrap();
    }
    documents::put(s, OTHERS, "k000", &thing(99), None)
        .await
        .unwrap();
    let first = s.documents(THINGS, None, 10).await.unwrap();
    let want: Vec<String> = (0..10).map(|i| format!("k{i:03}")).collect();
    assert_eq!(
        first.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        want
    );
    let next = s.documents(THINGS, Some("k009"), 10).await.unwrap();
    assert_eq!(next.first().map(|(k, _)| k.as_str()), Some("k010"));
    let all: Vec<(String, Thing)> = documents::all(s, THINGS).await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(all[0].1, thing(24), "k000 was written last, as n = 24");
    assert!(s
        .documents(THINGS, Some("k024"), 10)
        .await
        .unwrap()
        .is_empty());
}

pub(super) async fn a_document_write_and_its_audit_entry_land_together(b: Backend) {
    let s = &*b.store;
    let audit = |action: &str| entry(1_700_000_000, "clerk", action, "doc:x");
    documents::put(s, THINGS, "x", &thing(1), Some(audit("thing.put")))
        .await
        .unwrap();
    // An insert that finds the key taken writes nothing and audits nothing.
    assert!(
        !documents::insert(s, THINGS, "x", &thing(2), Some(audit("thing.insert")))
            .await
            .unwrap()
    );
    assert!(
        documents::remove(s, THINGS, "x", Some(audit("thing.remove")))
            .await
            .unwrap()
    );
    assert!(
        !documents::remove(s, THINGS, "x", Some(audit("thing.remove.again")))
            .await
            .unwrap()
    );
    let log = s
        .audit(AuditFilter {
            target: Some("doc:x".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["thing.remove", "thing.put"], "newest first");
}

pub(super) async fn of_concurrent_swaps_from_one_text_exactly_one_wins(b: Backend) {
    let s = b.store.clone();
    documents::put(&*s, THINGS, "once", &thing(0), None)
        .await
        .unwrap();
    let old = s.document(THINGS, "once").await.unwrap().unwrap();
    let tasks: Vec<_> = (1..=8)
        .map(|n| {
            let (s, old) = (s.clone(), old.clone());
            tokio::spawn(async move {
                documents::replace(&*s, THINGS, "once", old, Some(&thing(n)), None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let now: Thing = documents::get(&*s, THINGS, "once").await.unwrap().unwrap();
    assert!((1..=8).contains(&now.n));
}

pub(super) async fn a_document_key_must_be_short_and_printable(b: Backend) {
    let s = &*b.store;
    for bad in ["", "a\nb", &"x".repeat(201)] {
        let err = documents::put(s, THINGS, bad, &thing(1), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("document key"), "{err}");
    }
}
