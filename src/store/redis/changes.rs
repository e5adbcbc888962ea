//! The change stream, which keeps the replicas' caches coherent.
//!
//! Every projection, code and revocation write appends the changed merchant
//! ids to the stream `P:{changes}:stream` with the explicit entry id
//! `N-0`, where `N` is the running count of changed merchants (`INCRBY` in the
//! same script), and `n` (how many ids) and `m` (the ids, comma-separated) as
//! fields. The cursor of
//! [`ScanRead::changes_since`](crate::store::roles::ScanRead::changes_since) is
//! that count: a poll is one `GET` when nothing changed, else one `XRANGE`. The stream keeps (about)
//! the last [`CHANGES_KEPT`] merchant changes (`XADD MINID ~ N-KEPT`, so an
//! entry of 5,000 ids counts as 5,000). A reader whose cursor fell out of it,
//! or that is more than [`RedisOptions::max_changes_listed`] changes behind,
//! or that sees the count go backwards (Redis lost its data), is told to drop
//! everything. Polling rather than pub/sub: a missed message cannot leave a
//! replica stale, and the 500 ms poll of `startup.rs` meets the 1 s target.

use std::collections::HashSet;

use super::common::{merchant_id, redis_err};
use super::conn::RedisStore;
use super::scripts::SCRIPTS;
use crate::model::MerchantId;
use crate::store::types::{StoreError, StoreResult};

impl RedisStore {
    /// Appends the change notice for `ids` (cluster path; standalone scripts
    /// write it themselves).
    pub(super) async fn note_changes(&self, ids: Vec<String>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut inv = SCRIPTS.note_changes.prepare_invoke();
        inv.key(self.keys.changes())
            .key(self.keys.changes_seq())
            .arg(self.changes_kept);
        for id in &ids {
            inv.arg(id);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }
}

pub(super) async fn changes_since(
    store: &RedisStore,
    cursor: u64,
) -> StoreResult<(Option<Vec<MerchantId>>, u64)> {
    let mut conn = store.conn();
    let max: Option<u64> = ::redis::cmd("GET")
        .arg(store.keys.changes_seq())
        .query_async(&mut conn)
        .await
        .map_err(redis_err)?;
    let max = max.unwrap_or(0);
    if max == cursor {
        return Ok((Some(Vec::new()), max));
    }
    // Behind by too much, first poll, or the count went backwards
    // (Redis lost its data): everything counts as changed.
    if cursor == 0 || max < cursor || max - cursor > store.max_changes_listed {
        return Ok((None, max));
    }
    let entries: Vec<(String, Vec<String>)> = ::redis::cmd("XRANGE")
        .arg(store.keys.changes())
        .arg(format!("{}-0", cursor + 1))
        .arg(format!("{max}-0"))
        .query_async(&mut conn)
        .await
        .map_err(redis_err)?;
    let mut seen = cursor;
    let mut ids = HashSet::new();
    for (entry_id, fields) in &entries {
        let end: u64 = entry_id
            .strip_suffix("-0")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("change entry id `{entry_id}`")))?;
        let mut n = None;
        let mut list = "";
        for pair in fields.chunks(2) {
            match pair {
                [k, v] if k == "n" => n = v.parse::<u64>().ok(),
                [k, v] if k == "m" => list = v,
                _ => {}
            }
        }
        let n = n.ok_or_else(|| StoreError::Corrupt(format!("change entry `{entry_id}`")))?;
        if end.checked_sub(n) != Some(seen) {
            // Entries between `seen` and this one were trimmed away.
            return Ok((None, max));
        }
        seen = end;
        ids.extend(list.split(',').filter(|s| !s.is_empty()));
    }
    if seen != max {
        return Ok((None, max));
    }
    let mut ids = ids
        .into_iter()
        .map(merchant_id)
        .collect::<StoreResult<Vec<_>>>()?;
    ids.sort();
    Ok((Some(ids), max))
}
