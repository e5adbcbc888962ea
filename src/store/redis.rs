//! The Redis store: one Redis (`redis://HOST:PORT`) or a Redis Cluster
//! (`redis+cluster://HOST:PORT,...`) behind the same [`Store`] trait.
//!
//! Standalone uses one [`ConnectionManager`] built at start (multiplexed,
//! reconnecting, cloned per command); Cluster uses one [`ClusterConnection`]
//! (also multiplexed, one connection per node). Both get explicit connect and
//! response timeouts ([`RedisOptions`]).
//!
//! The scan read ([`Store::scan_view`]) on standalone Redis goes through a
//! connection of the calling thread when that thread runs a single-threaded
//! runtime (an HTTP worker): its reader task then runs on the same thread,
//! so a read costs no hand-over to another thread and back. Such a
//! connection is made on the thread's first read (if that fails, the thread
//! reads through the shared one for [`LOCAL_CONN_RETRY`] before trying
//! again), shares the circuit breaker below, and is dropped on a
//! connection-level error (the next read makes a new one).
//!
//! # When Redis is down (standalone)
//!
//! The standalone connection sits behind a circuit breaker. The first request
//! that fails at the connection level (refused, dropped, timed out) marks
//! Redis unreachable; from then on every request fails at once with
//! [`StoreError::Unavailable`] instead of waiting for the manager's
//! reconnection attempts (a scan miss answers 503 in about a millisecond,
//! cached views keep being served by the caller). One background probe sends
//! `PING` every [`RedisOptions::probe_interval`] through the manager, which
//! reconnects by itself; the first answer lets requests through again. Server
//! errors (a script error, `LOADING` while Redis reads its AOF) do not trip
//! the breaker.
//!
//! A hung Redis (stopped, its connections open, nothing answered) is found
//! by time: a request that gets no reply within the response timeout trips
//! the breaker, and the scan read has a much smaller budget of its own
//! ([`RedisOptions::scan_budget`], the service's 100 ms by default,
//! counted from the scan's start ([`super::SCAN_STARTED`]), connecting
//! included): it gives up at [`scan_read_limit`] of it (80 ms), so that the
//! scan's 503 is out within the budget, and trips the breaker (if the read
//! itself waited at least a quarter of that: a scan that was late before it
//! read says nothing about Redis). Redis is then known to
//! be down and every request fails at once until the probe's `PING` is
//! answered, which is the moment Redis continues: the probe's first `PING`
//! goes out at once, so a read that was merely slow (an overloaded machine)
//! costs a few milliseconds of refusals, not a probe interval. A write that
//! timed out on this side may still be applied when Redis continues: each
//! is one script or `MULTI`/`EXEC` with its audit entry, so it lands whole
//! or not at all (a script Redis did not know yet is not run at all:
//! `NOSCRIPT`), but the caller was told 503 and cannot know which; it
//! reads before it repeats (deploy/README.md says so to operators). In a
//! cluster the audit entry is a second write, which a timed-out write
//! never sends.
//! A Redis Cluster has no breaker (one master down must not refuse the
//! merchants of the others): there a scan read gives up after the same budget.
//!
//! # Connecting to a cluster that is settling
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
//! # Key layout
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
//! | `P:{changes}:stream` | stream | change notices (see [`Store::changes_since`]) |
//! | `P:{changes}:seq` | string | number of merchant changes noted so far |
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
//! first connect (`P:{meta}:layout` says it was done). A dataset therefore
//! moves between standalone Redis and a cluster by refreshing into the
//! other store, as records do (below). A merchant without a projection is
//! always marked (upsert marks a new merchant, only a projection clears a
//! mark), so the marked set covers "never graded". Record-id and serial indexes are bucketed the same
//! way, by the slot of the record id / serial.
//!
//! Record ids are kept differently in the two modes (standalone: 64 sets of
//! ids, claimed together with the record in one script; cluster: per-slot
//! owner hashes, claimed in a step of their own), so records move between a
//! standalone Redis and a cluster by importing them again.
//!
//! Needs Redis ≥ 6.2 (`XADD MINID`, `SMISMEMBER`).
//!
//! # Atomicity and ordering
//!
//! Multi-key writes are Lua scripts, each confined to one slot in a cluster.
//! Standalone Redis has no slot limit, so there the same scripts also take
//! the global audit and change keys: an override, issue or revocation with
//! its audit entry and change notice is then one atomic write, as in the
//! embedded store.
//!
//! - `upsert_merchants`: per merchant atomic (JSON compare, write, membership,
//!   regrade mark). Batches go as scripts of up to [`CHUNK`] merchants of one
//!   slot (cluster) or [`MERCHANT_CHUNK`] of any slots (standalone), many in
//!   flight at once on the multiplexed connection (the same effect as a
//!   pipeline); a script reads the chunk's merchants with one `MGET`, writes
//!   the changed ones with one `MSET` and adds them to each index key with
//!   one `SADD`.
//! - `add_records`: record ids are global; a record id already claimed (by
//!   this or another merchant) is a duplicate, and the first of several
//!   records with one id in a batch wins, as in the embedded store. Records
//!   of one merchant keep their batch order. Standalone: per record atomic,
//!   one script per chunk of [`RECORD_CHUNK`] records claims the new ids in
//!   the record-id sets (one `SMISMEMBER` and one `SADD` per set touched,
//!   not a command per record) and appends each record whose id was new to
//!   its merchant's list and marks the merchant; a claimed id is therefore
//!   always a stored record. Cluster: two steps, each idempotent, because
//!   the owner index of a record id lives in another slot than its
//!   merchant: first the claim (`HSETNX id merchant`; a claim by the same
//!   merchant counts as "maybe not stored yet"), then in the merchant's
//!   slot one script appends each
//!   freshly claimed record, and each record claimed earlier by the same
//!   merchant unless the merchant's list already holds a record with its id
//!   (a run killed between the steps). Two processes importing the same
//!   record at the same moment into a cluster may store it twice.
//! - Bulk mode ([`Store::begin_bulk_import`] with at least
//!   [`RedisOptions::bulk_min`] records expected, i.e. a large refresh): the
//!   writes above skip the per-item regrade mark, which costs a set insert
//!   per record. Instead the import first adds a token to `P:{meta}:bulk`,
//!   the process remembers the merchants it changed or gave new records,
//!   and [`Store::end_bulk_import`] marks them (`SADD` per slot) and then
//!   removes the token. If the process dies before that, the token stays,
//!   and the next `due_for_regrade` or bulk import marks *every* merchant
//!   (`SUNIONSTORE` of each slot's merchants into its marks) before removing
//!   it: a killed bulk import costs one full regrade, never a missed one.
//!   Like the embedded store's bulk mode it assumes one bulk importer at a
//!   time (a second one would take the first's token for a killed one).
//!   Standalone bulk imports also hold their records back: each batch's
//!   ids are checked against the stored ids (`SMISMEMBER` per id set), the
//!   others go to an external sort by (merchant, input order) on local
//!   disk (bounded memory, [`RedisOptions::sort_bytes`]) and their ids to
//!   one by id; at the end the records that repeat an earlier record's id
//!   of the import are dropped (the first one wins, as above) and the rest
//!   are stored merchant by merchant: one `RPUSH` of all of a merchant's
//!   new records, transactions (`MULTI`/`EXEC`) of about
//!   [`BULK_STORE_CHUNK`] records that claim the ids (`SADD` per id set)
//!   with the appends, no Lua. A kill before or during that leaves the
//!   token (every merchant due) and the records not yet stored are
//!   imported by the next run; a stored record's id is claimed, so never
//!   stored twice. When the store held no records before (a first load),
//!   the regrade that follows takes the records from the sort instead of
//!   reading the lists, if the store then holds exactly the import's
//!   records.
//! - `put_projections`: per merchant atomic (projection, clearing its regrade
//!   mark, due index). Standalone: one `MULTI`/`EXEC` per chunk of
//!   [`PROJECTION_CHUNK`] merchants of any slots, built (JSON and commands)
//!   on the worker pool while earlier chunks are sent: one `MSET` of the
//!   projections, then per index slot one `SREM` of the marks and one `ZADD`
//!   and one `ZREM` in the due index (plain commands: no Lua, members
//!   grouped by the client), then a small script that writes the chunk's
//!   change notice (the whole chunk is one atomic write; of several
//!   projections of one merchant in a batch the last one counts). Cluster:
//!   scripts of up to [`CHUNK`] merchants of one slot; the change notice for
//!   every merchant whose projection landed is written right after (also
//!   when another slot of the batch failed); a crash in between leaves
//!   replicas with the old view until the cache's safety TTL.
//! - `set_override`, `issue_code` (supersede + insert), `revoke_code`: atomic
//!   in the merchant's slot. Standalone: audit entry and change notice in the
//!   same script. Cluster: the audit entry is appended right after the merchant
//!   write commits, then the change notice; if the process dies or the audit
//!   slot's node fails in between, the change stands without its audit entry
//!   and the caller sees an error. `issue_code` claims the serial in the
//!   serial index first (a serial of another merchant is a conflict).
//! - `append_audit`: one MULTI/EXEC in the `{audit}` slot (log + per-target list).
//! - `next_serial`: `INCR`, unique and increasing.
//!
//! # Cross-replica coherence
//!
//! Every projection, code and revocation write appends the changed merchant
//! ids to the stream `P:{changes}:stream` with the explicit entry id
//! `N-0`, where `N` is the running count of changed merchants (`INCRBY` in the
//! same script), and `n` (how many ids) and `m` (the ids, comma-separated) as
//! fields. The cursor of [`Store::changes_since`] is that count: a poll is one
//! `GET` when nothing changed, else one `XRANGE`. The stream keeps (about)
//! the last [`CHANGES_KEPT`] merchant changes (`XADD MINID ~ N-KEPT`, so an
//! entry of 5,000 ids counts as 5,000). A reader whose cursor fell out of it,
//! or that is more than [`RedisOptions::max_changes_listed`] changes behind,
//! or that sees the count go backwards (Redis lost its data), is told to drop
//! everything. Polling rather than pub/sub: a missed message cannot leave a
//! replica stale, and the 500 ms poll of `startup.rs` meets the 1 s target.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, RedisWrite, Script, Value,
};
use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use jiff::civil::Date;
use rayon::prelude::*;

use super::sort::{remove_stale_sort_dirs, SortRow, Sorted, Sorter};
use super::{
    ApiToken, AuditEntry, AuditFilter, CodeStatus, GradingInput, IssuedCode, RecordsAdded,
    ScanRead, Store, StoreError, StoreResult, StoredProjection,
};
use crate::domain::{Grade, MerchantId};
use crate::grading::{Override, Projection};
use crate::records::{Merchant, Record};

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "ysz";
/// Redis Cluster's number of hash slots.
pub const SLOTS: u16 = 16384;
/// Items per script call (merchants, records or projections).
pub const CHUNK: usize = 200;
/// Records per standalone `add_records` script (its id sets are read and
/// written with one command each per script, so bigger chunks mean fewer).
const RECORD_CHUNK: usize = 1000;
/// Merchants per standalone `upsert_merchants` script.
const MERCHANT_CHUNK: usize = 1000;
/// Projections per standalone `put_projections` script.
const PROJECTION_CHUNK: usize = 1000;
/// Standalone: how many sets hold the stored record ids (by CRC16 of the id).
/// Part of the key layout.
const RECORD_ID_SETS: u16 = 64;
/// Standalone: how many index keys of each kind (regrade marks, due index,
/// merchants, owners) there are; slot `s` uses those of slot
/// `s mod STANDALONE_INDEX_SHARDS`. Part of the key layout.
const STANDALONE_INDEX_SHARDS: u16 = 64;
/// Requests in flight at once for a batch on the multiplexed connection.
const PARALLEL: usize = 64;
/// About how many items the requests of a batch in flight carry at most:
/// enough to keep Redis busy, few enough that a request queued behind the
/// others gets its answer well within the response timeout.
const ITEMS_IN_FLIGHT: usize = 8000;

/// Requests in flight at once for chunks of `chunk` items.
fn in_flight(chunk: usize) -> usize {
    (ITEMS_IN_FLIGHT / chunk.max(1)).clamp(2, PARALLEL)
}
/// Standalone batches are split into this many lanes by slot; each lane runs
/// its chunks in order, lanes run concurrently.
const STANDALONE_LANES: u16 = 32;
/// Above this many pending changes a reader is told to drop its whole cache.
pub const MAX_CHANGES_LISTED: u64 = 50_000;
/// Merchant changes kept (approximately) in the change stream for slow readers;
/// twice the default [`MAX_CHANGES_LISTED`], since a reader further behind
/// drops everything anyway.
pub const CHANGES_KEPT: u64 = 100_000;
/// Audit entries read per round trip when walking the log.
const AUDIT_PAGE: isize = 256;
/// An import expected to add at least this many records runs in bulk mode.
pub const BULK_MIN_RECORDS: u64 = 100_000;

