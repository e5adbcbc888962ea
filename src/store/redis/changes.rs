//! The change log (see [`crate::store::changes`]) and the stream of
//! notices that keeps the replicas' caches coherent.
//!
//! Every write that changes what the service shows notes its merchants in
//! the `{changes}` slot: the counter `P:{changes}:seq` grows by the number
//! of merchants noted (`INCRBY`), which gives each its position; the
//! notices stream `P:{changes}:stream` gets one entry `N-0`, where `N` is
//! the count after it, with `n` (how many ids) and `m` (the ids,
//! comma-separated); and each public change (a grade that changed, an
//! override, a code issued or revoked, a merchant new or changed) also
//! goes to `P:{changes}:feed` as the entry `<position>-0` with `at`, `m`,
//! `k` (kind), `g` (grade) and `s` (serial). All in one script, so
//! positions appear in order in both streams: a reader never sees a
//! position before a smaller one. On standalone Redis that script is the
//! write's own (or in its `MULTI`), so a change and its entries are one
//! atomic write; on a cluster the `{changes}` slot is another slot than
//! the merchant's, and the entries are written right after the write (a
//! process that dies in between leaves the write without its entries, as
//! it leaves it without its audit entry). The order of the feed is then
//! the order in which the writes' notes reached the `{changes}` slot's
//! master: one total order across every slot, which any replica or client
//! reads alike.
//!
//! The cursor of
//! [`ScanRead::changes_since`](crate::store::roles::ScanRead::changes_since) is
//! that count: a poll is one `GET` when nothing changed, else one `XRANGE`. The stream keeps (about)
//! the last [`CHANGES_KEPT`] merchant changes (`XADD MINID ~ N-KEPT`, so an
//! entry of 5,000 ids counts as 5,000). A reader whose cursor fell out of it,
//! or that is more than [`RedisOptions::max_changes_listed`] changes behind,
//! or that sees the count go backwards (Redis lost its data), is told to drop
//! everything. Polling rather than pub/sub: a missed message cannot leave a
//! replica stale, and the 500 ms poll of `startup.rs` meets the 1 s target.
//! The feed is trimmed from its oldest end once entries are older than
//! [`FEED_KEPT_DAYS`](crate::store::changes::FEED_KEPT_DAYS) days; the
//! position before which it was trimmed is `P:{changes}:feed-kept`.

use std::collections::HashSet;

use super::common::{merchant_id, redis_err};
use super::conn::RedisStore;
use super::scripts::SCRIPTS;
use crate::model::{Grade, MerchantId};
use crate::store::changes::{feed_cutoff, Change, ChangeKind, FeedPage, Note};
use crate::store::types::{StoreError, StoreResult};

impl RedisStore {
    /// Adds the change log's keys to a script call (standalone: the write's
    /// own script notes its changes).
    pub(super) fn add_log_keys(&self, inv: &mut ::redis::ScriptInvocation<'_>) {
        for key in self.keys.change_log() {
            inv.key(key);
        }
    }

    /// What a script's notes take after its own arguments: how many
    /// notices to keep, now and the feed's cutoff (seconds).
    pub(super) fn log_args(&self) -> [i64; 3] {
        let now = crate::clock::now();
        let kept = i64::try_from(self.changes_kept).unwrap_or(i64::MAX);
        // -1: the scripts note nothing (bench-only, see `log_disabled`).
        let kept = if crate::store::changes::log_disabled() {
            -1
        } else {
            kept
        };
        [kept, now.as_second(), feed_cutoff(now)]
    }

    /// Adds [`Self::log_args`] to a script call.
    pub(super) fn add_log_args(&self, inv: &mut ::redis::ScriptInvocation<'_>) {
        inv.arg(&self.log_args()[..]);
    }

    /// Adds now and the feed's cutoff, the last two of [`Self::log_args`].
    pub(super) fn add_now_args(&self, inv: &mut ::redis::ScriptInvocation<'_>) {
        inv.arg(&self.log_args()[1..]);
    }

    /// Notes `notes` in the change log (cluster path; standalone scripts
    /// write them themselves).
    pub(super) async fn note(&self, notes: &[Note<'_>]) -> StoreResult<()> {
        if notes.is_empty() || crate::store::changes::log_disabled() {
            return Ok(());
        }
        let mut inv = SCRIPTS.note_changes.prepare_invoke();
        self.add_log_keys(&mut inv);
        self.add_log_args(&mut inv);
        for n in notes {
            inv.arg(n.merchant)
                .arg(n.kind.map_or("", ChangeKind::name))
                .arg(n.grade.map_or("", Grade::name))
                .arg(n.serial.map_or(String::new(), |s| s.to_string()));
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(())
    }
}

/// A stream entry as `XRANGE` gives it: its id and its fields and values.
type StreamEntry = (String, Vec<String>);

/// Up to `limit` public changes after `after`: the kept-after position, the
/// last position and the entries, in one `MULTI` of the `{changes}` slot.
pub(super) async fn feed(
    store: &RedisStore,
    after: Option<u64>,
    limit: usize,
) -> StoreResult<FeedPage> {
    let [_, seq, feed, kept] = store.keys.change_log();
    // Without a position, from the oldest entry kept.
    let start = after.map_or_else(|| "-".to_owned(), |a| format!("{}-0", a.saturating_add(1)));
    let (kept_after, last, entries): (Option<u64>, Option<u64>, Vec<StreamEntry>) = ::redis::pipe()
        .atomic()
        .get(&kept)
        .get(&seq)
        .cmd("XRANGE")
        .arg(&feed)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(limit)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let changes = entries
        .iter()
        .map(|(id, fields)| change_of(id, fields))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(FeedPage {
        changes,
        kept_after: kept_after.unwrap_or(0),
        last: last.unwrap_or(0),
    })
}

/// One feed entry read back.
fn change_of(id: &str, fields: &[String]) -> StoreResult<Change> {
    let bad = || StoreError::Corrupt(format!("feed entry `{id}`"));
    let position = id
        .strip_suffix("-0")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|p| p[0] == name)
            .and_then(|p| p.get(1))
            .map(String::as_str)
            .unwrap_or("")
    };
    let grade = match field("g") {
        "" => None,
        g => Some(Grade::from_name(g).ok_or_else(bad)?),
    };
    let serial = match field("s") {
        "" => None,
        s => Some(s.parse().map_err(|_| bad())?),
    };
    Ok(Change {
        position,
        at: field("at")
            .parse()
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .ok_or_else(bad)?,
        merchant: merchant_id(field("m"))?,
        kind: ChangeKind::from_name(field("k")).ok_or_else(bad)?,
        grade,
        serial,
    })
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
