//! Connecting to a Redis Cluster that is settling; a write that timed out on a hung Redis lands whole.

use super::*;

/// Options for a cluster store of this test: its own key prefix, and
/// `wait` to settle.
pub(super) fn cluster_options(wait: Duration) -> RedisOptions {
    RedisOptions {
        prefix: redis_helpers::unique_prefix(),
        connect_wait: wait,
        ..RedisOptions::default()
    }
}

#[tokio::test]
pub(super) async fn connecting_while_the_cluster_is_being_created_waits_until_it_has_settled() {
    let cluster = Arc::new(RedisCluster::unjoined().unwrap_or_else(|e| panic!("{e}")));
    let urls = cluster.urls();
    let started = Instant::now();
    let options = cluster_options(Duration::from_secs(60));
    let connecting = tokio::spawn(async move { RedisStore::connect_cluster(&urls, options).await });
    // Nodes up, no slot served: no connection yet, and no failure either.
    tokio::time::sleep(Duration::from_millis(700)).await;
    if connecting.is_finished() {
        match connecting.await.unwrap() {
            Ok(_) => panic!("connected before the cluster existed"),
            Err(e) => panic!("gave up before the cluster existed: {e:#}"),
        }
    }
    let joining = cluster.clone();
    tokio::task::spawn_blocking(move || joining.join())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let joined = started.elapsed();
    let store = tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("connect still waiting a minute after the cluster was created")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "cluster created after {joined:?}; connected after {:?}",
        started.elapsed()
    );
    // At once, the operations of a refresh: writes to every master, and
    // reads of the index keys of every slot (multi-node).
    let merchants: Vec<Merchant> = (0..50)
        .map(|i| {
            serde_json::from_value(json!({"id": format!("SETTLE{i}"), "name": format!("店{i}"),
                "kind": "shop", "address": "某路1号", "region": "511504", "categories": []}))
            .unwrap()
        })
        .collect();
    store.upsert_merchants(merchants).await.unwrap();
    let ids = store.all_merchant_ids().await.unwrap();
    assert_eq!(ids.len(), 50, "{ids:?}");
    store.ping().await.unwrap();
}

#[tokio::test]
pub(super) async fn connecting_to_a_cluster_that_never_settles_fails_after_the_configured_time_and_says_what_to_check(
) {
    // Nothing listens on the port, and nodes that answer but serve no slot.
    let nothing = format!("127.0.0.1:{}", free_port());
    let unjoined = RedisCluster::unjoined().unwrap_or_else(|e| panic!("{e}"));
    for (nodes, last) in [
        (vec![nothing.clone()], "refused"),
        (unjoined.urls(), "(last: "),
    ] {
        let wait = Duration::from_millis(1500);
        let started = Instant::now();
        let err = RedisStore::connect_cluster(&nodes, cluster_options(wait))
            .await
            .err()
            .expect("no cluster to connect to");
        let took = started.elapsed();
        let message = format!("{err:#}");
        println!("{nodes:?}: failed after {took:?}: {message}");
        assert!(took >= wait, "gave up after {took:?}, before {wait:?}");
        assert!(took < wait * 3, "took {took:?} for a wait of {wait:?}");
        for needle in [
            "cannot connect to Redis Cluster at redis+cluster://",
            "not ready after 1.",
            last,
            "cluster_state:ok",
            "redis-cli --cluster check",
            "16384 slots",
            "store_connect_timeout_s",
        ] {
            assert!(message.contains(needle), "`{needle}` not in: {message}");
        }
    }
}

#[test]
pub(super) fn the_command_line_waits_for_a_cluster_as_long_as_store_connect_timeout_s_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redis+cluster://127.0.0.1:{}", free_port());
    for (wait, limit) in [("1", Duration::from_secs(1)), ("3", Duration::from_secs(3))] {
        let started = Instant::now();
        let out = yisaozhi()
            .args(["tokens", "list", "--store", &store])
            .env("YSZ_STORE_CONNECT_TIMEOUT_S", wait)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // After the log lines of the attempts.
        let err = stderr.lines().last().unwrap_or_default();
        println!(
            "YSZ_STORE_CONNECT_TIMEOUT_S={wait}: exit {:?} after {took:?}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(took >= limit && took < limit * 3, "{took:?}: {stderr}");
        assert!(
            err.starts_with("yisaozhi: cannot connect to Redis Cluster at ")
                && err.contains(&format!("not ready after {wait}."))
                && err.contains("store_connect_timeout_s"),
            "{err}"
        );
    }
}

#[tokio::test]
pub(super) async fn a_write_that_timed_out_on_a_hung_redis_lands_whole_with_its_audit_entry_when_it_continues(
) {
    use yisaozhi::grading::{project, Rules};
    use yisaozhi::model::{AuditEntry, Grade, MerchantId, Override};
    use yisaozhi::store::{AuditFilter, StoreError};
    let redis = DurableRedis::start();
    let store = RedisStore::connect(
        &redis.url(),
        RedisOptions {
            response_timeout: Duration::from_millis(300),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    let merchant: Merchant = serde_json::from_value(json!({"id": "M001", "name": "测试商店",
        "kind": "shop", "address": "某路1号", "region": "511504", "categories": []}))
    .unwrap();
    store
        .upsert_merchants(vec![merchant.clone()])
        .await
        .unwrap();
    let id = MerchantId::parse("M001").unwrap();
    let day = jiff::civil::date(2026, 6, 1);
    let set = |grade: Grade, reason: &str| {
        let now = jiff::Timestamp::now();
        let value = Override {
            grade,
            reason: reason.into(),
            expires_at: None,
            actor: "县局".into(),
            at: now,
        };
        let projection = project(&merchant, &[], Some(&value), &Rules::default(), day, now);
        let audit = AuditEntry {
            at: now,
            actor: "县局".into(),
            action: "override.set".into(),
            target: "M001".into(),
            before: Value::Null,
            after: json!({"grade": grade, "reason": reason}),
            reason: Some(reason.into()),
        };
        store.set_override(&id, Some(value), projection, audit)
    };
    // Once with Redis up, so that Redis knows the script: a hung Redis is
    // then sent the write itself.
    set(Grade::Yellow, "第一次").await.unwrap();

    redis.pause();
    let started = Instant::now();
    let outcome = set(Grade::Red, "第二次").await;
    println!(
        "set_override with Redis hung: {outcome:?} after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    // Known down now: refused at once.
    let started = Instant::now();
    assert!(store.override_of(&id).await.is_err());
    assert!(started.elapsed() <= known_down());

    redis.resume();
    let back = Instant::now();
    while store.ping().await.is_err() {
        assert!(back.elapsed() < RECOVERY_AFTER_CONT, "not recovered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The caller was told "unavailable", yet the write was applied when
    // Redis continued: the override, its projection and its audit entry.
    let now = store.override_of(&id).await.unwrap().expect("an override");
    assert_eq!((now.grade, now.reason.as_str()), (Grade::Red, "第二次"));
    let projection = store.projection(&id).await.unwrap().expect("a projection");
    assert_eq!(projection.grade, Grade::Red);
    let entries = store
        .audit(AuditFilter {
            target: Some("M001".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let reasons: Vec<Option<&str>> = entries.iter().map(|e| e.reason.as_deref()).collect();
    assert_eq!(reasons.len(), 2, "{entries:?}");
    assert!(reasons.contains(&Some("第二次")), "{entries:?}");
}
