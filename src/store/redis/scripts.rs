//! The Lua scripts of the writes, one file each under `scripts/`, and the
//! helpers they share (`scripts/prelude.lua`). What each takes in `KEYS`
//! and `ARGV` is written beside it below; how the writes use them, in
//! `writes`.

use std::sync::LazyLock;

use ::redis::Script;

/// The distinct values of `items` in ascending order, and for each item
/// its place among them counted from 1: how a script finds an item's key
/// among the keys passed once per distinct value.
pub(super) fn numbered(items: impl Iterator<Item = u16>) -> (Vec<u16>, Vec<usize>) {
    let items: Vec<u16> = items.collect();
    let mut distinct = items.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let places = items
        .iter()
        .map(|v| distinct.partition_point(|d| d < v) + 1)
        .collect();
    (distinct, places)
}

/// A script's text: the helpers of `scripts/prelude.lua` (the change
/// notice, the audit append, a projection's write), then the script of
/// `scripts/<file>`. The blank lines keep each script's text as it was when
/// the scripts were inline: the same SHA1 for `EVALSHA`, the same line
/// numbers in Redis's error messages.
macro_rules! lua {
    ($file:literal) => {
        concat!(
            "\n",
            include_str!("scripts/prelude.lua"),
            "\n",
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// Standalone `put_projections`: the chunk's notes, first in its `MULTI`
/// (it reads the grades the projections had before, and the entries' ids
/// come from the counter, so it takes a script). Sent with `EVAL` (Redis
/// caches it by its hash), so a Redis that restarted in between cannot
/// answer `NOSCRIPT` in the middle of the transaction. KEYS: the n
/// projection keys, then the change log's four keys. ARGV: changes kept,
/// now, the feed's cutoff, n, then per projection: id, its new grade. A
/// projection whose grade differs from the stored one's (or that is new)
/// is a `grade` change; of one merchant twice, the second compares with
/// the first.
pub(super) const NOTE_PROJECTIONS: &str = lua!("note_projections.lua");

/// The scripts sent with `EVALSHA` (loaded on `NOSCRIPT`), built once.
pub(super) struct Scripts {
    pub(super) move_index_keys: Script,
    pub(super) upsert_merchants: Script,
    pub(super) claim: Script,
    pub(super) add_records: Script,
    pub(super) store_records: Script,
    pub(super) put_projections: Script,
    pub(super) set_override: Script,
    pub(super) issue_code: Script,
    pub(super) revoke_code: Script,
    pub(super) note_changes: Script,
    pub(super) swap_document: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // KEYS: pairs (old index key, the shard key that takes its entries).
    // Merges each old key into its shard (sets: union; sorted sets: union,
    // the later day of a member in both; hashes: fields the shard lacks)
    // and deletes it. Returns how many old keys it moved.
    move_index_keys: Script::new(concat!("\n", include_str!("scripts/move_index_keys.lua"))),
    // KEYS: the n merchant keys, then per index group (1..g) its
    // ix:merchants and, if marking, its ix:dirty. ARGV: '1' to mark changed
    // merchants for regrading (not in bulk mode), n, g, then per merchant:
    // id, json, group. One `MGET`, one `MSET` and a `SADD` per group key
    // instead of commands per merchant. Standalone: then the change log's
    // four keys, and after the merchants' ARGV keep, now and the feed's
    // cutoff: each changed merchant is a `merchant` change. Returns one '1'
    // (changed) or '0' per merchant; of one merchant twice, each compares
    // with the one before it.
    upsert_merchants: Script::new(lua!("upsert_merchants.lua")),
    // KEYS per item: the owner hash. ARGV per item: field, owner.
    // 1: claimed now; 2: already claimed by the same owner; 0: another owner.
    claim: Script::new(lua!("claim.lua")),
    // Standalone: claim and store in one step. ARGV[1]: '1' to mark,
    // ARGV[2]: b, the number of record-id set keys; then per record: the
    // index (1..b) of its id's set, id, merchant, json. KEYS: the b id sets,
    // then per record: records, then ix:dirty if marking. Ids new to their
    // set are claimed with one SMISMEMBER and one SADD per set, then each
    // claimed record is appended to its merchant's list in batch order.
    // Returns one '1' (stored) or '0' (duplicate id) per record.
    add_records: Script::new(lua!("add_records.lua")),
    // Cluster, after the claim: store the claimed records in the merchant's
    // slot. ARGV[1]: '1' to mark, then per record: claim ('1' claimed now,
    // '2' claimed earlier by this merchant), merchant, json, the json's
    // prefix up to its id, the id. KEYS per record: records, then ix:dirty
    // if marking. A record claimed earlier is stored unless the list
    // already holds one with its id (a run killed between claim and store,
    // or a re-run), compared by value: a canonical entry (`{"id":"` and an
    // id without escapes) by its prefix; any other entry (stored as read by
    // an earlier version: spaces, another key order, escapes) is decoded.
    // Returns one '1' (stored) or '0' per record.
    store_records: Script::new(lua!("store_records.lua")),
    // Cluster. ARGV[1] = n; per projection: id, json, score ('' for none),
    // grade. KEYS per projection: projection, ix:dirty, ix:due. Returns per
    // projection the grade stored before ('' for none; of one merchant
    // twice, the first one's for the second), for the notes written after.
    put_projections: Script::new(lua!("put_projections.lua")),
    // KEYS: override, projection, ix:dirty, ix:due, then (standalone) audit log,
    // audit by target and the change log's four keys.
    // ARGV: override json ('' clears), id, projection json, score, audit json,
    // keep, the projection's grade, now, the feed's cutoff. Returns the
    // grade stored before ('' for none).
    set_override: Script::new(lua!("set_override.lua")),
    // KEYS: codes, code-status, then (standalone) audit log, audit by target
    // and the change log's four keys.
    // ARGV: serial, code json, status, merchant id, audit json ('' for none),
    // keep, now, the feed's cutoff.
    issue_code: Script::new(lua!("issue_code.lua")),
    // KEYS: codes, code-status, then (standalone) audit log, audit by target
    // and the change log's four keys. ARGV: serial, merchant id, audit json,
    // keep, now, the feed's cutoff.
    // Returns nil for an unknown serial, else {code json, status before}.
    // A code already revoked is left alone: no write, no audit entry.
    revoke_code: Script::new(lua!("revoke_code.lua")),
    // KEYS: the change log's four keys. ARGV: keep, now, the feed's cutoff,
    // then per note: merchant, kind ('' for a notice only), grade, serial.
    note_changes: Script::new(lua!("note_changes.lua")),
    // KEYS: the collection's hash. ARGV: key, 'any' | 'absent' | 'equals',
    // the expected JSON, '1' to write (else remove), the new JSON.
    // Returns 1 when it wrote (or removed a document), else 0.
    swap_document: Script::new(concat!("\n", include_str!("scripts/swap_document.lua"))),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_gives_each_item_its_place_among_the_distinct_values() {
        assert_eq!(
            numbered([5, 3, 5, 9].into_iter()),
            (vec![3, 5, 9], vec![2, 1, 2, 3])
        );
        assert_eq!(numbered(std::iter::empty()), (vec![], vec![]));
    }
}
