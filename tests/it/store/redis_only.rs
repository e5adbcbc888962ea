//! Redis and Redis Cluster only: killed imports, slots, the change stream's trimming, key layouts.

use super::*;

/// A bulk import into Redis killed before its end (the store dropped without
/// finishing its import) leaves every merchant due; the first `due_for_regrade`
/// after it says so once, and a finished regrade clears it; the record it
/// was given is stored exactly once after the re-run.
pub(super) async fn redis_killed_bulk_import_leaves_every_merchant_due(cluster: bool) {
    let opts = RedisOptions {
        prefix: unique_prefix(),
        ..RedisOptions::default()
    };
    let connect = |opts: RedisOptions| async move {
        if cluster {
            RedisStore::connect_cluster(&redis_helpers::cluster().urls(), opts).await
        } else {
            RedisStore::connect(&redis_helpers::standalone().url(), opts).await
        }
        .expect("connect")
    };
    let first = connect(opts.clone()).await;
    let list: Vec<String> = (0..40).map(|i| format!("K{i:03}")).collect();
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    first.upsert_merchants(merchants(&refs)).await.unwrap();
    first
        .put_projections(refs.iter().map(|m| plain(m, None)).collect())
        .await
        .unwrap();
    let bulk = first.begin_bulk_import(1_000_000_000).await.unwrap();
    bulk.add_records(vec![record("k1", "K001", "2026-01-01")])
        .await
        .unwrap();
    drop(bulk);
    drop(first);

    let second = connect(opts).await;
    assert_eq!(
        second.due_for_regrade(AS_OF).await.unwrap(),
        ids(&refs),
        "every merchant, not only K001"
    );
    second
        .put_projections(refs.iter().map(|m| plain(m, None)).collect())
        .await
        .unwrap();
    assert_eq!(
        second.due_for_regrade(AS_OF).await.unwrap(),
        Vec::<MerchantId>::new()
    );
    // Standalone holds a bulk import's records back until its end, so the
    // killed one stored nothing and the re-run stores the record; a cluster
    // stored it already and the re-run finds it. Either way: once.
    let again = second
        .add_records(vec![record("k1", "K001", "2026-01-01")])
        .await
        .unwrap();
    assert_eq!(again.inserted, u64::from(!cluster), "{again:?}");
    assert_eq!(
        second.records(&id("K001")).await.unwrap().len(),
        1,
        "the record is stored once"
    );
}

#[tokio::test]
pub(super) async fn redis_killed_bulk_import_leaves_every_merchant_due_standalone() {
    redis_killed_bulk_import_leaves_every_merchant_due(false).await;
}

#[tokio::test]
pub(super) async fn redis_killed_bulk_import_leaves_every_merchant_due_cluster() {
    redis_killed_bulk_import_leaves_every_merchant_due(true).await;
}

