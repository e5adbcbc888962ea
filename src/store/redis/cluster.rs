//! Redis Cluster specifics: connecting while the cluster settles, and
//! per-master pipelines.
//!
//! Right after `redis-cli --cluster create` the nodes may still disagree
//! about the slots, and the first command sent to every node can fail with
//! `No connections found for multi-node operation` although each node says
//! `cluster_state:ok`. [`RedisStore::connect_cluster`] therefore does not
//! trust the first connection: it retries, with backoff from 50 ms to 1 s,
//! until a connection answers `PING` on every node, `DBSIZE` on every master
//! and `CLUSTER SLOTS` with all 16384 slots served, for
//! [`RedisOptions::connect_wait`] (10 s by default); then it fails with the
//! last error and what to check.
//!
//! Batch-job queries over every slot go to each master as one pipeline per
//! 1024 of its slots, routed by `CLUSTER SLOTS`.

use std::collections::BTreeMap;
use std::time::Duration;

use ::redis::cluster_async::ClusterConnection;
use ::redis::{Pipeline, Value};
use futures_util::stream::{self, StreamExt};

use super::common::{corrupt, redis_err};
use super::conn::Conn;
use super::conn::RedisStore;
use super::keys::SLOTS;
use super::lanes::{slot_pipeline, split_values, PARALLEL};
use super::options::{check_prefix, RedisOptions};
use crate::store::roles::ScanRead;
use crate::store::types::{StoreError, StoreResult};

