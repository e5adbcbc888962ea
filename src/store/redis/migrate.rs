//! Layout migration: a standalone store written before its index keys were
//! sharded (one index key of each kind per slot) is brought to the current
//! layout (see `keys`) by the first connect; the first connect to an older
//! store, standalone or cluster, also removes the search index's
//! credit-code sets (see `search_index`).

use super::common::{corrupt, redis_err};
use super::conn::{Conn, RedisStore};
use super::keys::{slot_of, slot_tag, SLOTS, STANDALONE_INDEX_SHARDS};
use super::scripts::SCRIPTS;
use crate::store::types::StoreResult;

impl RedisStore {
    /// Standalone: moves the entries of index keys written before they were
    /// sharded (one per slot) into the [`STANDALONE_INDEX_SHARDS`] keys
    /// that hold them now, once per store (`P:{meta}:layout` records it).
    /// Idempotent, and each batch of slots moves atomically, so processes
    /// that connect at the same time, or one killed halfway, leave nothing
    /// behind.
    pub(super) async fn shard_index_keys(&self) -> StoreResult<()> {
        const LAYOUT: &str = "index-shards-64";
        const KINDS: [&str; 4] = ["dirty", "due", "merchants", "code-owner"];
        const SLOTS_PER_SCRIPT: u16 = 256;
        let marker = self.keys.global("meta", "layout");
        if self.marked(&marker, LAYOUT).await? {
            return Ok(());
        }
        let mut conn = self.conn();
        let old = |slot: u16, what: &str| {
            format!("{}:{{{}}}:ix:{what}", self.keys.prefix, slot_tag(slot))
        };
        let mut moved = 0u64;
        let mut first = STANDALONE_INDEX_SHARDS;
        while first < SLOTS {
            let last = (first + SLOTS_PER_SCRIPT).min(SLOTS);
            let mut inv = SCRIPTS.move_index_keys.prepare_invoke();
            for slot in first..last {
                for what in KINDS {
                    inv.key(old(slot, what)).key(self.keys.index(slot, what));
                }
            }
            let n: u64 = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
            moved += n;
            first = last;
        }
        if moved > 0 {
            tracing::info!(keys = moved, "moved per-slot index keys into their shards");
        }
        self.mark(&marker, LAYOUT).await
    }

    /// Removes the credit-code sets (`P:{search}:uscc:<code>`)
    /// that the search index kept before it stopped (nothing read them: a
    /// search by credit code reads the rows), once per store (`P:{meta}:
    /// search-uscc` records it). Idempotent; a process killed halfway
    /// leaves the rest to the next connect.
    pub(super) async fn drop_uscc_sets(&self) -> StoreResult<()> {
        const DONE: &str = "dropped";
        let marker = self.keys.global("meta", "search-uscc");
        if self.marked(&marker, DONE).await? {
            return Ok(());
        }
        let mut conn = self.conn();
        // No glob character in the key: the prefix has none (`check_prefix`).
        let pattern = format!("{}*", self.search_keys().uscc_prefix);
        let (mut cursor, mut removed) = (0u64, 0usize);
        loop {
            let (next, keys) = self.scan_search_slot(cursor, &pattern).await?;
            if !keys.is_empty() {
                removed += keys.len();
                ::redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(redis_err)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if removed > 0 {
            tracing::info!(
                keys = removed,
                "removed the search index's credit-code sets"
            );
        }
        self.mark(&marker, DONE).await
    }

    /// Whether the migration marker `key` holds `value`.
    async fn marked(&self, key: &str, value: &str) -> StoreResult<bool> {
        let held: Option<String> = ::redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(held.as_deref() == Some(value))
    }

    /// Sets the migration marker `key` to `value`.
    async fn mark(&self, key: &str, value: &str) -> StoreResult<()> {
        ::redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    /// One `SCAN` step over the keys of the `{search}` slot's node (in a
    /// cluster, its master's; the pattern's hash tag keeps other slots out).
    async fn scan_search_slot(
        &self,
        cursor: u64,
        pattern: &str,
    ) -> StoreResult<(u64, Vec<String>)> {
        let mut cmd = ::redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000);
        match self.conn() {
            Conn::Cluster(mut cluster) => {
                use ::redis::cluster_routing::{
                    Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
                };
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot_of("search"), SlotAddr::Master),
                ));
                let value = cluster.route_command(cmd, route).await.map_err(redis_err)?;
                ::redis::from_redis_value(value).map_err(corrupt)
            }
            mut conn => cmd.query_async(&mut conn).await.map_err(redis_err),
        }
    }
}
