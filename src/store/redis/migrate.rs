//! Layout migration: a standalone store written before its index keys were
//! sharded (one index key of each kind per slot) is brought to the current
//! layout (see `keys`) by the first connect.

use super::common::redis_err;
use super::conn::RedisStore;
use super::keys::{slot_tag, SLOTS, STANDALONE_INDEX_SHARDS};
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
        let mut conn = self.conn();
        let layout: Option<String> = ::redis::cmd("GET")
            .arg(&marker)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if layout.as_deref() == Some(LAYOUT) {
            return Ok(());
        }
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
        ::redis::cmd("SET")
            .arg(&marker)
            .arg(LAYOUT)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }
}
