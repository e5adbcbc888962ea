//! The change log's public feed: every public change once, in one order,
//! on every backend; the caches' notices in the same order.

use std::collections::BTreeSet;

use yisaozhi::store::{ChangeKind, FeedPage};

use super::*;

/// (merchant, kind, grade, serial) of a change, for comparing lists.
type Seen = (String, ChangeKind, Option<Grade>, Option<u32>);

/// Every change after `after`, read `limit` at a time; checks that the
/// positions increase.
async fn read_all(b: &Backend, after: Option<u64>, limit: usize) -> Vec<(u64, Seen)> {
    let mut out: Vec<(u64, Seen)> = Vec::new();
    let mut cursor = after;
    loop {
        let page: FeedPage = b.store.feed(cursor, limit).await.expect("feed");
        assert!(page.changes.len() <= limit);
        for c in &page.changes {
            if let Some((last, _)) = out.last() {
                assert!(c.position > *last, "positions increase: {out:?} then {c:?}");
            }
            assert!(c.position <= page.last, "{c:?} after the last position");
            out.push((
                c.position,
                (c.merchant.to_string(), c.kind, c.grade, c.serial),
            ));
        }
        match page.changes.last() {
            Some(c) => cursor = Some(c.position),
            None => return out,
        }
    }
}

fn seen(m: &str, kind: ChangeKind, grade: Option<Grade>, serial: Option<u32>) -> Seen {
    (m.to_owned(), kind, grade, serial)
}

fn graded(mid: &str, grade: Grade) -> Projection {
    let mut p = plain(mid, None);
    p.grade = grade;
    p.computed_grade = grade;
    p
}

pub(super) async fn the_feed_lists_each_public_change_once_in_order(b: Backend) {
    use ChangeKind as K;
    use Grade::{Green, Red, Yellow};
    let s = &b.store;
    let empty = s.feed(None, 10).await.unwrap();
    assert_eq!(empty.changes, vec![]);
    assert_eq!((empty.kept_after, empty.last), (0, 0));

    s.upsert_merchants(merchants(&["A", "B"])).await.unwrap();
    s.upsert_merchants(merchants(&["A"])).await.unwrap(); // unchanged: nothing
    s.put_projections(vec![graded("A", Green), graded("B", Green)])
        .await
        .unwrap();
    // A regrade that keeps the grade is no change for the public...
    let mut again = graded("A", Green);
    again.next_change_at = Some(date(2026, 9, 1));
    let before = cursor_now(&b).await;
    s.put_projections(vec![again]).await.unwrap();
    // ...but the caches are told.
    assert_eq!(changed_since(&b, before).await.0, ids(&["A"]));
    // Of one merchant twice in a batch, each compares with the one before.
    s.put_projections(vec![graded("A", Red), graded("A", Red), graded("B", Green)])
        .await
        .unwrap();
    let m = merchant("B", "b");
    let o = Override {
        grade: Yellow,
        reason: "复查".into(),
        expires_at: None,
        actor: "admin-1".into(),
        at: at(5),
    };
    let yellow = project(&m, &[], Some(&o));
    s.set_override(
        &id("B"),
        Some(o),
        yellow,
        entry(5, "admin-1", "override.set", "B"),
    )
    .await
    .unwrap();
    let serial = s.next_serial().await.unwrap();
    s.issue_code(code(serial, "A", Red), None).await.unwrap();
    s.revoke_code(serial, entry(6, "admin-1", "code.revoke", "A"))
        .await
        .unwrap();
    s.revoke_code(serial, entry(7, "admin-1", "code.revoke", "A"))
        .await
        .unwrap(); // already revoked: nothing
    s.upsert_merchants(vec![merchant("A", "新名字")])
        .await
        .unwrap();

    let want = vec![
        seen("A", K::Merchant, None, None),
        seen("B", K::Merchant, None, None),
        seen("A", K::Grade, Some(Green), None),
        seen("B", K::Grade, Some(Green), None),
        seen("A", K::Grade, Some(Red), None),
        seen("B", K::Grade, Some(Yellow), None),
        seen("B", K::Override, Some(Yellow), None),
        seen("A", K::CodeIssued, None, Some(serial)),
        seen("A", K::CodeRevoked, None, Some(serial)),
        seen("A", K::Merchant, None, None),
    ];
    let all = read_all(&b, None, 100).await;
    let mut got: Vec<Seen> = all.iter().map(|c| c.1.clone()).collect();
    // The changes of one batch of several merchants come in the order their
    // writes commit: on Redis, per slot and in parallel. They come
    // together, each once.
    got.get_mut(2..4)
        .expect("the first batch's changes")
        .sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    for limit in [1, 2, 3, 7] {
        assert_eq!(read_all(&b, None, limit).await, all, "pages of {limit}");
    }
    // From any change's position on: exactly the changes after it.
    for (i, (pos, _)) in all.iter().enumerate() {
        assert_eq!(read_all(&b, Some(*pos), 4).await, all[i + 1..].to_vec());
    }
    // The feed and the caches' notices count the same positions.
    let page = s.feed(None, 1).await.unwrap();
    assert_eq!(page.last, cursor_now(&b).await);
    assert_eq!(page.kept_after, 0, "nothing is old enough to drop");
    let noted = s.feed(None, 1).await.unwrap().changes[0].at;
    let age = (yisaozhi::clock::now() - noted).get_seconds();
    assert!((0..600).contains(&age), "noted now: {noted}");
}