/// How to reach Redis and name the keys.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every key (`<prefix>:{tag}:...`). Letters, digits and
    /// `_ - . :` only; lets several stores (e.g. tests) share one server.
    pub prefix: String,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one reply; a request past it fails as unavailable.
    pub response_timeout: Duration,
    /// Reconnection attempts per failure before a request gives up.
    pub retries: u32,
    /// A reader more than this many changes behind is told to drop its whole
    /// cache ([`Store::changes_since`] returns `None`).
    pub max_changes_listed: u64,
    /// About how many merchant changes the change stream keeps.
    pub changes_kept: u64,
    /// While Redis is unreachable, how often the background probe tries it
    /// (standalone; see the module documentation).
    pub probe_interval: Duration,
    /// The most a scan may wait for its store read, connecting included
    /// (see the module documentation). Default 2 s; the service's is its
    /// setting `store_budget_ms`, by default [`SCAN_BUDGET`].
    pub scan_budget: Duration,
    /// Redis Cluster: how long connecting keeps trying while the cluster
    /// settles (see the module documentation; default [`CONNECT_WAIT`]).
    pub connect_wait: Duration,
    /// An import expected to add at least this many records runs in bulk
    /// mode (see the module documentation; default [`BULK_MIN_RECORDS`],
    /// or `YSZ_REDIS_BULK_MIN`).
    pub bulk_min: u64,
    /// Memory a standalone bulk import may take to sort its records by
    /// merchant before storing them; beyond it sorted runs go to files under
    /// the system's temporary directory (default [`SORT_BYTES`], or
    /// `YSZ_REDIS_SORT_BYTES`).
    pub sort_bytes: usize,
}

/// Default [`RedisOptions::sort_bytes`].
pub const SORT_BYTES: usize = 256 << 20;
/// The service's default scan budget (`store_budget_ms`): the bound it
/// promises for a scan's 503 while Redis hangs.
pub const SCAN_BUDGET: Duration = Duration::from_millis(100);
/// Default [`RedisOptions::connect_wait`].
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// How long a scan's store read may take within a scan budget of `budget`:
/// the budget less a fifth of it, at most 20 ms, kept for everything else
/// the scan does (verifying, rendering the 503, writing it out), so that
/// the answer is out within the budget.
pub fn scan_read_limit(budget: Duration) -> Duration {
    budget - (budget / 5).min(Duration::from_millis(20))
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            retries: 3,
            max_changes_listed: MAX_CHANGES_LISTED,
            changes_kept: CHANGES_KEPT,
            probe_interval: Duration::from_millis(250),
            // The response timeout: a library caller (a test, the batch
            // job) has no scan to answer; the service sets its own.
            scan_budget: Duration::from_secs(2),
            connect_wait: CONNECT_WAIT,
            bulk_min: std::env::var("YSZ_REDIS_BULK_MIN")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(BULK_MIN_RECORDS),
            sort_bytes: std::env::var("YSZ_REDIS_SORT_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SORT_BYTES),
        }
    }
}

/// Redis-backed [`Store`] (standalone or cluster).
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// Standalone: what per-thread read connections are made from.
    local: Option<Arc<LocalConns>>,
    keys: Arc<Keys>,
    cluster: bool,
    /// [`scan_read_limit`] of [`RedisOptions::scan_budget`].
    scan_read_limit: Duration,
    max_changes_listed: u64,
    changes_kept: u64,
    bulk_min: u64,
    sort_bytes: usize,
    /// The bulk import this process runs, if any (see the module documentation).
    bulk: Arc<std::sync::Mutex<Option<Bulk>>>,
    /// What the last bulk import left for the regrade, if anything.
    presorted: Arc<std::sync::Mutex<Option<Presorted>>>,
}

/// A bulk import in progress in this process: its token in the
/// `P:{meta}:bulk` hash, and the merchants whose regrade mark it owes.
struct Bulk {
    token: String,
    touched: HashSet<String>,
    /// Standalone: the import's new records, stored at its end.
    records: Option<BulkRecords>,
}

/// The records of a standalone bulk import, held back until its end so
/// that each merchant's records are appended with one `RPUSH`: the ids are
/// checked against the stored ids as they arrive, the records whose id is
/// not stored go to an external sort by (merchant, input order) and their
/// ids to one by id, and [`Store::end_bulk_import`] first finds the records
/// that repeat an earlier record's id within the import (adjacent in the
/// id sort), then stores the others merchant by merchant, each
/// `MULTI`/`EXEC` claiming its records' ids in the record-id sets together
/// with the appends. A process killed before that has stored nothing but
/// leaves its token: the next run marks every merchant and imports the
/// records again. Memory stays within [`RedisOptions::sort_bytes`].
struct BulkRecords {
    sorter: Sorter,
    /// (id key, input order) → merchant and id: finds repeated ids.
    ids: Sorter,
    /// Input order of the next record.
    seq: i64,
    /// How many records went to the sort.
    accepted: u64,
    /// Whether the store held no record when the import began: then the
    /// sorted records are kept for the regrade ([`Presorted`]).
    first_load: bool,
}

/// Every stored record sorted by merchant (in import order within one),
/// left by a standalone bulk import into a store without records, so that
/// the regrade that follows takes each merchant's records from the sort
/// (merged once more) instead of reading every list back and parsing its
/// reply. Only an optimisation, held in this process: it is used only if
/// the store still holds exactly `records` records (then they are these,
/// all of them, since a record id in the id sets is a stored record and
/// the store had none before) — otherwise, or in a re-run after a kill,
/// the regrade reads the lists.
struct Presorted {
    rows: Sorted,
    records: u64,
}

/// Records per `MULTI`/`EXEC` when a bulk import stores its sorted records
/// (a merchant's records are never split between two).
const BULK_STORE_CHUNK: usize = 4000;
/// Such transactions in flight at once.
const BULK_STORE_IN_FLIGHT: usize = 8;
/// Memory for the sort of the records that repeat an id within a bulk
/// import (normally none).
const REPEATS_SORT_BYTES: usize = 16 << 20;
/// Merchant ids per pipeline of regrade marks ([`RedisStore::mark_dirty`]).
const MARK_CHUNK: usize = 20_000;

/// How to make a read connection for the calling thread (standalone only;
/// see the module documentation).
struct LocalConns {
    /// Unique per store in this process, never reused: tells apart the
    /// connections of several stores used from one thread (tests).
    id: u64,
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
}

thread_local! {
    /// This thread's read connections by store id, or when making one last
    /// failed; a few at most.
    static LOCAL_CONNS: std::cell::RefCell<Vec<(u64, Result<Guarded, std::time::Instant>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Stores with per-thread read connections a thread keeps at once.
const LOCAL_CONNS_KEPT: usize = 4;
/// After failing to make a thread's read connection, reads use the shared
/// one this long before the thread tries again (so a Redis refusing new
/// connections does not cost every read a connect attempt).
const LOCAL_CONN_RETRY: Duration = Duration::from_secs(5);

/// The two connection kinds behind one [`ConnectionLike`].
#[derive(Clone)]
enum Conn {
    Single(Guarded),
    Cluster(ClusterConnection),
}

/// The standalone connection manager behind a circuit breaker (see the
/// module documentation).
#[derive(Clone)]
struct Guarded {
    manager: ConnectionManager,
    breaker: Arc<Breaker>,
}

struct Breaker {
    /// Whether requests go to Redis (`false` after a connection failure,
    /// until the probe gets an answer).
    up: AtomicBool,
    /// Whether a probe task is running.
    probing: AtomicBool,
    probe_interval: Duration,
    /// Limit for one probe `PING` (reconnection included).
    probe_timeout: Duration,
}

impl Guarded {
    fn new(manager: ConnectionManager, opts: &RedisOptions) -> Self {
        Self {
            manager,
            breaker: Arc::new(Breaker {
                up: AtomicBool::new(true),
                probing: AtomicBool::new(false),
                probe_interval: opts.probe_interval,
                probe_timeout: opts.connect_timeout + opts.response_timeout,
            }),
        }
    }

    /// Refuses at once while Redis is known to be unreachable.
    fn admit(&self) -> RedisResult<()> {
        if self.breaker.up.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(RedisError::from((
                ErrorKind::Io,
                "Redis is unreachable; reconnecting in the background",
            )))
        }
    }

    /// Trips the breaker on a connection-level failure (a reply past the
    /// response timeout is one).
    fn observe<T>(&self, result: &RedisResult<T>) {
        let Err(e) = result else { return };
        if e.is_io_error() || e.is_unrecoverable_error() {
            self.trip(e);
        }
    }

    /// Marks Redis unreachable and starts the probe, if not yet done.
    fn trip(&self, why: &dyn std::fmt::Display) {
        // No runtime to probe from: keep sending requests (each one then
        // waits for the manager's own reconnection).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.breaker.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %why, "Redis unreachable: failing store requests at once until it answers again");
        }
        if !self.breaker.probing.swap(true, Ordering::AcqRel) {
            runtime.spawn(probe(Arc::downgrade(&self.breaker), self.manager.clone()));
        }
    }
}

/// Pings Redis until it answers, then lets requests through again. Ends
/// early when the store is gone.
async fn probe(breaker: std::sync::Weak<Breaker>, mut manager: ConnectionManager) {
    let started = std::time::Instant::now();
    let mut warned = started;
    let mut first = true;
    loop {
        let (interval, limit) = match breaker.upgrade() {
            Some(b) => (b.probe_interval, b.probe_timeout),
            None => return,
        };
        // The first at once: a hung Redis answers it the moment it
        // continues, a merely slow one at once.
        if !std::mem::take(&mut first) {
            tokio::time::sleep(interval).await;
        }
        let ping = ::redis::cmd("PING");
        let answered = matches!(
            tokio::time::timeout(limit, ping.query_async::<()>(&mut manager)).await,
            Ok(Ok(()))
        );
        let Some(breaker) = breaker.upgrade() else {
            return;
        };
        if answered {
            // In this order: a failure right after `up` must find no probe
            // running, so that it starts one.
            breaker.probing.store(false, Ordering::Release);
            breaker.up.store(true, Ordering::Release);
            tracing::info!(
                down_ms = started.elapsed().as_millis() as u64,
                "Redis answers again"
            );
            return;
        }
        if warned.elapsed() > Duration::from_secs(60) {
            tracing::warn!(
                down_s = started.elapsed().as_secs(),
                "Redis still unreachable"
            );
            warned = std::time::Instant::now();
        }
    }
}

impl ConnectionLike for Guarded {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.admit()?;
            let result = self.manager.send_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.admit()?;
            let result = self
                .manager
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.manager.get_db()
    }
}