/// A connection to a Redis Cluster that has settled: one that answers on
/// every node and serves every slot, tried again with backoff for
/// [`RedisOptions::connect_wait`] (see the module documentation).
async fn settled_cluster(
    client: &::redis::cluster::ClusterClient,
    opts: &RedisOptions,
) -> anyhow::Result<ClusterConnection> {
    let started = std::time::Instant::now();
    let attempt_limit = opts.connect_timeout + opts.response_timeout;
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = async {
            let mut conn = client.get_async_connection().await.map_err(redis_err)?;
            // Sent to every node and every master: the kind of command that
            // fails while the cluster settles.
            ::redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_err)?;
            ::redis::cmd("DBSIZE")
                .query_async::<u64>(&mut conn)
                .await
                .map_err(redis_err)?;
            slots_by_master(&mut conn).await?;
            Ok::<_, StoreError>(conn)
        };
        let error = match tokio::time::timeout(attempt_limit, attempt).await {
            Ok(Ok(conn)) => {
                if attempts > 1 {
                    tracing::info!(
                        attempts,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "Redis Cluster settled"
                    );
                }
                return Ok(conn);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", attempt_limit.as_millis()),
        };
        let waited = started.elapsed();
        if waited >= opts.connect_wait {
            anyhow::bail!(
                "not ready after {:.1} s and {attempts} attempts (last: {error}); check that \
                 every node listed answers (`redis-cli -h HOST -p PORT ping`), says \
                 `cluster_state:ok` (`redis-cli -h HOST -p PORT cluster info`) and announces \
                 an address reachable from here (`cluster-announce-ip`), and that \
                 `redis-cli --cluster check HOST:PORT` finds all 16384 slots covered; \
                 or wait longer with store_connect_timeout_s (YSZ_STORE_CONNECT_TIMEOUT_S)",
                waited.as_secs_f64()
            );
        }
        tracing::info!(attempt = attempts, %error, "Redis Cluster not ready yet; trying again");
        // The last attempt at the end of the wait.
        tokio::time::sleep(delay.min(opts.connect_wait - waited)).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Every slot, grouped by the master serving it (`CLUSTER SLOTS`). Fails
/// unless all slots are served.
async fn slots_by_master(conn: &mut ClusterConnection) -> StoreResult<Vec<Vec<u16>>> {
    let bad = || StoreError::Corrupt("redis: unexpected CLUSTER SLOTS reply".into());
    let reply: Vec<Value> = ::redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .map_err(redis_err)?;
    let mut by_master: BTreeMap<(String, u16), Vec<u16>> = BTreeMap::new();
    let mut covered = 0usize;
    for range in reply {
        let parts: Vec<Value> = ::redis::from_redis_value(range).map_err(corrupt)?;
        let [start, end, master, ..] = parts.as_slice() else {
            return Err(bad());
        };
        let start: u16 = ::redis::from_redis_value(start.clone()).map_err(corrupt)?;
        let end: u16 = ::redis::from_redis_value(end.clone()).map_err(corrupt)?;
        let master: Vec<Value> = ::redis::from_redis_value(master.clone()).map_err(corrupt)?;
        let [host, port, ..] = master.as_slice() else {
            return Err(bad());
        };
        let host: String = ::redis::from_redis_value(host.clone()).map_err(corrupt)?;
        let port: u16 = ::redis::from_redis_value(port.clone()).map_err(corrupt)?;
        if start > end || end >= SLOTS {
            return Err(bad());
        }
        covered += usize::from(end - start) + 1;
        by_master
            .entry((host, port))
            .or_default()
            .extend(start..=end);
    }
    if covered != SLOTS as usize {
        return Err(StoreError::Unavailable(format!(
            "redis cluster serves {covered} of {SLOTS} slots"
        )));
    }
    Ok(by_master.into_values().collect())
}

impl RedisStore {
    /// Connects to a Redis Cluster through any of its nodes (`HOST:PORT` or
    /// `redis://HOST:PORT` each).
    pub async fn connect_cluster(nodes: &[String], opts: RedisOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        check_prefix(&opts.prefix)?;
        let urls: Vec<String> = nodes
            .iter()
            .map(|n| {
                if n.starts_with("redis://") {
                    n.clone()
                } else {
                    format!("redis://{n}")
                }
            })
            .collect();
        let shown = crate::redact::redact_url(&format!("redis+cluster://{}", nodes.join(",")));
        let client = ::redis::cluster::ClusterClient::builder(urls)
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.response_timeout)
            .retries(opts.retries)
            .build()
            .with_context(|| format!("Redis Cluster `{shown}`"))?;
        let conn = settled_cluster(&client, &opts)
            .await
            .with_context(|| format!("cannot connect to Redis Cluster at {shown}"))?;
        let store = Self::over(Conn::Cluster(conn), None, opts);
        store
            .ping()
            .await
            .with_context(|| format!("Redis Cluster at {shown} does not answer"))?;
        store.drop_uscc_sets().await.with_context(|| {
            format!(
                "cannot remove the search index's old credit-code sets in Redis Cluster at {shown}"
            )
        })?;
        Ok(store)
    }

    pub(super) async fn per_slot_by_master<R, F>(
        &self,
        conn: &ClusterConnection,
        cmds: &F,
        parse: fn(Vec<Value>) -> StoreResult<R>,
    ) -> StoreResult<Vec<R>>
    where
        R: Send,
        F: Fn(u16, &mut Pipeline) + Sync,
    {
        use ::redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
        let masters = slots_by_master(&mut conn.clone()).await?;
        let chunks: Vec<Vec<u16>> = masters
            .iter()
            .flat_map(|slots| slots.chunks(1024).map(<[u16]>::to_vec))
            .collect();
        let parts: Vec<StoreResult<Vec<(u16, R)>>> = stream::iter(chunks)
            .map(|slots| {
                let mut conn = conn.clone();
                async move {
                    let (pipe, sizes) = slot_pipeline(&slots, cmds);
                    let count = pipe.len();
                    let route =
                        SingleNodeRoutingInfo::SpecificNode(Route::new(slots[0], SlotAddr::Master));
                    let values = conn
                        .route_pipeline(pipe, 0, count, route)
                        .await
                        .map_err(redis_err)?;
                    Ok(slots
                        .into_iter()
                        .zip(split_values(values, sizes, parse)?)
                        .collect())
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut all = Vec::with_capacity(SLOTS as usize);
        for part in parts {
            all.extend(part?);
        }
        all.sort_by_key(|(slot, _)| *slot);
        Ok(all.into_iter().map(|(_, r)| r).collect())
    }
}