/// A cluster import killed between claiming record ids and storing the
/// records: the re-run stores each record once.
#[tokio::test]
pub(super) async fn cluster_claimed_but_unstored_records_are_stored_once_by_the_rerun() {
    let b = Backend::cluster().await;
    let r = redis_of(&b);
    b.store
        .upsert_merchants(merchants(&["A", "B"]))
        .await
        .unwrap();
    b.store
        .add_records(vec![record("r1", "A", "2026-01-01")])
        .await
        .unwrap();
    // r2 claimed for A but never stored: the state a kill between the steps leaves.
    let owner = format!(
        "{}:{{{}}}:ix:record-owner",
        r.prefix(),
        yisaozhi::store::redis::slot_tag(slot_of("r2"))
    );
    let port = redis_helpers::cluster().nodes[0].port;
    assert_eq!(
        redis_cli(port, &["-c", "hsetnx", &owner, "r2", "A"]).trim(),
        "1"
    );
    let again = vec![
        record("r1", "A", "2026-01-01"),
        record("r2", "A", "2026-01-02"),
        record("r2", "B", "2026-01-02"),
    ];
    assert_eq!(
        b.store.add_records(again.clone()).await.unwrap(),
        RecordsAdded {
            inserted: 1,
            duplicate: 2
        }
    );
    assert_eq!(
        b.store.add_records(again).await.unwrap(),
        RecordsAdded {
            inserted: 0,
            duplicate: 3
        }
    );
    let got: Vec<String> = b
        .store
        .records(&id("A"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, ["r1", "r2"]);
}

pub(super) fn redis_of(b: &Backend) -> &RedisStore {
    b.redis.as_ref().expect("a Redis backend")
}

#[tokio::test]
pub(super) async fn cluster_spreads_merchants_over_every_master_with_each_merchant_in_one_slot() {
    let b = Backend::cluster().await;
    let r = redis_of(&b);
    let list: Vec<String> = (0..60).map(|i| format!("SH-{i:04}")).collect();
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    b.store.upsert_merchants(merchants(&refs)).await.unwrap();
    let recs: Vec<Record> = list
        .iter()
        .map(|m| record(&format!("{m}-r"), m, "2026-01-01"))
        .collect();
    b.store.add_records(recs).await.unwrap();
    b.store
        .put_projections(
            list.iter()
                .map(|m| plain(m, Some(date(2027, 1, 1))))
                .collect(),
        )
        .await
        .unwrap();
    for (i, m) in list.iter().enumerate().take(3) {
        b.store
            .issue_code(code(i as u32 + 1, m, Grade::Green), None)
            .await
            .unwrap();
    }

    // Every master holds some merchants.
    let cluster = redis_helpers::cluster();
    for node in &cluster.nodes {
        let pattern = format!("{}:*:merchant", r.prefix());
        let keys = redis_cli(node.port, &["--scan", "--pattern", &pattern]);
        let n = keys.lines().filter(|l| !l.is_empty()).count();
        assert!(n > 0, "no merchant on the master at port {}", node.port);
    }
    // Each merchant's keys, and its index entries, share one slot: the slot of its id.
    for m in refs.iter().take(5) {
        let want = slot_of(m).to_string();
        for what in ["merchant", "records", "projection", "codes", "code-status"] {
            let key = r.merchant_key(&id(m), what);
            let got = redis_cli(cluster.nodes[0].port, &["cluster", "keyslot", &key]);
            assert_eq!(got.trim(), want, "{key}");
        }
    }
}

#[tokio::test]
pub(super) async fn redis_changes_since_says_everything_when_the_stream_lost_entries() {
    let b = Backend::redis().await;
    let r = redis_of(&b);
    let port = redis_helpers::standalone().port;
    b.store.upsert_merchants(merchants(&["A"])).await.unwrap();
    b.store
        .put_projections(vec![plain("A", None)])
        .await
        .unwrap();
    let cursor = cursor_now(&b).await;
    b.store
        .put_projections(vec![plain("A", None)])
        .await
        .unwrap();
    let stream = format!("{}:{{changes}}:stream", r.prefix());
    // The merchant's upsert and the two projections: three notices.
    assert_eq!(
        redis_cli(port, &["xtrim", &stream, "MAXLEN", "0"]).trim(),
        "3"
    );
    let (changed, next) = b.store.changes_since(cursor).await.unwrap();
    assert_eq!(changed, None, "trimmed past the cursor");
    assert!(next > cursor);

    // The count going backwards (Redis lost its data) also means everything.
    let seq = format!("{}:{{changes}}:seq", r.prefix());
    redis_cli(port, &["del", &seq]);
    assert_eq!(b.store.changes_since(next).await.unwrap(), (None, 0));
}

/// The change stream keeps about `changes_kept` merchant changes; a reader
/// whose cursor was trimmed away is told to drop everything, a recent one
/// still gets its list.
pub(super) async fn change_stream_is_trimmed_by_merchant_changes(cluster: bool) {
    let opts = RedisOptions {
        prefix: unique_prefix(),
        changes_kept: 10,
        ..RedisOptions::default()
    };
    let store = if cluster {
        RedisStore::connect_cluster(&redis_helpers::cluster().urls(), opts).await
    } else {
        RedisStore::connect(&redis_helpers::standalone().url(), opts).await
    }
    .expect("connect");
    let b = Backend {
        store: Arc::new(store.clone()),
        redis: Some(store.clone()),
        max_changes_listed: MAX_CHANGES_LISTED,
        _dir: None,
    };
    b.store
        .upsert_merchants(merchants(&["A", "B"]))
        .await
        .unwrap();
    b.store
        .put_projections(vec![plain("A", None)])
        .await
        .unwrap();
    let old = cursor_now(&b).await;
    for _ in 0..300 {
        b.store
            .put_projections(vec![plain("A", None)])
            .await
            .unwrap();
    }
    let recent = cursor_now(&b).await;
    b.store
        .put_projections(vec![plain("B", None)])
        .await
        .unwrap();
    let stream = format!("{}:{{changes}}:stream", store.prefix());
    let port = if cluster {
        let slot = slot_of("changes").to_string();
        let ports: Vec<u16> = redis_helpers::cluster()
            .nodes
            .iter()
            .map(|n| n.port)
            .collect();
        *ports
            .iter()
            .find(|p| redis_cli(**p, &["cluster", "countkeysinslot", &slot]).trim() != "0")
            .expect("the node holding the change stream")
    } else {
        redis_helpers::standalone().port
    };
    let len: u64 = redis_cli(port, &["xlen", &stream])
        .trim()
        .parse()
        .expect("XLEN");
    assert!(len < 302, "trimmed: {len} entries left of 302");
    assert_eq!(
        b.store.changes_since(old).await.unwrap().0,
        None,
        "cursor trimmed away"
    );
    assert_eq!(
        b.store.changes_since(recent).await.unwrap().0,
        Some(ids(&["B"]))
    );
}

#[tokio::test]
pub(super) async fn redis_change_stream_is_trimmed_by_merchant_changes() {
    change_stream_is_trimmed_by_merchant_changes(false).await;
}

#[tokio::test]
pub(super) async fn cluster_change_stream_is_trimmed_by_merchant_changes() {
    change_stream_is_trimmed_by_merchant_changes(true).await;
}

#[tokio::test]
pub(super) async fn store_specs_parse_and_open() {
    assert_eq!(
        StoreSpec::parse("redis://127.0.0.1:6379"),
        Ok(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
    );
    assert_eq!(
        StoreSpec::parse("redis+cluster://10.0.0.1:7000, 10.0.0.2:7001"),
        Ok(StoreSpec::RedisCluster(vec![
            "10.0.0.1:7000".into(),
            "10.0.0.2:7001".into()
        ]))
    );
    for (bad, says) in [
        ("redis://", "no port"),
        ("redis://localhost", "no port"),
        ("redis://localhost:port", "bad port"),
        ("redis://:6379", "bad host"),
        ("redis+cluster://", "no port"),
        ("redis+cluster://a:1,,b:2", "no port"),
        ("redis+cluster://a:1,b:99999", "bad port"),
        ("rediss://a:1", "TLS"),
        ("mysql://a:1", "expected embedded:DIR, redis://HOST:PORT"),
    ] {
        let err = StoreSpec::parse(bad).expect_err(bad);
        assert!(err.contains(says), "{bad}: {err}");
        assert!(err.contains("store `"), "{bad}: {err}");
    }
    let err = StoreSpec::parse("redis://ops:s3cret@h:port").unwrap_err();
    assert!(!err.contains("s3cret") && err.contains("bad port"), "{err}");
    assert_eq!(
        StoreSpec::parse("redis+cluster://ops:s3cret@a:1,b:2"),
        Ok(StoreSpec::RedisCluster(vec![
            "ops:s3cret@a:1".into(),
            "b:2".into()
        ]))
    );

    let server = redis_helpers::standalone();
    let store = StoreSpec::parse(&server.url())
        .unwrap()
        .open()
        .await
        .unwrap();
    store.ping().await.unwrap();
    let nodes = redis_helpers::cluster()
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect::<Vec<_>>()
        .join(",");
    let store = StoreSpec::parse(&format!("redis+cluster://{nodes}"))
        .unwrap()
        .open()
        .await
        .unwrap();
    store.ping().await.unwrap();

    let err = RedisStore::connect(
        "redis://127.0.0.1:1",
        RedisOptions {
            retries: 0,
            ..RedisOptions::default()
        },
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    assert!(
        format!("{err:#}").contains("cannot connect to Redis at redis://127.0.0.1:1"),
        "{err:#}"
    );
}

/// A standalone store written when its index keys were one per slot: the
/// first connect moves their entries into the 64 shards that hold them now,
/// and a second connect changes nothing.
#[tokio::test]
pub(super) async fn redis_per_slot_index_keys_move_into_their_shards_on_connect() {
    use yisaozhi::store::redis::slot_tag;
    let prefix = unique_prefix();
    let server = redis_helpers::standalone();
    let cli = |args: &[&str]| redis_cli(server.port, args);
    // Merchants and a serial whose slots are past the first 64: their old
    // index keys are not shard keys.
    let names: Vec<String> = (0..)
        .map(|i| format!("OLD{i}"))
        .filter(|m| slot_of(m) >= 64)
        .take(3)
        .collect();
    let serial = (1u32..)
        .map(|n| n.to_string())
        .find(|s| slot_of(s) >= 64)
        .unwrap();
    let old = |tag: &str, what: &str| format!("{prefix}:{{{}}}:ix:{what}", slot_tag(slot_of(tag)));
    let shard =
        |tag: &str, what: &str| format!("{prefix}:{{{}}}:ix:{what}", slot_tag(slot_of(tag) % 64));
    for m in &names {
        let json = serde_json::to_string(&merchant(m, "旧商户")).unwrap();
        cli(&["set", &format!("{prefix}:{{{m}}}:merchant"), &json]);
        cli(&["sadd", &old(m, "merchants"), m]);
    }
    cli(&["sadd", &old(&names[0], "dirty"), &names[0]]);
    cli(&["zadd", &old(&names[1], "due"), "20260105", &names[1]]);
    cli(&["hset", &old(&serial, "code-owner"), &serial, &names[2]]);
    let olds = [
        old(&names[0], "dirty"),
        old(&names[1], "due"),
        old(&serial, "code-owner"),
    ];
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    for round in ["first connect", "second connect"] {
        let store = RedisStore::connect(
            &server.url(),
            RedisOptions {
                prefix: prefix.clone(),
                ..RedisOptions::default()
            },
        )
        .await
        .expect("connect");
        assert_eq!(
            store.all_merchant_ids().await.unwrap(),
            ids(&all),
            "{round}"
        );
        assert_eq!(
            store.due_for_regrade(date(2026, 1, 4)).await.unwrap(),
            ids(&all[..1]),
            "{round}: the marked one"
        );
        assert_eq!(
            store.due_for_regrade(date(2026, 1, 5)).await.unwrap(),
            ids(&all[..2]),
            "{round}: and the one due on 2026-01-05"
        );
        for key in &olds {
            assert_eq!(cli(&["exists", key]).trim(), "0", "{round}: {key}");
        }
        assert_eq!(
            cli(&["hget", &shard(&serial, "code-owner"), &serial]).trim(),
            names[2],
            "{round}"
        );
    }
}

// ---------- any JSON layout, any re-run (issue 17) ----------