/// Writers in parallel on one store (several connections on Redis, the
/// writer queue on SQLite) while a reader follows the feed: the reader
/// sees every issued code once, in the order of the positions.
pub(super) async fn concurrent_writers_leave_each_change_once(b: Backend) {
    const WRITERS: usize = 4;
    const EACH: u32 = 40;
    let s = b.store.clone();
    let names: Vec<String> = (0..WRITERS).map(|w| format!("W{w}")).collect();
    s.upsert_merchants(merchants(
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await
    .unwrap();
    let start = s.feed(None, 1000).await.unwrap().last;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let s = s.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut got = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let page = s.feed(Some(cursor), 7).await.unwrap();
                for c in &page.changes {
                    assert!(c.position > cursor);
                    cursor = c.position;
                    got.push(c.serial.expect("a code change"));
                }
                if page.changes.is_empty() {
                    if finished {
                        return got;
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writers: Vec<_> = names
        .iter()
        .map(|m| {
            let s = s.clone();
            let m = m.clone();
            tokio::spawn(async move {
                let mut serials = Vec::new();
                for _ in 0..EACH {
                    let serial = s.next_serial().await.unwrap();
                    s.issue_code(code(serial, &m, Grade::Green), None)
                        .await
                        .unwrap();
                    serials.push(serial);
                }
                serials
            })
        })
        .collect();
    let mut issued = BTreeSet::new();
    for w in writers {
        issued.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let got = reader.await.unwrap();
    assert_eq!(got.len(), issued.len(), "none twice, none skipped: {got:?}");
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), issued);
}

/// The feed after its oldest public change was dropped for its age: the
/// cursor before it is refused, never moved forward past what was lost.
async fn after_an_old_change_was_dropped(s: &SharedStore, dropped: u64) {
    use yisaozhi::feed::{page, Cursor, FeedError};
    let cursor = |p: u64| Cursor::parse(&data_encoding::BASE64URL_NOPAD.encode(&p.to_be_bytes()));
    let all = s.feed(None, 100).await.unwrap();
    assert_eq!(all.kept_after, dropped);
    assert!(all.changes.iter().all(|c| c.position > dropped), "{all:?}");
    assert!(!all.changes.is_empty());
    let before = cursor(dropped - 1).unwrap();
    assert!(matches!(
        page(s.as_ref(), Some(before), 10).await,
        Err(FeedError::Expired)
    ));
    let at = cursor(dropped).unwrap();
    let rest = page(s.as_ref(), Some(at), 10).await.unwrap();
    assert_eq!(rest.changes.len(), all.changes.len());
    let from_start = page(s.as_ref(), None, 10).await.unwrap();
    assert_eq!(from_start, rest, "without `since`: from the oldest kept");
}

#[tokio::test]
async fn embedded_feed_drops_public_changes_older_than_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let s: SharedStore = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let old = (yisaozhi::clock::now().as_second()) - 93 * 86_400;
    let db = rusqlite::Connection::open(dir.path().join("yisaozhi.sqlite")).unwrap();
    db.execute(
        "INSERT INTO changes (merchant, at, kind) VALUES ('A', ?1, 'merchant')",
        [old],
    )
    .unwrap();
    let dropped: i64 = db
        .query_row("SELECT MAX(seq) FROM changes", [], |r| r.get(0))
        .unwrap();
    drop(db);
    assert_eq!(
        s.feed(None, 10).await.unwrap().changes.len(),
        1,
        "kept until a write trims"
    );
    s.upsert_merchants(merchants(&["A"])).await.unwrap();
    s.put_projections(vec![graded("A", Grade::Green)])
        .await
        .unwrap();
    after_an_old_change_was_dropped(&s, dropped as u64).await;
}

#[tokio::test]
async fn redis_feed_drops_public_changes_older_than_it_keeps() {
    let b = Backend::redis().await;
    let prefix = b.redis.as_ref().unwrap().prefix().to_owned();
    let port = redis_helpers::standalone().port;
    let old = (yisaozhi::clock::now().as_second() - 93 * 86_400).to_string();
    let feed = format!("{prefix}:{{changes}}:feed");
    redis_cli(
        port,
        &[
            "xadd", &feed, "1-0", "at", &old, "m", "A", "k", "merchant", "g", "", "s", "",
        ],
    );
    redis_cli(port, &["set", &format!("{prefix}:{{changes}}:seq"), "1"]);
    assert_eq!(
        b.store.feed(None, 10).await.unwrap().changes.len(),
        1,
        "kept until a write trims"
    );
    b.store.upsert_merchants(merchants(&["B"])).await.unwrap();
    after_an_old_change_was_dropped(&b.store, 1).await;
}