impl Conn {
    /// Marks Redis unreachable after a request that got no answer in time
    /// (standalone; a cluster has no breaker).
    fn trip(&self, why: &dyn std::fmt::Display) {
        if let Conn::Single(g) = self {
            g.trip(why);
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The error of a request that got no answer in time.
fn io_timeout() -> RedisError {
    std::io::Error::from(std::io::ErrorKind::TimedOut).into()
}

fn redis_err(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// The distinct values of `items` in ascending order, and for each item
/// its place among them counted from 1: how a script finds an item's key
/// among the keys passed once per distinct value.
fn numbered(items: impl Iterator<Item = u16>) -> (Vec<u16>, Vec<usize>) {
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

/// Standalone: one transaction that writes `projections` (any slots), in
/// order: an `MSET` of their JSON, their marks cleared and due entries set
/// or removed with one `SREM`, `ZADD` and `ZREM` per index slot (of several
/// projections of one merchant, the last one's), and the change notice
/// ([`NOTE_CHANGES_JOINED`]).
fn projections_transaction<'a>(
    keys: &Keys,
    kept: u64,
    projections: impl ExactSizeIterator<Item = &'a Projection>,
) -> StoreResult<Pipeline> {
    #[derive(Default)]
    struct Group<'a> {
        clear: Vec<&'a str>,
        due: Vec<(i64, &'a str)>,
        not_due: Vec<&'a str>,
    }
    // Room for the usual projection, so the buffer is not grown and copied
    // as the chunk is written.
    let mut mset = Cmd::with_capacity(1 + 2 * projections.len(), 2048 * projections.len());
    mset.arg("MSET");
    let mut last: HashMap<&str, Option<i64>> = HashMap::with_capacity(projections.len());
    let mut json = Vec::with_capacity(4096);
    let mut ids = String::new();
    let mut n = 0usize;
    for p in projections {
        let id = p.merchant.id.as_str();
        mset.arg(keys.merchant(id, "projection"));
        // One buffer for the chunk's JSON: no string per projection.
        json.clear();
        serde_json::to_writer(&mut json, p).map_err(corrupt)?;
        mset.write_arg(&json);
        last.insert(id, p.next_change_at.map(day_score));
        if n > 0 {
            ids.push(',');
        }
        ids.push_str(id);
        n += 1;
    }
    let mut groups: BTreeMap<u16, Group> = BTreeMap::new();
    for (id, score) in last {
        let g = groups.entry(keys.index_slot(slot_of(id))).or_default();
        g.clear.push(id);
        match score {
            Some(s) => g.due.push((s, id)),
            None => g.not_due.push(id),
        }
    }
    // One transaction: the projections, their marks and due entries (plain
    // commands of many members each, no Lua in between) and the change
    // notice land together.
    let mut pipe = ::redis::pipe();
    pipe.atomic().add_command(mset).ignore();
    for (&slot, g) in &groups {
        if !g.clear.is_empty() {
            pipe.cmd("SREM")
                .arg(keys.index(slot, "dirty"))
                .arg(&g.clear)
                .ignore();
        }
        let due = keys.index(slot, "due");
        if !g.due.is_empty() {
            let cmd = pipe.cmd("ZADD").arg(&due);
            for (score, id) in &g.due {
                cmd.arg(*score).arg(*id);
            }
            cmd.ignore();
        }
        if !g.not_due.is_empty() {
            pipe.cmd("ZREM").arg(&due).arg(&g.not_due).ignore();
        }
    }
    pipe.cmd("EVAL")
        .arg(NOTE_CHANGES_JOINED)
        .arg(2)
        .arg(keys.changes())
        .arg(keys.changes_seq())
        .arg(kept)
        .arg(n)
        .arg(ids);
    Ok(pipe)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

fn merchant_id(s: &str) -> StoreResult<MerchantId> {
    MerchantId::parse(s).map_err(corrupt)
}

/// CRC16/XMODEM, the hash of Redis Cluster's key slots.
fn crc16(data: &[u8]) -> u16 {
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
struct Keys {
    prefix: String,
    /// A cluster keeps each slot's index entries in that slot's index keys;
    /// standalone Redis in [`STANDALONE_INDEX_SHARDS`] of them.
    cluster: bool,
}

impl Keys {
    fn merchant(&self, id: &str, what: &str) -> String {
        format!("{}:{{{id}}}:{what}", self.prefix)
    }

    /// The index key `what` that holds the entries of the keys in `slot`.
    fn index(&self, slot: u16, what: &str) -> String {
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
    fn index_slot(&self, slot: u16) -> u16 {
        if self.cluster {
            slot
        } else {
            slot % STANDALONE_INDEX_SHARDS
        }
    }

    /// How many index slots there are: `0..index_slots()`.
    fn index_slots(&self) -> u16 {
        if self.cluster {
            SLOTS
        } else {
            STANDALONE_INDEX_SHARDS
        }
    }

    fn global(&self, tag: &str, what: &str) -> String {
        if what.is_empty() {
            format!("{}:{{{tag}}}", self.prefix)
        } else {
            format!("{}:{{{tag}}}:{what}", self.prefix)
        }
    }

    /// Standalone: the set of stored record ids numbered `bucket`.
    fn record_ids(&self, bucket: u16) -> String {
        format!("{}:{{record-ids:{bucket}}}", self.prefix)
    }

    fn audit_log(&self) -> String {
        self.global("audit", "log")
    }

    fn audit_target(&self, target: &str) -> String {
        format!("{}:{{audit}}:target:{target}", self.prefix)
    }

    fn changes(&self) -> String {
        self.global("changes", "stream")
    }

    fn changes_seq(&self) -> String {
        self.global("changes", "seq")
    }
}

/// `next_change_at` as a sorted-set score: `yyyymmdd`, which orders as dates do.
fn day_score(d: Date) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

/// Lua shared by the scripts: the change notice and the audit append.
macro_rules! lua {
    ($body:literal) => {
        concat!(
            r#"
local function note_joined(stream, seq, n, joined, keep)
  if n == 0 then return end
  local total = redis.call('INCRBY', seq, n)
  local oldest = math.max(total - tonumber(keep), 0)
  redis.call('XADD', stream, 'MINID', '~', string.format('%d', oldest), string.format('%d-0', total),
    'n', n, 'm', joined)
end
local function note_changes(stream, seq, ids, keep)
  note_joined(stream, seq, #ids, table.concat(ids, ','), keep)
end
local function audit(log, by_target, entry)
  redis.call('RPUSH', log, entry)
  redis.call('RPUSH', by_target, entry)
end
local function set_projection(pkey, dirty, due, id, json, score)
  redis.call('SET', pkey, json)
  redis.call('SREM', dirty, id)
  if score == '' then
    redis.call('ZREM', due, id)
  else
    redis.call('ZADD', due, score, id)
  end
end
"#,
            $body
        )
    };
}

/// Standalone `put_projections`: the chunk's change notice, last in its
/// `MULTI` (the stream entry's id comes from the counter, so it takes a
/// script). Sent with `EVAL` (Redis caches it by its hash), so a Redis that
/// restarted in between cannot answer `NOSCRIPT` after the projections
/// already applied. KEYS: the changes stream and counter. ARGV: changes
/// kept, n, the n changed ids joined by `,`.
const NOTE_CHANGES_JOINED: &str = lua!(
    r#"
note_joined(KEYS[1], KEYS[2], tonumber(ARGV[2]), ARGV[3], ARGV[1])
return tonumber(ARGV[2])
"#
);

struct Scripts {
    move_index_keys: Script,
    upsert_merchants: Script,
    claim: Script,
    add_records: Script,
    store_records: Script,
    put_projections: Script,
    set_override: Script,
    issue_code: Script,
    revoke_code: Script,
    note_changes: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // KEYS: pairs (old index key, the shard key that takes its entries).
    // Merges each old key into its shard (sets: union; sorted sets: union,
    // the later day of a member in both; hashes: fields the shard lacks)
    // and deletes it. Returns how many old keys it moved.
    move_index_keys: Script::new(
        r#"
local moved = 0
for i = 1, #KEYS, 2 do
  local old, new = KEYS[i], KEYS[i + 1]
  local t = redis.call('TYPE', old)['ok']
  if t == 'set' then
    redis.call('SUNIONSTORE', new, new, old)
  elseif t == 'zset' then
    redis.call('ZUNIONSTORE', new, 2, new, old, 'AGGREGATE', 'MAX')
  elseif t == 'hash' then
    local kv = redis.call('HGETALL', old)
    for j = 1, #kv, 2 do
      redis.call('HSETNX', new, kv[j], kv[j + 1])
    end
  end
  if t ~= 'none' then
    redis.call('DEL', old)
    moved = moved + 1
  end
end
return moved
"#,
    ),
    // KEYS: the n merchant keys, then per index group (1..g) its
    // ix:merchants and, if marking, its ix:dirty. ARGV: '1' to mark changed
    // merchants for regrading (not in bulk mode), n, g, then per merchant:
    // id, json, group. One `MGET`, one `MSET` and a `SADD` per group key
    // instead of commands per merchant. Returns one '1' (changed) or '0'
    // per merchant; of one merchant twice, each compares with the one
    // before it.
    upsert_merchants: Script::new(lua!(
        r#"
local mark = ARGV[1] == '1'
local n, g = tonumber(ARGV[2]), tonumber(ARGV[3])
local per = mark and 2 or 1
local old = redis.call('MGET', unpack(KEYS, 1, n))
local cur, set, members, out = {}, {}, {}, {}
for s = 1, g do
  members[s] = {}
end
for i = 1, n do
  local a = 1 + 3 * i
  local id, json, k = ARGV[a], ARGV[a + 1], KEYS[i]
  local before = cur[k]
  if before == nil then
    before = old[i]
  end
  if before ~= json then
    cur[k] = json
    set[#set + 1] = k
    set[#set + 1] = json
    local m = members[tonumber(ARGV[a + 2])]
    m[#m + 1] = id
    out[i] = '1'
  else
    out[i] = '0'
  end
end
if #set > 0 then
  redis.call('MSET', unpack(set))
end
for s = 1, g do
  local m = members[s]
  if #m > 0 then
    local k = n + per * (s - 1)
    redis.call('SADD', KEYS[k + 1], unpack(m))
    if mark then
      redis.call('SADD', KEYS[k + 2], unpack(m))
    end
  end
end
return table.concat(out)
"#
    )),
    // KEYS per item: the owner hash. ARGV per item: field, owner.
    // 1: claimed now; 2: already claimed by the same owner; 0: another owner.
    claim: Script::new(lua!(
        r#"
local out = {}
for i = 1, #KEYS do
  local field, owner = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('HSETNX', KEYS[i], field, owner) == 1 then
    out[i] = 1
  elseif redis.call('HGET', KEYS[i], field) == owner then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
"#
    )),
    // Standalone: claim and store in one step. ARGV[1]: '1' to mark,
    // ARGV[2]: b, the number of record-id set keys; then per record: the
    // index (1..b) of its id's set, id, merchant, json. KEYS: the b id sets,
    // then per record: records, then ix:dirty if marking. Ids new to their
    // set are claimed with one SMISMEMBER and one SADD per set, then each
    // claimed record is appended to its merchant's list in batch order.
    // Returns one '1' (stored) or '0' (duplicate id) per record.
    add_records: Script::new(lua!(
        r#"
local mark = ARGV[1] == '1'
local b = tonumber(ARGV[2])
local nk = mark and 2 or 1
local n = (#ARGV - 2) / 4
local groups = {}
for i = 1, n do
  local s = tonumber(ARGV[4 * i - 1])
  local g = groups[s]
  if not g then
    g = {}
    groups[s] = g
  end
  g[#g + 1] = i
end
local fresh = {}
for s, g in pairs(groups) do
  local ids = {}
  for j, i in ipairs(g) do
    ids[j] = ARGV[4 * i]
  end
  local seen = redis.call('SMISMEMBER', KEYS[s], unpack(ids))
  local new = {}
  for j, i in ipairs(g) do
    if seen[j] == 0 then
      fresh[i] = true
      new[#new + 1] = ids[j]
    end
  end
  if #new > 0 then
    redis.call('SADD', KEYS[s], unpack(new))
  end
end
local out = {}
for i = 1, n do
  if fresh[i] then
    local k = b + nk * (i - 1)
    redis.call('RPUSH', KEYS[k + 1], ARGV[4 * i + 2])
    if mark then
      redis.call('SADD', KEYS[k + 2], ARGV[4 * i + 1])
    end
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
"#
    )),
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
    store_records: Script::new(lua!(
        r#"
local mark = ARGV[1] == '1'
local nk = mark and 2 or 1
local head = '{"id":"'
local out = {}
for i = 1, (#ARGV - 1) / 5 do
  local k, a = nk * (i - 1), 5 * i - 3
  local stored = false
  if ARGV[a] ~= '1' then
    local prefix, id = ARGV[a + 3], ARGV[a + 4]
    for _, e in ipairs(redis.call('LRANGE', KEYS[k + 1], 0, -1)) do
      if string.sub(e, 1, #prefix) == prefix then
        stored = true
        break
      end
      if string.sub(e, 1, #head) ~= head or not string.find(e, '^[^"\\]*"', #head + 1) then
        local ok, v = pcall(cjson.decode, e)
        if ok and type(v) == 'table' and v.id == id then
          stored = true
          break
        end
      end
    end
  end
  if stored then
    out[i] = '0'
  else
    redis.call('RPUSH', KEYS[k + 1], ARGV[a + 2])
    if mark then
      redis.call('SADD', KEYS[k + 2], ARGV[a + 1])
    end
    out[i] = '1'
  end
end
return table.concat(out)
"#
    )),
    // ARGV[1] = n; per projection: id, json, score ('' for none); then keep.
    // KEYS per projection: projection, ix:dirty, ix:due; then (standalone)
    // changes stream, changes seq.
    put_projections: Script::new(lua!(
        r#"
local n = tonumber(ARGV[1])
local ids = {}
for i = 1, n do
  local k, a = 3 * (i - 1), 1 + 3 * (i - 1)
  set_projection(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  ids[i] = ARGV[a + 1]
end
if #KEYS > 3 * n then
  note_changes(KEYS[3 * n + 1], KEYS[3 * n + 2], ids, ARGV[3 * n + 2])
end
return n
"#
    )),
    // KEYS: override, projection, ix:dirty, ix:due, then (standalone) audit log,
    // audit by target, changes stream, changes seq.
    // ARGV: override json ('' clears), id, projection json, score, audit json, keep.
    set_override: Script::new(lua!(
        r#"
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
set_projection(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4])
if #KEYS > 4 then
  audit(KEYS[5], KEYS[6], ARGV[5])
  note_changes(KEYS[7], KEYS[8], {ARGV[2]}, ARGV[6])
end
return 1
"#
    )),
    // KEYS: codes, code-status, then (standalone) audit log, audit by target,
    // changes stream, changes seq.
    // ARGV: serial, code json, status, merchant id, audit json ('' for none), keep.
    issue_code: Script::new(lua!(
        r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
local st = redis.call('HGETALL', KEYS[2])
for i = 1, #st, 2 do
  if st[i + 1] == 'active' then
    redis.call('HSET', KEYS[2], st[i], 'superseded')
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if #KEYS > 2 then
  if ARGV[5] ~= '' then
    audit(KEYS[3], KEYS[4], ARGV[5])
  end
  note_changes(KEYS[5], KEYS[6], {ARGV[4]}, ARGV[6])
end
return 1
"#
    )),
    // KEYS: codes, code-status, then (standalone) audit log, audit by target,
    // changes stream, changes seq. ARGV: serial, merchant id, audit json, keep.
    // Returns nil for an unknown serial, else {code json, status before}.
    // A code already revoked is left alone: no write, no audit entry.
    revoke_code: Script::new(lua!(
        r#"
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return false
end
local before = redis.call('HGET', KEYS[2], ARGV[1]) or ''
local was = before
if was == '' then
  was = cjson.decode(json)['status']
end
if was == 'revoked' then
  return {json, before}
end
redis.call('HSET', KEYS[2], ARGV[1], 'revoked')
if #KEYS > 2 then
  audit(KEYS[3], KEYS[4], ARGV[3])
  note_changes(KEYS[5], KEYS[6], {ARGV[2]}, ARGV[4])
end
return {json, before}
"#
    )),
    // KEYS: changes stream, changes seq. ARGV: keep, ids...
    note_changes: Script::new(lua!(
        r#"
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
note_changes(KEYS[1], KEYS[2], ids, ARGV[1])
return 1
"#
    )),
});

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

/// What a batch run over lanes achieved: the results that landed (by input
/// index) and the first failure, if any.
struct Outcome<R> {
    done: Vec<(usize, R)>,
    error: Option<StoreError>,
}

impl<R> Outcome<R> {
    /// All results in input order, or the failure.
    fn into_result(self) -> StoreResult<Vec<R>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut done = self.done;
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, r)| r).collect())
    }
}

/// Checks a key prefix: letters, digits and `_ - . :`, 1–64 characters.
fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("Redis key prefix `{prefix}`: expected 1–64 of A-Z a-z 0-9 _ - . :")
    }
}

impl RedisStore {
    /// Connects to one Redis (`redis://HOST:PORT`).
    pub async fn connect(url: &str, opts: RedisOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        check_prefix(&opts.prefix)?;
        let shown = crate::settings::redact_url(url);
        let client = ::redis::Client::open(url).with_context(|| format!("Redis `{shown}`"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            .set_number_of_retries(opts.retries as usize)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .with_context(|| format!("cannot connect to Redis at {shown}"))?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let store = Self {
            conn: Conn::Single(Guarded::new(manager, &opts)),
            local: Some(Arc::new(LocalConns {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                client,
                config,
                connect_timeout: opts.connect_timeout,
            })),
            keys: Arc::new(Keys {
                prefix: opts.prefix,
                cluster: false,
            }),
            cluster: false,
            scan_read_limit: scan_read_limit(opts.scan_budget),
            max_changes_listed: opts.max_changes_listed,
            changes_kept: opts.changes_kept,
            bulk_min: opts.bulk_min,
            sort_bytes: opts.sort_bytes,
            bulk: Arc::default(),
            presorted: Arc::default(),
        };
        store
            .ping()
            .await
            .with_context(|| format!("Redis at {shown} does not answer"))?;
        store.shard_index_keys().await.with_context(|| {
            format!("cannot bring the store in Redis at {shown} to the current key layout")
        })?;
        Ok(store)
    }

    /// Standalone: moves the entries of index keys written before they were
    /// sharded (one per slot) into the [`STANDALONE_INDEX_SHARDS`] keys
    /// that hold them now, once per store (`P:{meta}:layout` records it).
    /// Idempotent, and each batch of slots moves atomically, so processes
    /// that connect at the same time, or one killed halfway, leave nothing
    /// behind.
    async fn shard_index_keys(&self) -> StoreResult<()> {
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
        let shown = crate::settings::redact_url(&format!("redis+cluster://{}", nodes.join(",")));
        let client = ::redis::cluster::ClusterClient::builder(urls)
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.response_timeout)
            .retries(opts.retries)
            .build()
            .with_context(|| format!("Redis Cluster `{shown}`"))?;
        let conn = settled_cluster(&client, &opts)
            .await
            .with_context(|| format!("cannot connect to Redis Cluster at {shown}"))?;
        let store = Self {
            conn: Conn::Cluster(conn),
            local: None,
            keys: Arc::new(Keys {
                prefix: opts.prefix,
                cluster: true,
            }),
            cluster: true,
            scan_read_limit: scan_read_limit(opts.scan_budget),
            max_changes_listed: opts.max_changes_listed,
            changes_kept: opts.changes_kept,
            bulk_min: opts.bulk_min,
            sort_bytes: opts.sort_bytes,
            bulk: Arc::default(),
            presorted: Arc::default(),
        };
        store
            .ping()
            .await
            .with_context(|| format!("Redis Cluster at {shown} does not answer"))?;
        Ok(store)
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The Redis key of `what` (`merchant`, `records`, `projection`, ...) of a merchant.
    pub fn merchant_key(&self, id: &MerchantId, what: &str) -> String {
        self.keys.merchant(id.as_str(), what)
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// The connection for a latency-bound read: this thread's own on a
    /// single-threaded runtime (standalone), else the shared one.
    async fn read_conn(&self) -> Conn {
        let (Some(local), Conn::Single(shared)) = (&self.local, &self.conn) else {
            return self.conn();
        };
        let single = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !single {
            return self.conn();
        }
        let kept = LOCAL_CONNS.with(|c| {
            c.borrow()
                .iter()
                .find(|(id, _)| *id == local.id)
                .map(|(_, g)| g.clone())
        });
        match kept {
            Some(Ok(g)) => return Conn::Single(g),
            Some(Err(failed)) if failed.elapsed() < LOCAL_CONN_RETRY => return self.conn(),
            _ => {}
        }
        // While Redis is down the shared connection answers at once.
        if shared.admit().is_err() {
            return self.conn();
        }
        let made = tokio::time::timeout(
            local.connect_timeout,
            ConnectionManager::new_with_config(local.client.clone(), local.config.clone()),
        )
        .await;
        let made = match made {
            Ok(Ok(manager)) => Ok(Guarded {
                manager,
                breaker: shared.breaker.clone(),
            }),
            _ => Err(std::time::Instant::now()),
        };
        LOCAL_CONNS.with(|c| {
            let mut c = c.borrow_mut();
            c.retain(|(id, _)| *id != local.id);
            if c.len() >= LOCAL_CONNS_KEPT {
                let _evicted = c.remove(0);
            }
            c.push((local.id, made.clone()));
        });
        match made {
            Ok(g) => Conn::Single(g),
            Err(_) => self.conn(),
        }
    }

    /// Drops this thread's read connection after a connection-level error.
    fn drop_read_conn(&self, e: &::redis::RedisError) {
        let Some(local) = &self.local else { return };
        if e.is_io_error() || e.is_unrecoverable_error() || e.is_timeout() {
            LOCAL_CONNS.with(|c| c.borrow_mut().retain(|(id, _)| *id != local.id));
        }
    }

    /// Standalone scripts also write the global audit and change keys.
    fn one_write(&self) -> bool {
        !self.cluster
    }

    /// Runs `call` over `items` in chunks of at most `chunk`: items of one
    /// slot stay in input order and in one lane (run one chunk after another);
    /// lanes run concurrently. In a cluster a lane is one slot, so a chunk
    /// never crosses slots.
    async fn in_lanes<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        slot: impl Fn(&T) -> u16,
        chunk: usize,
        call: F,
    ) -> Outcome<R>
    where
        T: Send,
        R: Send,
        F: Fn(Conn, Vec<T>) -> Fut + Sync,
        Fut: Future<Output = StoreResult<Vec<R>>> + Send,
    {
        let mut lanes: BTreeMap<u16, Vec<(usize, T)>> = BTreeMap::new();
        for (i, t) in items.into_iter().enumerate() {
            let s = slot(&t);
            let lane = if self.cluster {
                s
            } else {
                s % STANDALONE_LANES
            };
            lanes.entry(lane).or_default().push((i, t));
        }
        let call = &call;
        let runs: Vec<Outcome<R>> = stream::iter(lanes.into_values())
            .map(|lane| {
                let conn = self.conn();
                async move {
                    let mut done = Vec::with_capacity(lane.len());
                    // Chunks of equal size (at most `chunk`): 1,024 items go
                    // as two of 512, not as 1,000 and a straggler of 24.
                    let parts = lane.len().div_ceil(chunk.max(1));
                    let size = lane.len().div_ceil(parts.max(1));
                    let mut rest = lane.into_iter().peekable();
                    while rest.peek().is_some() {
                        let (idx, part): (Vec<usize>, Vec<T>) = rest.by_ref().take(size).unzip();
                        match call(conn.clone(), part).await {
                            Ok(rs) if rs.len() == idx.len() => done.extend(idx.into_iter().zip(rs)),
                            Ok(_) => {
                                return Outcome {
                                    done,
                                    error: Some(StoreError::Corrupt(
                                        "redis: unexpected reply length".into(),
                                    )),
                                }
                            }
                            Err(e) => {
                                return Outcome {
                                    done,
                                    error: Some(e),
                                }
                            }
                        }
                    }
                    Outcome { done, error: None }
                }
            })
            .buffer_unordered(in_flight(chunk))
            .collect()
            .await;
        let mut all = Outcome {
            done: Vec::new(),
            error: None,
        };
        for run in runs {
            all.done.extend(run.done);
            if all.error.is_none() {
                all.error = run.error;
            }
        }
        all
    }

    /// One value per index slot ([`Keys::index_slot`]), from commands that
    /// `cmds` builds for each.
    ///
    /// Standalone: one pipeline of the 64 index slots. Cluster: one pipeline per master
    /// and 1024 slots, routed by `CLUSTER SLOTS`; if that fails (say, during
    /// resharding), one pipeline per slot.
    async fn per_slot<R, F>(
        &self,
        cmds: F,
        parse: fn(Vec<Value>) -> StoreResult<R>,
    ) -> StoreResult<Vec<R>>
    where
        R: Send,
        F: Fn(u16, &mut Pipeline) + Sync,
    {
        let cmds = &cmds;
        if let Conn::Cluster(conn) = &self.conn {
            match self.per_slot_by_master(conn, cmds, parse).await {
                Ok(out) => return Ok(out),
                Err(e) => {
                    tracing::debug!(error = %e, "per-master scan failed; scanning slot by slot")
                }
            }
        }
        let chunk = if self.cluster { 1 } else { 512 };
        self.in_lanes(
            (0..self.keys.index_slots()).collect(),
            |s| *s,
            chunk,
            |mut conn, slots| async move {
                let (pipe, sizes) = slot_pipeline(&slots, cmds);
                let values: Vec<Value> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                split_values(values, sizes, parse)
            },
        )
        .await
        .into_result()
    }

    async fn per_slot_by_master<R, F>(
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

    /// Standalone `add_records` of `records[i]` for each `i` in `todo`
    /// (distinct ids): claim and store in one script per chunk. Returns the
    /// indexes of the records stored.
    async fn add_records_standalone(
        &self,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
        mark: bool,
    ) -> StoreResult<Vec<usize>> {
        let keys = &self.keys;
        let stored: Vec<bool> = self
            .in_lanes(
                todo.clone(),
                |&i| slot_of(records[i].merchant.as_str()),
                RECORD_CHUNK,
                |mut conn, chunk| async move {
                    // The id sets this chunk touches, numbered from 1 in KEYS.
                    let (sets, set_of) = numbered(
                        chunk
                            .iter()
                            .map(|&i| crc16(records[i].id.as_bytes()) % RECORD_ID_SETS),
                    );
                    let mut inv = SCRIPTS.add_records.prepare_invoke();
                    inv.arg(if mark { "1" } else { "0" }).arg(sets.len());
                    for &s in &sets {
                        inv.key(keys.record_ids(s));
                    }
                    for (&i, &set) in chunk.iter().zip(&set_of) {
                        let r = &records[i];
                        let m = r.merchant.as_str();
                        inv.key(keys.merchant(m, "records"));
                        if mark {
                            inv.key(keys.index(slot_of(m), "dirty"));
                        }
                        inv.arg(set).arg(&r.id).arg(m).arg(&jsons[i]);
                    }
                    let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(flags.into_iter().map(|f| f == b'1').collect())
                },
            )
            .await
            .into_result()?;
        Ok(todo
            .into_iter()
            .zip(stored)
            .filter_map(|(i, s)| s.then_some(i))
            .collect())
    }

    /// Cluster `add_records` (see [`Self::add_records_standalone`]): claim
    /// each record id in the owner index of its slot, then store the claimed
    /// records in their merchants' slots.
    async fn add_records_cluster(
        &self,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
        mark: bool,
    ) -> StoreResult<Vec<usize>> {
        let keys = &self.keys;
        let claims: Vec<i64> = self
            .in_lanes(
                todo.clone(),
                |&i| slot_of(&records[i].id),
                CHUNK * 5,
                |mut conn, chunk| async move {
                    let mut inv = SCRIPTS.claim.prepare_invoke();
                    for &i in &chunk {
                        let r = &records[i];
                        inv.key(keys.index(slot_of(&r.id), "record-owner"))
                            .arg(&r.id)
                            .arg(r.merchant.as_str());
                    }
                    inv.invoke_async(&mut conn).await.map_err(redis_err)
                },
            )
            .await
            .into_result()?;
        let claimed: Vec<(usize, i64)> = todo
            .into_iter()
            .zip(claims)
            .filter(|(_, c)| *c != 0)
            .collect();
        let stored: Vec<bool> = self
            .in_lanes(
                claimed.clone(),
                |&(i, _)| slot_of(records[i].merchant.as_str()),
                CHUNK,
                |mut conn, chunk| async move {
                    let mut inv = SCRIPTS.store_records.prepare_invoke();
                    inv.arg(if mark { "1" } else { "0" });
                    for &(i, claim) in &chunk {
                        let r = &records[i];
                        let m = r.merchant.as_str();
                        inv.key(keys.merchant(m, "records"));
                        if mark {
                            inv.key(keys.index(slot_of(m), "dirty"));
                        }
                        inv.arg(if claim == 1 { "1" } else { "2" })
                            .arg(m)
                            .arg(&jsons[i]);
                        if claim == 1 {
                            inv.arg("").arg("");
                        } else {
                            inv.arg(id_prefix(&r.id, &jsons[i])?).arg(&r.id);
                        }
                    }
                    let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(flags.into_iter().map(|f| f == b'1').collect())
                },
            )
            .await
            .into_result()?;
        Ok(claimed
            .into_iter()
            .zip(stored)
            .filter_map(|((i, _), s)| s.then_some(i))
            .collect())
    }

    /// Standalone `put_projections`: transactions of [`PROJECTION_CHUNK`]
    /// projections over many slots, one `MSET` and per index slot one `SREM`
    /// and `ZADD`/`ZREM` each, the change notice in the same transaction.
    async fn put_projections_standalone(&self, projections: Vec<Projection>) -> StoreResult<()> {
        let projections = Arc::new(projections);
        let kept = self.changes_kept;
        let all = &projections;
        self.in_lanes(
            (0..projections.len()).collect(),
            |&i| slot_of(projections[i].merchant.id.as_str()),
            PROJECTION_CHUNK,
            |mut conn, chunk| {
                let projections = Arc::clone(all);
                let keys = Arc::clone(&self.keys);
                async move {
                    let n = chunk.len();
                    // The JSON and the commands are built on the worker
                    // pool, several chunks at a time, while this task sends
                    // the ones that are ready.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    rayon::spawn(move || {
                        let ps = chunk.iter().map(|&i| &projections[i]);
                        let _ = tx.send(projections_transaction(&keys, kept, ps));
                    });
                    let pipe = rx.await.map_err(|_| {
                        StoreError::Unavailable("redis: building a projection write failed".into())
                    })??;
                    let (_,): (i64,) = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                    Ok(vec![(); n])
                }
            },
        )
        .await
        .into_result()
        .map(drop)
    }

    /// Whether this process runs a bulk import that sorts its records
    /// (standalone).
    fn bulk_sorts_records(&self) -> bool {
        self.bulk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|b| b.records.is_some())
    }

    /// Bulk import, standalone: finds which of `records[i]` (`i` in `todo`,
    /// distinct ids) are not stored yet (one pipelined `SMISMEMBER` per id
    /// set) and puts those into the import's sorts. Returns how many; of
    /// those, the ones that repeat an earlier record's id of this import are
    /// found at its end.
    async fn accept_bulk_records(
        &self,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
    ) -> StoreResult<u64> {
        let mut by_set: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for i in todo {
            by_set
                .entry(crc16(records[i].id.as_bytes()) % RECORD_ID_SETS)
                .or_default()
                .push(i);
        }
        let mut pipe = ::redis::pipe();
        for (&set, members) in &by_set {
            let ids: Vec<&str> = members.iter().map(|&i| records[i].id.as_str()).collect();
            pipe.cmd("SMISMEMBER")
                .arg(self.keys.record_ids(set))
                .arg(&ids);
        }
        let replies: Vec<Vec<i64>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut fresh: Vec<usize> = Vec::new();
        if replies.len() != by_set.len() {
            return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
        }
        for ((_, members), stored) in by_set.iter().zip(&replies) {
            for (k, &i) in members.iter().enumerate() {
                if stored.get(k) == Some(&0) {
                    fresh.push(i);
                }
            }
        }
        // In input order, so that a merchant's records keep it.
        fresh.sort_unstable();
        let mut guard = self.bulk.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bulk) = guard.as_mut().and_then(|b| b.records.as_mut()) else {
            return Err(StoreError::Unavailable(
                "bulk import ended while adding records".into(),
            ));
        };
        let io = |e: std::io::Error| StoreError::Unavailable(format!("sorting records: {e}"));
        let mut payload = Vec::new();
        let mut key = String::new();
        for &i in &fresh {
            let r = &records[i];
            let merchant = r.merchant.as_str();
            payload.clear();
            push_prefixed(&mut payload, r.id.as_bytes());
            push_prefixed(&mut payload, jsons[i].as_bytes());
            // A first load's sort feeds the regrade: the binary form then
            // spares it parsing the JSON.
            if bulk.first_load {
                crate::records::encode_record(r, &mut payload);
            }
            bulk.sorter.push(merchant, bulk.seq, &payload).map_err(io)?;
            payload.clear();
            push_prefixed(&mut payload, merchant.as_bytes());
            payload.extend_from_slice(r.id.as_bytes());
            bulk.ids
                .push(id_sort_key(&r.id, &mut key), bulk.seq, &payload)
                .map_err(io)?;
            bulk.seq += 1;
        }
        bulk.accepted += fresh.len() as u64;
        Ok(fresh.len() as u64)
    }

    /// End of a standalone bulk import: stores the sorted records merchant
    /// by merchant, but those that repeat an earlier record's id of the
    /// import, each transaction appending its merchants' records with one
    /// `RPUSH` each and claiming their ids (one `SADD` per id set). Adds the
    /// merchants to `touched` (their marks follow, as for any bulk import)
    /// and returns how many records were stored, how many repeated an id,
    /// and the sort.
    async fn store_sorted(
        &self,
        records: BulkRecords,
        touched: &mut HashSet<String>,
    ) -> StoreResult<(u64, u64, Sorted)> {
        tracing::info!(
            records = records.accepted,
            "bulk import: storing the sorted records merchant by merchant"
        );
        let keys = self.keys.clone();
        let (tx, rx) =
            tokio::sync::mpsc::channel::<(Pipeline, Vec<String>, u64)>(BULK_STORE_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || -> StoreResult<(u64, Sorted)> {
            let io = |e: std::io::Error| StoreError::Unavailable(format!("sorting records: {e}"));
            let (mut repeats, repeated) = repeated_ids(records.ids).map_err(io)?;
            let mut repeat = SortRow::default();
            let mut more = repeats.next_into(&mut repeat).map_err(io)?;
            let mut sorted = records.sorter.finish().map_err(io)?;
            let mut row = SortRow::default();
            let mut chunk = BulkChunk::default();
            while sorted.next_into(&mut row).map_err(io)? {
                // Both sorts are in (merchant, input order).
                while more && (&repeat.merchant, repeat.seq) < (&row.merchant, row.seq) {
                    more = repeats.next_into(&mut repeat).map_err(io)?;
                }
                if more && (&repeat.merchant, repeat.seq) == (&row.merchant, row.seq) {
                    continue;
                }
                let merchant = std::str::from_utf8(&row.merchant).map_err(corrupt)?;
                if chunk.records >= BULK_STORE_CHUNK
                    && chunk.merchants.last().map(String::as_str) != Some(merchant)
                {
                    let done = std::mem::take(&mut chunk);
                    if tx.blocking_send(done.into_pipeline()).is_err() {
                        return Ok((repeated, sorted));
                    }
                }
                chunk.push(&keys, merchant, &row.payload)?;
            }
            if chunk.records > 0 {
                let _ = tx.blocking_send(chunk.into_pipeline());
            }
            Ok((repeated, sorted))
        });
        let sent = tokio_stream_of(rx)
            .map(|(pipe, merchants, n)| {
                let mut conn = self.conn();
                async move {
                    pipe.query_async::<()>(&mut conn).await.map_err(redis_err)?;
                    StoreResult::Ok((merchants, n))
                }
            })
            .buffer_unordered(BULK_STORE_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let (repeated, sorted) = reader
            .await
            .map_err(|e| StoreError::Unavailable(format!("sorting records: {e}")))??;
        let mut stored = 0;
        for done in sent {
            let (merchants, n) = done?;
            touched.extend(merchants);
            stored += n;
        }
        Ok((stored, repeated, sorted))
    }

    /// The grading inputs of `ids`, `None` for an unknown merchant, in the
    /// order of `ids`; without `with_records` the records are left empty
    /// (the caller has them).
    async fn read_grading_inputs(
        &self,
        ids: &[MerchantId],
        with_records: bool,
    ) -> StoreResult<Vec<Option<GradingInput>>> {
        /// Only the grade of a stored projection.
        #[derive(serde::Deserialize)]
        struct GradeOnly {
            grade: Grade,
        }
        let keys = &self.keys;
        let found = self
            .in_lanes(
                ids.iter().collect(),
                |id| slot_of(id.as_str()),
                CHUNK / 2,
                |mut conn, chunk| async move {
                    // One `MGET` of every merchant's merchant, override and
                    // projection keys (one slot in a cluster: the lane's),
                    // then the record lists if asked for.
                    let mut pipe = ::redis::pipe();
                    let mget = pipe.cmd("MGET");
                    for id in &chunk {
                        let m = id.as_str();
                        mget.arg(keys.merchant(m, "merchant"))
                            .arg(keys.merchant(m, "override"))
                            .arg(keys.merchant(m, "projection"));
                    }
                    if with_records {
                        for id in &chunk {
                            pipe.lrange(keys.merchant(id.as_str(), "records"), 0, -1);
                        }
                    }
                    let mut values: Vec<Value> =
                        pipe.query_async(&mut conn).await.map_err(redis_err)?;
                    let lists = values.split_off(1.min(values.len()));
                    let heads: Vec<Option<String>> =
                        ::redis::from_redis_value(values.pop().unwrap_or(Value::Nil))
                            .map_err(corrupt)?;
                    let lists: Vec<Vec<String>> =
                        ::redis::from_redis_value(Value::Array(lists)).map_err(corrupt)?;
                    if heads.len() != 3 * chunk.len()
                        || (with_records && lists.len() != chunk.len())
                    {
                        return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
                    }
                    let mut lists = lists.into_iter();
                    let mut out = Vec::with_capacity(chunk.len());
                    for three in heads.chunks_exact(3) {
                        let records = lists.next().unwrap_or_default();
                        let (merchant, override_, projection) = (&three[0], &three[1], &three[2]);
                        let Some(merchant) = merchant else {
                            out.push(None);
                            continue;
                        };
                        out.push(Some(GradingInput {
                            merchant: from_json(merchant)?,
                            records: records
                                .iter()
                                .map(|r| from_json(r))
                                .collect::<StoreResult<_>>()?,
                            override_: override_.as_deref().map(from_json).transpose()?,
                            previous: projection
                                .as_deref()
                                .map(|p| from_json::<GradeOnly>(p).map(|g| g.grade))
                                .transpose()?,
                        }));
                    }
                    Ok(out)
                },
            )
            .await
            .into_result()?;
        Ok(found)
    }

    /// Standalone: how many records the store holds (the ids in the
    /// record-id sets; each is a stored record).
    async fn stored_records(&self) -> StoreResult<u64> {
        let mut pipe = ::redis::pipe();
        for b in 0..RECORD_ID_SETS {
            pipe.scard(self.keys.record_ids(b));
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(counts.into_iter().sum())
    }

    /// [`Store::stream_grading_inputs`] from the sorted records of a bulk
    /// import that are every record of the store ([`Presorted`]): `ids`
    /// ascending, each batch's records taken from the sort (merged once
    /// more) and parsed in parallel, the rest read with three `GET`s per
    /// merchant instead of reading every list back.
    async fn stream_presorted(
        &self,
        rows: Sorted,
        ids: Vec<MerchantId>,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let io = |e: std::io::Error| StoreError::Unavailable(format!("sorted records: {e}"));
        let joined =
            |e: tokio::task::JoinError| StoreError::Unavailable(format!("sorted records: {e}"));
        let mut rows = tokio::task::spawn_blocking(move || rows.rewind())
            .await
            .map_err(joined)?
            .map_err(io)?;
        // A row read ahead of the batch it belongs to.
        let mut ahead: Option<SortRow> = None;
        for chunk in ids.chunks(batch.max(1)) {
            let want = chunk.to_vec();
            let read = tokio::task::spawn_blocking(move || {
                let records = take_sorted_records(&mut rows, &mut ahead, &want);
                (records, rows, ahead)
            });
            let (inputs, read) = tokio::join!(self.read_grading_inputs(chunk, false), read);
            let (records, back, left) = read.map_err(joined)?;
            (rows, ahead) = (back, left);
            let records = records?;
            let inputs: Vec<GradingInput> = inputs?
                .into_iter()
                .zip(records)
                .filter_map(|(input, records)| {
                    input.map(|mut i| {
                        i.records = records;
                        i
                    })
                })
                .collect();
            if tx.send(inputs).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Whether a bulk import runs in this process (regrade marks deferred).
    fn in_bulk(&self) -> bool {
        self.bulk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Remembers merchants whose mark the running bulk import owes.
    fn touch<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        if let Some(b) = self.bulk.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            b.touched.extend(ids.map(str::to_owned));
        }
    }

    /// The hash of running (or killed) bulk imports: token → start (Unix seconds).
    fn bulk_key(&self) -> String {
        self.keys.global("meta", "bulk")
    }

    /// Marks `ids` for regrading, in pipelines of `SADD`s per slot.
    async fn mark_dirty(&self, ids: Vec<String>) -> StoreResult<()> {
        let keys = &self.keys;
        // Large chunks: a bulk import marks up to every merchant, and one
        // `SADD` per slot of many members costs Redis far less than many
        // of one or two.
        self.in_lanes(
            ids,
            |id| slot_of(id),
            MARK_CHUNK,
            |mut conn, chunk| async move {
                let mut by_slot: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
                for id in &chunk {
                    by_slot
                        .entry(keys.index_slot(slot_of(id)))
                        .or_default()
                        .push(id);
                }
                let mut pipe = ::redis::pipe();
                for (slot, members) in by_slot {
                    pipe.sadd(keys.index(slot, "dirty"), members).ignore();
                }
                pipe.query_async::<()>(&mut conn).await.map_err(redis_err)?;
                Ok(vec![(); chunk.len()])
            },
        )
        .await
        .into_result()
        .map(drop)
    }

    /// Completes bulk imports other than this process's that never ended
    /// (killed): their merchants' marks are unknown, so every merchant is
    /// marked for regrading, then their tokens are removed.
    async fn recover_bulk(&self) -> StoreResult<()> {
        let tokens: Vec<String> = ::redis::cmd("HKEYS")
            .arg(self.bulk_key())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let own = self
            .bulk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|b| b.token.clone());
        let stale: Vec<String> = tokens
            .into_iter()
            .filter(|t| Some(t) != own.as_ref())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            imports = stale.len(),
            "an earlier bulk import into Redis did not finish; marking every merchant for regrading"
        );
        let keys = &self.keys;
        self.per_slot(
            |slot, pipe| {
                let dirty = keys.index(slot, "dirty");
                pipe.cmd("SUNIONSTORE")
                    .arg(&dirty)
                    .arg(&dirty)
                    .arg(keys.index(slot, "merchants"));
            },
            |_| Ok(()),
        )
        .await?;
        ::redis::cmd("HDEL")
            .arg(self.bulk_key())
            .arg(&stale)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    /// Appends the change notice for `ids` (cluster path; standalone scripts
    /// write it themselves).
    async fn note_changes(&self, ids: Vec<String>) -> StoreResult<()> {
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

    /// Appends one audit entry (JSON) to the log and its target's list, atomically.
    async fn push_audit(&self, target: &str, json: &str) -> StoreResult<()> {
        ::redis::pipe()
            .atomic()
            .rpush(self.keys.audit_log(), json)
            .ignore()
            .rpush(self.keys.audit_target(target), json)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    /// Adds the global audit and change keys to a standalone script call.
    fn add_tail_keys(&self, inv: &mut ::redis::ScriptInvocation<'_>, audit_target: &str) {
        inv.key(self.keys.audit_log())
            .key(self.keys.audit_target(audit_target))
            .key(self.keys.changes())
            .key(self.keys.changes_seq());
    }

    /// Claims `field` for `owner` in the owner index of `field`'s slot.
    async fn claim(&self, index: &str, field: &str, owner: &str) -> StoreResult<i64> {
        let mut inv = SCRIPTS.claim.prepare_invoke();
        inv.key(self.keys.index(slot_of(field), index))
            .arg(field)
            .arg(owner);
        let out: Vec<i64> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        out.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("redis: empty claim reply".into()))
    }

    /// The projections of `ids` (`None` where there is none), in order.
    async fn projections_of(&self, ids: &[MerchantId]) -> StoreResult<Vec<Option<Projection>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.keys.merchant(id.as_str(), "projection"))
            .collect();
        let found: Vec<Option<String>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        found
            .iter()
            .map(|j| j.as_deref().map(from_json).transpose())
            .collect()
    }

    fn code_from(json: &str, status: Option<&str>) -> StoreResult<IssuedCode> {
        let mut code: IssuedCode = from_json(json)?;
        if let Some(s) = status {
            code.status = CodeStatus::from_name(s)
                .ok_or_else(|| StoreError::Corrupt(format!("code status `{s}`")))?;
        }
        Ok(code)
    }
}

/// A pipeline of the commands for `slots`, and how many each slot has.
fn slot_pipeline(
    slots: &[u16],
    cmds: &(impl Fn(u16, &mut Pipeline) + ?Sized),
) -> (Pipeline, Vec<usize>) {
    let mut pipe = ::redis::pipe();
    let mut sizes = Vec::with_capacity(slots.len());
    for &s in slots {
        let before = pipe.len();
        cmds(s, &mut pipe);
        sizes.push(pipe.len() - before);
    }
    (pipe, sizes)
}

/// Splits a pipeline's replies back into one parsed value per slot.
fn split_values<R>(
    values: Vec<Value>,
    sizes: Vec<usize>,
    parse: fn(Vec<Value>) -> StoreResult<R>,
) -> StoreResult<Vec<R>> {
    if values.len() != sizes.iter().sum::<usize>() {
        return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
    }
    let mut values = values.into_iter();
    sizes
        .into_iter()
        .map(|n| parse(values.by_ref().take(n).collect()))
        .collect()
}

/// The start of a record's canonical JSON up to and including its id
/// (`{"id":"..."`), which no other record's canonical JSON starts with.
/// Only ever called with canonical JSON (`Serialize` writes `id` first,
/// without spaces); an error here is a bug, not bad input.
fn id_prefix<'a>(id: &str, json: &'a str) -> StoreResult<&'a str> {
    let quoted = to_json(&id)?;
    let n = r#"{"id":"#.len() + quoted.len();
    match json.get(..n) {
        Some(p) if p.starts_with(r#"{"id":"#) && p.ends_with(quoted.as_str()) => Ok(p),
        _ => Err(StoreError::Corrupt(format!(
            "record {id}: its JSON does not start with its id"
        ))),
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

/// The records of `want` (ascending) from `rows` sorted by merchant,
/// decoded in parallel, one list per id; rows of other merchants are passed
/// over, and the first row past `want` is kept in `ahead`.
fn take_sorted_records(
    rows: &mut Sorted,
    ahead: &mut Option<SortRow>,
    want: &[MerchantId],
) -> StoreResult<Vec<Vec<Record>>> {
    use rayon::prelude::*;
    let io = |e: std::io::Error| StoreError::Unavailable(format!("sorted records: {e}"));
    let mut binaries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); want.len()];
    let mut row = ahead.take().unwrap_or_default();
    let mut have = !row.merchant.is_empty();
    let mut k = 0;
    loop {
        if !have && !rows.next_into(&mut row).map_err(io)? {
            break;
        }
        have = false;
        while k < want.len() && want[k].as_str().as_bytes() < row.merchant.as_slice() {
            k += 1;
        }
        if k == want.len() {
            *ahead = Some(row);
            break;
        }
        if want[k].as_str().as_bytes() == row.merchant.as_slice() {
            binaries[k].push(bulk_row_binary(&row.payload)?.to_vec());
        }
    }
    binaries
        .into_par_iter()
        .zip(want)
        .map(|(binaries, id)| {
            binaries
                .iter()
                .map(|b| crate::records::decode_record(id, b).map_err(corrupt))
                .collect::<StoreResult<Vec<Record>>>()
        })
        .collect()
}

/// The records of a bulk import that repeat the id of an earlier record of
/// it, from the import's id sort: sorted by (merchant, input order) like
/// the records, and how many.
fn repeated_ids(ids: Sorter) -> std::io::Result<(Sorted, u64)> {
    let bad = |e: StoreError| std::io::Error::other(e.to_string());
    let mut repeats = Sorter::new(&sort_dir(), REPEATS_SORT_BYTES);
    let mut ids = ids.finish()?;
    let mut row = SortRow::default();
    let mut key: Vec<u8> = Vec::new();
    // The ids of the current key seen so far (one, unless ids share a key).
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut repeated = 0;
    while ids.next_into(&mut row)? {
        if row.merchant != key {
            key.clone_from(&row.merchant);
            seen.clear();
        }
        let (merchant, id) = split_prefixed(&row.payload).map_err(bad)?;
        if seen.iter().any(|s| s.as_slice() == id) {
            let merchant = std::str::from_utf8(merchant).map_err(std::io::Error::other)?;
            repeats.push(merchant, row.seq, &[])?;
            repeated += 1;
        } else {
            seen.push(id.to_vec());
        }
    }
    Ok((repeats.finish()?, repeated))
}

/// Appends `bytes` after their length (4 bytes little-endian).
fn push_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What [`push_prefixed`] wrote, and what follows it: a bulk import's
/// sorted record row (id, JSON) or id row (merchant, id).
fn split_prefixed(payload: &[u8]) -> StoreResult<(&[u8], &[u8])> {
    let bad = || StoreError::Corrupt("bulk import: bad sorted row".into());
    let len = payload.get(..4).ok_or_else(bad)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
    let id = payload.get(4..4 + len).ok_or_else(bad)?;
    Ok((id, &payload[4 + len..]))
}

/// The binary form of the record ([`crate::records::encode_record`]) in a
/// first load's sorted record row.
fn bulk_row_binary(payload: &[u8]) -> StoreResult<&[u8]> {
    let (_, rest) = split_prefixed(payload)?;
    split_prefixed(rest).map(|(_, binary)| binary)
}

/// A record id as a key of the id sort: the id itself when it fits
/// ([`Sorter::push`] takes at most 32 bytes, no NUL), else 32 hex digits of
/// a 128-bit hash of it. Equal ids get equal keys; the rare other ids that
/// share a key are told apart by the full id in the row.
fn id_sort_key<'a>(id: &'a str, buf: &'a mut String) -> &'a str {
    use std::hash::{Hash, Hasher};
    if id.len() <= 32 && !id.contains('\0') {
        return id;
    }
    buf.clear();
    for salt in [0u8, 1] {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        buf.push_str(&format!("{:016x}", h.finish()));
    }
    buf
}

/// Where a standalone bulk import spills its sorted runs.
fn sort_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("yisaozhi-redis-sort")
}

/// A receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// One transaction's worth of a bulk import's sorted records
/// ([`RedisStore::store_sorted`]): whole merchants, in order, packed into
/// the commands as they come (no copy of a record per record).
#[derive(Default)]
struct BulkChunk {
    /// The `RPUSH` of the current merchant's records.
    rpush: Option<Cmd>,
    /// The `RPUSH`es of the merchants before.
    done: Vec<Cmd>,
    /// The merchants, in order.
    merchants: Vec<String>,
    /// Per id set touched, its `SADD` of the records' ids.
    ids: BTreeMap<u16, Cmd>,
    records: usize,
}

impl BulkChunk {
    /// Adds one sorted row's payload (id, JSON, binary form) for `merchant`.
    fn push(&mut self, keys: &Keys, merchant: &str, payload: &[u8]) -> StoreResult<()> {
        let (id, rest) = split_prefixed(payload)?;
        let (json, _binary) = split_prefixed(rest)?;
        if self.merchants.last().map(String::as_str) != Some(merchant) {
            self.done.extend(self.rpush.take());
            let mut rpush = ::redis::cmd("RPUSH");
            rpush.arg(keys.merchant(merchant, "records"));
            self.rpush = Some(rpush);
            self.merchants.push(merchant.to_owned());
        }
        if let Some(rpush) = self.rpush.as_mut() {
            rpush.arg(json);
        }
        let set = crc16(id) % RECORD_ID_SETS;
        self.ids
            .entry(set)
            .or_insert_with(|| {
                let mut sadd = ::redis::cmd("SADD");
                sadd.arg(keys.record_ids(set));
                sadd
            })
            .arg(id);
        self.records += 1;
        Ok(())
    }

    /// The transaction: per merchant one `RPUSH`, per id set one `SADD`.
    /// With its merchants and record count.
    fn into_pipeline(mut self) -> (Pipeline, Vec<String>, u64) {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        self.done.extend(self.rpush.take());
        for cmd in self.done {
            pipe.add_command(cmd).ignore();
        }
        for cmd in self.ids.into_values() {
            pipe.add_command(cmd).ignore();
        }
        (pipe, self.merchants, self.records as u64)
    }
}

fn string_set(values: Vec<Value>) -> StoreResult<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        let members: Vec<String> = ::redis::from_redis_value(v).map_err(corrupt)?;
        out.extend(members);
    }
    Ok(out)
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        ::redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64> {
        let items = merchants
            .par_iter()
            .map(|m| Ok((m.id.as_str(), slot_of(m.id.as_str()), to_json(m)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let keys = &self.keys;
        let mark = !self.in_bulk();
        let chunk = if self.cluster { CHUNK } else { MERCHANT_CHUNK };
        let changed = self
            .in_lanes(
                items,
                |it| it.1,
                chunk,
                |mut conn, chunk| async move {
                    // The chunk's index slots, numbered from 1 after the
                    // merchant keys in KEYS.
                    let (slots, group) =
                        numbered(chunk.iter().map(|(_, slot, _)| keys.index_slot(*slot)));
                    let mut inv = SCRIPTS.upsert_merchants.prepare_invoke();
                    for (id, _, _) in &chunk {
                        inv.key(keys.merchant(id, "merchant"));
                    }
                    for &slot in &slots {
                        inv.key(keys.index(slot, "merchants"));
                        if mark {
                            inv.key(keys.index(slot, "dirty"));
                        }
                    }
                    inv.arg(if mark { "1" } else { "0" })
                        .arg(chunk.len())
                        .arg(slots.len());
                    for ((id, _, json), g) in chunk.iter().zip(&group) {
                        inv.arg(*id).arg(json).arg(*g);
                    }
                    let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(flags.into_iter().map(|f| f == b'1').collect())
                },
            )
            .await
            .into_result()?;
        if !mark {
            self.touch(
                merchants
                    .iter()
                    .zip(&changed)
                    .filter(|(_, c)| **c)
                    .map(|(m, _)| m.id.as_str()),
            );
        }
        Ok(changed.iter().filter(|c| **c).count() as u64)
    }

    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>> {
        let json: Option<String> = ::redis::cmd("GET")
            .arg(self.keys.merchant(id.as_str(), "merchant"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        json.as_deref().map(from_json).transpose()
    }

    async fn known_merchants(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<MerchantId>> {
        let keys = &self.keys;
        let exists = self
            .in_lanes(
                ids.iter().collect(),
                |id| slot_of(id.as_str()),
                CHUNK * 5,
                |mut conn, chunk| async move {
                    let mut pipe = ::redis::pipe();
                    for id in &chunk {
                        pipe.exists(keys.merchant(id.as_str(), "merchant"));
                    }
                    let found: Vec<bool> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                    Ok(found)
                },
            )
            .await
            .into_result()?;
        Ok(ids
            .into_iter()
            .zip(exists)
            .filter_map(|(id, known)| known.then_some(id))
            .collect())
    }

    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded> {
        // The first of several records with one id in the batch wins: the
        // others are duplicates before anything is sent.
        let total = records.len() as u64;
        let mut seen: HashSet<&str> = HashSet::with_capacity(records.len());
        let first: Vec<usize> = (0..records.len())
            .filter(|&i| seen.insert(records[i].id.as_str()))
            .collect();
        drop(seen);
        // Each record's canonical JSON (never the bytes it was read from),
        // which starts with its id: see `id_prefix`.
        let jsons: Vec<String> = records
            .par_iter()
            .map(to_json)
            .collect::<StoreResult<_>>()?;
        if self.bulk_sorts_records() {
            let inserted = self.accept_bulk_records(&records, &jsons, first).await?;
            return Ok(RecordsAdded {
                inserted,
                duplicate: total - inserted,
            });
        }
        let mark = !self.in_bulk();
        let stored = if self.cluster {
            self.add_records_cluster(&records, &jsons, first, mark)
                .await?
        } else {
            self.add_records_standalone(&records, &jsons, first, mark)
                .await?
        };
        if !mark {
            self.touch(stored.iter().map(|&i| records[i].merchant.as_str()));
        }
        let inserted = stored.len() as u64;
        Ok(RecordsAdded {
            inserted,
            duplicate: total - inserted,
        })
    }

    async fn begin_bulk_import(&self, expected_records: u64) -> StoreResult<()> {
        if expected_records < self.bulk_min || self.in_bulk() {
            return Ok(());
        }
        self.recover_bulk().await?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Unavailable(format!("random: {e}")))?;
        let token = format!(
            "{}-{}",
            std::process::id(),
            data_encoding::HEXLOWER.encode(&raw)
        );
        let started = jiff::Timestamp::now().as_second();
        ::redis::cmd("HSET")
            .arg(self.bulk_key())
            .arg(&token)
            .arg(started)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)?;
        // Standalone sorts the records by merchant and stores them at the end.
        let records = if self.cluster {
            None
        } else {
            let first_load = self.stored_records().await? == 0;
            let dir = sort_dir();
            remove_stale_sort_dirs(&dir);
            // Records are longer than their ids: most of the memory to them.
            Some(BulkRecords {
                sorter: Sorter::new(&dir, self.sort_bytes / 4 * 3),
                ids: Sorter::new(&dir, self.sort_bytes / 4),
                seq: 0,
                accepted: 0,
                first_load,
            })
        };
        *self.presorted.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.bulk.lock().unwrap_or_else(|p| p.into_inner()) = Some(Bulk {
            token,
            touched: HashSet::new(),
            records,
        });
        tracing::debug!("bulk import into Redis started");
        Ok(())
    }

    async fn end_bulk_import(&self) -> StoreResult<u64> {
        let Some(bulk) = self.bulk.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(0);
        };
        let mut touched = bulk.touched;
        let mut repeated = 0;
        // On failure the token stays: the next run marks everyone.
        if let Some(records) = bulk.records {
            let first_load = records.first_load;
            let (stored, repeats, rows) = self.store_sorted(records, &mut touched).await?;
            repeated = repeats;
            tracing::debug!(
                records = stored,
                repeated,
                "bulk import into Redis stored its records"
            );
            // The sort holds the repeats too: then the regrade reads the lists.
            if first_load && repeated == 0 {
                *self.presorted.lock().unwrap_or_else(|p| p.into_inner()) = Some(Presorted {
                    rows,
                    records: stored,
                });
            }
        }
        let marked = touched.len();
        self.mark_dirty(touched.into_iter().collect()).await?;
        ::redis::cmd("HDEL")
            .arg(self.bulk_key())
            .arg(&bulk.token)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)?;
        tracing::debug!(marked, "bulk import into Redis ended");
        Ok(repeated)
    }

    async fn records(&self, id: &MerchantId) -> StoreResult<Vec<Record>> {
        let rows: Vec<String> = ::redis::cmd("LRANGE")
            .arg(self.keys.merchant(id.as_str(), "records"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        rows.iter().map(|j| from_json(j)).collect()
    }

    async fn projection(&self, id: &MerchantId) -> StoreResult<Option<Projection>> {
        let json: Option<String> = ::redis::cmd("GET")
            .arg(self.keys.merchant(id.as_str(), "projection"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        json.as_deref().map(from_json).transpose()
    }

    async fn put_projections(&self, projections: Vec<Projection>) -> StoreResult<()> {
        if !self.cluster {
            return self.put_projections_standalone(projections).await;
        }
        let items = projections
            .iter()
            .map(|p| {
                let id = p.merchant.id.as_str();
                let score = p
                    .next_change_at
                    .map(day_score)
                    .map_or(String::new(), |s| s.to_string());
                Ok((id, slot_of(id), to_json(p)?, score))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let keys = &self.keys;
        let one_write = self.one_write();
        let kept = self.changes_kept;
        let outcome = self
            .in_lanes(
                items,
                |it| it.1,
                CHUNK,
                |mut conn, chunk| async move {
                    let mut inv = SCRIPTS.put_projections.prepare_invoke();
                    inv.arg(chunk.len());
                    for (id, slot, json, score) in &chunk {
                        inv.key(keys.merchant(id, "projection"))
                            .key(keys.index(*slot, "dirty"))
                            .key(keys.index(*slot, "due"))
                            .arg(*id)
                            .arg(json)
                            .arg(score);
                    }
                    if one_write {
                        inv.key(keys.changes()).key(keys.changes_seq());
                    }
                    inv.arg(kept);
                    let _: i64 = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(chunk.iter().map(|c| c.0.to_owned()).collect())
                },
            )
            .await;
        if !one_write {
            // The notice goes out for whatever landed, even if a slot failed.
            let mut done = outcome.done;
            done.sort_by_key(|(i, _)| *i);
            let ids: Vec<String> = done.into_iter().map(|(_, id)| id).collect();
            self.note_changes(ids).await?;
        }
        match outcome.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn due_for_regrade(&self, as_of: Date) -> StoreResult<Vec<MerchantId>> {
        self.recover_bulk().await?;
        let keys = &self.keys;
        let max = day_score(as_of);
        let per_slot = self
            .per_slot(
                |slot, pipe| {
                    pipe.smembers(keys.index(slot, "dirty"));
                    pipe.cmd("ZRANGEBYSCORE")
                        .arg(keys.index(slot, "due"))
                        .arg("-inf")
                        .arg(max);
                },
                string_set,
            )
            .await?;
        let mut ids = per_slot
            .into_iter()
            .flatten()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|s| merchant_id(&s))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn grading_inputs(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<GradingInput>> {
        let found = self.read_grading_inputs(&ids, true).await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn stream_grading_inputs(
        &self,
        ids: Vec<MerchantId>,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let presorted = self
            .presorted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(p) = presorted {
            let ascending = ids.windows(2).all(|w| w[0] < w[1]);
            if ascending && self.stored_records().await? == p.records {
                return self.stream_presorted(p.rows, ids, batch, tx).await;
            }
        }
        super::stream_by_lookups(self, ids, batch, tx).await
    }

    async fn all_merchant_ids(&self) -> StoreResult<Vec<MerchantId>> {
        let keys = &self.keys;
        let per_slot = self
            .per_slot(
                |slot, pipe| {
                    pipe.smembers(keys.index(slot, "merchants"));
                },
                string_set,
            )
            .await?;
        let mut ids = per_slot
            .into_iter()
            .flatten()
            .map(|s| merchant_id(&s))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn projections_page(
        &self,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        let ids: Vec<MerchantId> = self
            .all_merchant_ids()
            .await?
            .into_iter()
            .filter(|id| after.as_ref().is_none_or(|a| id > a))
            .collect();
        let mut out = Vec::new();
        for window in ids.chunks(limit.clamp(1, 1000)) {
            for p in self.projections_of(window).await?.into_iter().flatten() {
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn scan_projections(&self, each: &mut (dyn FnMut(Projection) + Send)) -> StoreResult<()> {
        let ids = self.all_merchant_ids().await?;
        for window in ids.chunks(1000) {
            for p in self.projections_of(window).await?.into_iter().flatten() {
                each(p);
            }
        }
        Ok(())
    }

    async fn override_of(&self, id: &MerchantId) -> StoreResult<Option<Override>> {
        let json: Option<String> = ::redis::cmd("GET")
            .arg(self.keys.merchant(id.as_str(), "override"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        json.as_deref().map(from_json).transpose()
    }

    async fn set_override(
        &self,
        id: &MerchantId,
        value: Option<Override>,
        projection: Projection,
        audit: AuditEntry,
    ) -> StoreResult<()> {
        if projection.merchant.id != *id {
            return Err(StoreError::Conflict(format!(
                "override of {id} with the projection of {}",
                projection.merchant.id
            )));
        }
        let m = id.as_str();
        let slot = slot_of(m);
        let audit_json = to_json(&audit)?;
        let mut inv = SCRIPTS.set_override.prepare_invoke();
        inv.key(self.keys.merchant(m, "override"))
            .key(self.keys.merchant(m, "projection"))
            .key(self.keys.index(slot, "dirty"))
            .key(self.keys.index(slot, "due"))
            .arg(value.as_ref().map(to_json).transpose()?.unwrap_or_default())
            .arg(m)
            .arg(to_json(&projection)?)
            .arg(
                projection
                    .next_change_at
                    .map(day_score)
                    .map_or(String::new(), |s| s.to_string()),
            )
            .arg(&audit_json)
            .arg(self.changes_kept);
        if self.one_write() {
            self.add_tail_keys(&mut inv, &audit.target);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        if !self.one_write() {
            self.push_audit(&audit.target, &audit_json).await?;
            self.note_changes(vec![m.to_owned()]).await?;
        }
        Ok(())
    }

    async fn next_serial(&self) -> StoreResult<u32> {
        let n: u64 = ::redis::cmd("INCR")
            .arg(self.keys.global("serial", "next"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        u32::try_from(n).map_err(|_| StoreError::Conflict("code serials exhausted".into()))
    }

    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()> {
        let m = code.merchant.as_str();
        let serial = code.serial.to_string();
        let conflict =
            || StoreError::Conflict(format!("code serial {} already issued", code.serial));
        if self.claim("code-owner", &serial, m).await? == 0 {
            return Err(conflict());
        }
        let audit_json = audit.as_ref().map(to_json).transpose()?;
        let mut inv = SCRIPTS.issue_code.prepare_invoke();
        inv.key(self.keys.merchant(m, "codes"))
            .key(self.keys.merchant(m, "code-status"))
            .arg(&serial)
            .arg(to_json(&code)?)
            .arg(code.status.name())
            .arg(m)
            .arg(audit_json.as_deref().unwrap_or(""))
            .arg(self.changes_kept);
        let target = audit.as_ref().map_or("", |a| a.target.as_str());
        if self.one_write() {
            self.add_tail_keys(&mut inv, target);
        }
        let issued: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        if issued == 0 {
            return Err(conflict());
        }
        if !self.one_write() {
            if let Some(json) = &audit_json {
                self.push_audit(target, json).await?;
            }
            self.note_changes(vec![m.to_owned()]).await?;
        }
        Ok(())
    }

    async fn code(&self, serial: u32) -> StoreResult<Option<IssuedCode>> {
        let field = serial.to_string();
        let owner: Option<String> = ::redis::cmd("HGET")
            .arg(self.keys.index(slot_of(&field), "code-owner"))
            .arg(&field)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let Some(m) = owner else { return Ok(None) };
        let (json, status): (Option<String>, Option<String>) = ::redis::pipe()
            .hget(self.keys.merchant(&m, "codes"), &field)
            .hget(self.keys.merchant(&m, "code-status"), &field)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        json.map(|j| Self::code_from(&j, status.as_deref()))
            .transpose()
    }

    async fn inactive_codes(&self) -> StoreResult<Vec<(u32, CodeStatus)>> {
        // Only the merchants that own a code: the values of the serial →
        // merchant index.
        let keys = &self.keys;
        let owners = self
            .per_slot(
                |slot, pipe| {
                    pipe.hvals(keys.index(slot, "code-owner"));
                },
                string_set,
            )
            .await?;
        let mut ids = owners
            .into_iter()
            .flatten()
            .map(|s| merchant_id(&s))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort_unstable();
        ids.dedup();
        super::inactive_codes_of(self, ids).await
    }

    async fn codes_of(&self, id: &MerchantId) -> StoreResult<Vec<IssuedCode>> {
        let (codes, statuses): (HashMap<String, String>, HashMap<String, String>) = ::redis::pipe()
            .hgetall(self.keys.merchant(id.as_str(), "codes"))
            .hgetall(self.keys.merchant(id.as_str(), "code-status"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut out = codes
            .iter()
            .map(|(serial, json)| Self::code_from(json, statuses.get(serial).map(String::as_str)))
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|c| c.serial);
        Ok(out)
    }
    async fn scan_view(
        &self,
        id: &MerchantId,
    ) -> StoreResult<Option<(Projection, Vec<(u32, CodeStatus)>)>> {
        match self.scan_view_with_json(id).await? {
            Some(r) => Ok(Some((r.projection.parse()?, r.codes))),
            None => Ok(None),
        }
    }

    async fn scan_view_with_json(&self, id: &MerchantId) -> StoreResult<Option<ScanRead>> {
        // One round trip (both keys are in the merchant's slot), and the
        // codes' statuses only, not their JSON; connecting included, within
        // the scan's budget.
        let read = async {
            ::redis::pipe()
                .get(self.keys.merchant(id.as_str(), "projection"))
                .hgetall(self.keys.merchant(id.as_str(), "code-status"))
                .query_async(&mut self.read_conn().await)
                .await
        };
        let now = tokio::time::Instant::now();
        let started = super::SCAN_STARTED.try_with(|t| *t).unwrap_or(now);
        let (json, statuses): (Option<String>, Vec<(String, String)>) =
            match tokio::time::timeout_at(started + self.scan_read_limit, read).await {
                Ok(read) => read.map_err(|e| {
                    self.drop_read_conn(&e);
                    redis_err(e)
                })?,
                Err(_) => {
                    let why = format!(
                        "no answer within {} ms of the scan's start",
                        self.scan_read_limit.as_millis()
                    );
                    // Redis had its share of the time, not a scan that was
                    // already late (a stalled process): it is down.
                    if now.elapsed() >= self.scan_read_limit / 4 {
                        self.conn.trip(&why);
                        self.drop_read_conn(&io_timeout());
                    }
                    return Err(StoreError::Unavailable(format!("redis: {why}")));
                }
            };
        let Some(json) = json else {
            return Ok(None);
        };
        let codes = statuses
            .iter()
            .map(|(serial, status)| {
                let serial = serial
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("code serial `{serial}`")))?;
                let status = CodeStatus::from_name(status)
                    .ok_or_else(|| StoreError::Corrupt(format!("code status `{status}`")))?;
                Ok((serial, status))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(ScanRead {
            projection: StoredProjection::Json(json),
            codes,
        }))
    }

    async fn revoke_code(&self, serial: u32, audit: AuditEntry) -> StoreResult<Option<IssuedCode>> {
        let field = serial.to_string();
        let owner: Option<String> = ::redis::cmd("HGET")
            .arg(self.keys.index(slot_of(&field), "code-owner"))
            .arg(&field)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let Some(m) = owner else { return Ok(None) };
        let audit_json = to_json(&audit)?;
        let mut inv = SCRIPTS.revoke_code.prepare_invoke();
        inv.key(self.keys.merchant(&m, "codes"))
            .key(self.keys.merchant(&m, "code-status"))
            .arg(&field)
            .arg(&m)
            .arg(&audit_json)
            .arg(self.changes_kept);
        if self.one_write() {
            self.add_tail_keys(&mut inv, &audit.target);
        }
        let before: Option<(String, String)> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let Some((json, status)) = before else {
            return Ok(None);
        };
        let before = Self::code_from(&json, Some(status.as_str()).filter(|s| !s.is_empty()))?;
        if !self.one_write() && before.status != CodeStatus::Revoked {
            self.push_audit(&audit.target, &audit_json).await?;
            self.note_changes(vec![m]).await?;
        }
        Ok(Some(before))
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.push_audit(&entry.target, &to_json(&entry)?).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let key = match &filter.target {
            Some(t) => self.keys.audit_target(t),
            None => self.keys.audit_log(),
        };
        let mut conn = self.conn();
        let len: isize = ::redis::cmd("LLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let mut out = Vec::new();
        let mut end = len - 1;
        while end >= 0 && out.len() < limit {
            let start = (end - AUDIT_PAGE + 1).max(0);
            let rows: Vec<String> = ::redis::cmd("LRANGE")
                .arg(&key)
                .arg(start)
                .arg(end)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            for row in rows.iter().rev() {
                let e: AuditEntry = from_json(row)?;
                let keep = filter.actor.as_ref().is_none_or(|a| *a == e.actor)
                    && filter.since.is_none_or(|s| e.at >= s)
                    && filter.target.as_ref().is_none_or(|t| *t == e.target);
                if keep {
                    out.push(e);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            end = start - 1;
        }
        Ok(out)
    }

    async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let all: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.keys.global("tokens", ""))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut out = all
            .values()
            .map(|j| from_json::<ApiToken>(j))
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn note_refresh(&self, at: jiff::Timestamp) -> StoreResult<()> {
        ::redis::cmd("SET")
            .arg(self.keys.global("meta", "last-refresh"))
            .arg(at.as_second())
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn last_refresh(&self) -> StoreResult<Option<jiff::Timestamp>> {
        let secs: Option<i64> = ::redis::cmd("GET")
            .arg(self.keys.global("meta", "last-refresh"))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(secs.and_then(|s| jiff::Timestamp::from_second(s).ok()))
    }

    async fn put_token(&self, token: ApiToken) -> StoreResult<()> {
        ::redis::cmd("HSET")
            .arg(self.keys.global("tokens", ""))
            .arg(&token.id)
            .arg(to_json(&token)?)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<ApiToken>> {
        let json: Option<String> = ::redis::cmd("HGET")
            .arg(self.keys.global("tokens", ""))
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        json.as_deref().map(from_json).transpose()
    }

    async fn changes_since(&self, cursor: u64) -> StoreResult<(Option<Vec<MerchantId>>, u64)> {
        let mut conn = self.conn();
        let max: Option<u64> = ::redis::cmd("GET")
            .arg(self.keys.changes_seq())
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let max = max.unwrap_or(0);
        if max == cursor {
            return Ok((Some(Vec::new()), max));
        }
        // Behind by too much, first poll, or the count went backwards
        // (Redis lost its data): everything counts as changed.
        if cursor == 0 || max < cursor || max - cursor > self.max_changes_listed {
            return Ok((None, max));
        }
        let entries: Vec<(String, Vec<String>)> = ::redis::cmd("XRANGE")
            .arg(self.keys.changes())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_read_leaves_a_fifth_of_the_budget_at_most_20_ms_for_the_rest_of_the_scan() {
        let ms = Duration::from_millis;
        for (budget, read) in [(10, 8), (50, 40), (100, 80), (1000, 980), (10_000, 9980)] {
            assert_eq!(scan_read_limit(ms(budget)), ms(read), "budget {budget} ms");
        }
    }

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
    fn numbered_gives_each_item_its_place_among_the_distinct_values() {
        assert_eq!(
            numbered([5, 3, 5, 9].into_iter()),
            (vec![3, 5, 9], vec![2, 1, 2, 3])
        );
        assert_eq!(numbered(std::iter::empty()), (vec![], vec![]));
    }

    #[test]
    fn day_scores_order_like_dates() {
        let a = day_score(jiff::civil::date(2025, 12, 31));
        let b = day_score(jiff::civil::date(2026, 1, 1));
        assert!(a < b);
        assert_eq!(b, 20260101);
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("ysz").is_ok());
        assert!(check_prefix("t-1:x").is_ok());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("a{b}").is_err());
        assert!(check_prefix("a b").is_err());
    }
}
