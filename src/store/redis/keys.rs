//! The key layout and the slot maths.
//!
//! Every key starts with a prefix (`ysz` unless [`RedisOptions::prefix`] says
//! otherwise, which lets tests share one server) and contains one hash tag.
//! `P` is the prefix, `<id>` a merchant id (which never contains `{` or `}`).
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{<id>}:merchant` | string | merchant JSON |
//! | `P:{<id>}:records` | list | record JSON, in import order |
//! | `P:{<id>}:projection` | string | projection JSON |
//! | `P:{<id>}:override` | string | override JSON |
//! | `P:{<id>}:codes` | hash | serial → issued code JSON (as issued) |
//! | `P:{<id>}:code-status` | hash | serial → `active` / `superseded` / `revoked` |
//! | `P:{<t>}:ix:merchants` | set | ids of the merchants in slot `t` |
//! | `P:{<t>}:ix:dirty` | set | merchants in slot `t` marked for regrading |
//! | `P:{<t>}:ix:due` | sorted set | merchants in slot `t` by `next_change_at` (score `yyyymmdd`) |
//! | `P:{<t>}:ix:record-owner` | hash | cluster: record id → merchant, for record ids in slot `t` (record ids are global) |
//! | `P:{record-ids:<b>}` | set | standalone: the stored record ids with `CRC16(id) mod 64 = b` |
//! | `P:{<t>}:ix:code-owner` | hash | serial → merchant, for serials in slot `t` |
//! | `P:{serial}:next` | string | serial counter (`INCR`) |
//! | `P:{audit}:log` | list | audit entry JSON, oldest first |
//! | `P:{audit}:target:<target>` | list | the same entries, per target |
//! | `P:{changes}:stream` | stream | change notices (see [`ScanRead::changes_since`](crate::store::roles::ScanRead::changes_since)) |
//! | `P:{changes}:seq` | string | number of merchant changes noted so far (the last position) |
//! | `P:{changes}:feed` | stream | public changes, entry id `<position>-0` (see [`ScanRead::feed`](crate::store::roles::ScanRead::feed)) |
//! | `P:{changes}:feed-kept` | string | the position after which every public change is still kept |
//! | `P:{tokens}` | hash | API token id → token JSON |
//! | `P:{meta}:last-refresh` | string | when the last refresh completed (Unix seconds) |
//! | `P:{meta}:bulk` | hash | bulk imports running or killed: token → start (Unix seconds) |
//!
//! A merchant's keys are tagged with its id, so they all live in the slot
//! `CRC16(id) mod 16384`: merchants spread over all 16384 slots (and so over
//! every master of a cluster) exactly as plain keys would. The per-slot index
//! keys are tagged `{<t>}` where `<t>` is the *slot tag* of that slot: the
//! smallest decimal number whose CRC16 lands in it (see [`slot_tag`]; the
//! table is part of the layout and must never change). So a merchant's
//! regrade mark, due-index entry and membership live in the merchant's own
//! slot and change in the same atomic script as its data, even in a cluster;
//! finding the marked or due merchants reads the index keys of all 16384 slots
//! (a batch-job query, never on the scan path: one pipeline per master and
//! 1024 slots, routed by `CLUSTER SLOTS`). Standalone Redis has no slots to
//! respect, so there slot `s` uses the index keys of slot
//! `s mod 64` ([`STANDALONE_INDEX_SHARDS`]): a batch of 1,000 projections
//! clears its marks with 64 `SREM`s of many members instead of about 1,000
//! of one, and finding the marked merchants reads 64 keys of each kind. A
//! standalone store written before that is moved into the shards by the
//! first connect (`P:{meta}:layout` says it was done; see `migrate`). A
//! dataset therefore moves between standalone Redis and a cluster by
//! refreshing into the other store, as records do (below). A merchant
//! without a projection is always marked (upsert marks a new merchant, only
//! a projection clears a mark), so the marked set covers "never graded".
//! Record-id and serial indexes are bucketed the same way, by the slot of
//! the record id / serial.
//!
//! Record ids are kept differently in the two modes (standalone: 64 sets of
//! ids, claimed together with the record in one script; cluster: per-slot
//! owner hashes, claimed in a step of their own), so records move between a
//! standalone Redis and a cluster by importing them again.

use std::sync::LazyLock;

use jiff::civil::Date;

/// Redis Cluster's number of hash slots.
pub const SLOTS: u16 = 16384;

/// Standalone: how many sets hold the stored record ids (by CRC16 of the id).
/// Part of the key layout.
pub(super) const RECORD_ID_SETS: u16 = 64;
/// Standalone: how many index keys of each kind (regrade marks, due index,
/// merchants, owners) there are; slot `s` uses those of slot
/// `s mod STANDALONE_INDEX_SHARDS`. Part of the key layout.
pub(super) const STANDALONE_INDEX_SHARDS: u16 = 64;

/// CRC16/XMODEM, the hash of Redis Cluster's key slots.
pub(super) fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key whose hash tag is `tag`.
pub fn slot_of(tag: &str) -> u16 {
    crc16(tag.as_bytes()) % SLOTS
}

/// The slot tag of `slot`: the smallest decimal number whose CRC16 lands in
/// that slot. Part of the key layout; never change how it is computed.
pub fn slot_tag(slot: u16) -> &'static str {
    static TAGS: LazyLock<Vec<Box<str>>> = LazyLock::new(|| {
        let mut tags: Vec<Option<Box<str>>> = vec![None; SLOTS as usize];
        let mut missing = SLOTS as usize;
        let mut n: u64 = 0;
        while missing > 0 {
            let s = n.to_string();
            let t = &mut tags[slot_of(&s) as usize];
            if t.is_none() {
                *t = Some(s.into());
                missing -= 1;
            }
            n += 1;
        }
        tags.into_iter().map(|t| t.unwrap_or_default()).collect()
    });
    &TAGS[slot as usize]
}

/// Key names (see the module documentation).
pub(super) struct Keys {
    pub(super) prefix: String,
    /// A cluster keeps each slot's index entries in that slot's index keys;
    /// standalone Redis in [`STANDALONE_INDEX_SHARDS`] of them.
    pub(super) cluster: bool,
}

impl Keys {
    pub(super) fn merchant(&self, id: &str, what: &str) -> String {
        format!("{}:{{{id}}}:{what}", self.prefix)
    }

    /// The index key `what` that holds the entries of the keys in `slot`.
    pub(super) fn index(&self, slot: u16, what: &str) -> String {
        format!(
            "{}:{{{}}}:ix:{what}",
            self.prefix,
            slot_tag(self.index_slot(slot))
        )
    }

    /// Which index keys hold the entries of `slot`: its own in a cluster
    /// (so they change atomically with the merchant's keys); standalone,
    /// those of slot `slot mod` [`STANDALONE_INDEX_SHARDS`], so a batch's
    /// marks and due entries are a few commands of many members.
    pub(super) fn index_slot(&self, slot: u16) -> u16 {
        if self.cluster {
            slot
        } else {
            slot % STANDALONE_INDEX_SHARDS
        }
    }

    /// How many index slots there are: `0..index_slots()`.
    pub(super) fn index_slots(&self) -> u16 {
        if self.cluster {
            SLOTS
        } else {
            STANDALONE_INDEX_SHARDS
        }
    }

    pub(super) fn global(&self, tag: &str, what: &str) -> String {
        if what.is_empty() {
            format!("{}:{{{tag}}}", self.prefix)
        } else {
            format!("{}:{{{tag}}}:{what}", self.prefix)
        }
    }

    /// Standalone: the set of stored record ids numbered `bucket`.
    pub(super) fn record_ids(&self, bucket: u16) -> String {
        format!("{}:{{record-ids:{bucket}}}", self.prefix)
    }

    pub(super) fn audit_log(&self) -> String {
        self.global("audit", "log")
    }

    pub(super) fn audit_target(&self, target: &str) -> String {
        format!("{}:{{audit}}:target:{target}", self.prefix)
    }

    pub(super) fn changes(&self) -> String {
        self.global("changes", "stream")
    }

    pub(super) fn changes_seq(&self) -> String {
        self.global("changes", "seq")
    }

    /// The change log's keys, in the order the scripts take them: notices,
    /// the last position, the public feed, the feed's kept-after position.
    pub(super) fn change_log(&self) -> [String; 4] {
        [
            self.changes(),
            self.changes_seq(),
            self.global("changes", "feed"),
            self.global("changes", "feed-kept"),
        ]
    }
}

/// `next_change_at` as a sorted-set score: `yyyymmdd`, which orders as dates do.
pub(super) fn day_score(d: Date) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis_cluster_spec() {
        // The check value from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn every_slot_has_a_tag_that_lands_in_it() {
        for slot in 0..SLOTS {
            let tag = slot_tag(slot);
            assert!(!tag.is_empty());
            assert_eq!(slot_of(tag), slot, "tag {tag}");
        }
        // The table is part of the layout: a few fixed points.
        assert_eq!(slot_tag(slot_of("0")), "0");
        assert_eq!(slot_tag(slot_of("1")), "1");
    }

    #[test]
    fn day_scores_order_like_dates() {
        let a = day_score(jiff::civil::date(2025, 12, 31));
        let b = day_score(jiff::civil::date(2026, 1, 1));
        assert!(a < b);
        assert_eq!(b, 20260101);
    }
}
