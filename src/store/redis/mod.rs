//! The Redis store: one Redis (`redis://HOST:PORT`) or a Redis Cluster
//! (`redis+cluster://HOST:PORT,...`) behind the same role traits ([`Store`](crate::store::Store)).
//!
//! Standalone uses one `ConnectionManager` built at start (multiplexed,
//! reconnecting, cloned per command); Cluster uses one `ClusterConnection`
//! (also multiplexed, one connection per node). Both get explicit connect and
//! response timeouts ([`RedisOptions`]).
//!
//! One module per concern:
//!
//! - `keys`: the key layout (every key, its type and what it holds) and the
//!   slot maths.
//! - `conn`: the connections, the circuit breaker of standalone Redis and
//!   the scan read's budget (what happens when Redis is down or hangs).
//! - `cluster`: connecting to a cluster that is settling, per-master
//!   pipelines.
//! - `lanes`: how a batch is spread over the multiplexed connection.
//! - `scripts`: the Lua scripts (`scripts/*.lua`).
//! - `writes`: every write, and what is atomic and in which order.
//! - `bulk`: bulk mode, a large refresh's import.
//! - `reads`, `changes` (the change stream that keeps replicas coherent),
//!   `migrate` (bringing an older standalone store to the current layout).
//!
//! The role impls below ([`ScanRead`], [`ServiceWrites`], [`BatchStore`],
//! [`RegulatorQueries`]) only send each method to its concern.
//!
//! Needs Redis ≥ 6.2 (`XADD MINID`, `SMISMEMBER`).

mod bulk;
mod changes;
mod cluster;
mod conn;
mod keys;
mod lanes;
mod migrate;
mod reads;
mod scripts;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use ::redis::RedisError;
use async_trait::async_trait;
use jiff::civil::Date;

pub use self::conn::{scan_read_limit, SCAN_BUDGET};
use self::conn::{Conn, LocalConns};
use self::keys::Keys;
pub use self::keys::{slot_of, slot_tag, SLOTS};
use super::{
    AuditFilter, BatchStore, BulkImport, GradingInput, Imported, RecordsAdded, RegulatorQueries,
    ScanRead, ScanView, ServiceWrites, StoreError, StoreResult,
};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, IssuedCode, Merchant, MerchantId, Override, Projection,
    Record,
};

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "ysz";
/// Items per script call (merchants, records or projections).
pub const CHUNK: usize = 200;
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
    /// cache ([`ScanRead::changes_since`] returns `None`).
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
/// Default [`RedisOptions::connect_wait`].
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

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

/// Redis-backed [`Store`](crate::store::Store) (standalone or cluster).
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
    /// Set while this process runs a bulk import (one at a time; its state
    /// is in its [`BulkImport`] value).
    importing: Arc<std::sync::atomic::AtomicBool>,
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

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

fn merchant_id(s: &str) -> StoreResult<MerchantId> {
    MerchantId::parse(s).map_err(corrupt)
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
    /// A store over `conn` (with per-thread read connections from `local`,
    /// standalone), its keys and limits as `opts` says.
    fn over(conn: Conn, local: Option<Arc<LocalConns>>, opts: RedisOptions) -> Self {
        let cluster = matches!(conn, Conn::Cluster(_));
        Self {
            conn,
            local,
            keys: Arc::new(Keys {
                prefix: opts.prefix,
                cluster,
            }),
            cluster,
            scan_read_limit: scan_read_limit(opts.scan_budget),
            max_changes_listed: opts.max_changes_listed,
            changes_kept: opts.changes_kept,
            bulk_min: opts.bulk_min,
            sort_bytes: opts.sort_bytes,
            importing: Arc::default(),
        }
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
}

#[async_trait]
impl ScanRead for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        conn::ping(self).await
    }

    async fn scan_view(&self, id: &MerchantId) -> StoreResult<Option<ScanView>> {
        reads::scan_view(self, id).await
    }

    async fn changes_since(&self, cursor: u64) -> StoreResult<(Option<Vec<MerchantId>>, u64)> {
        changes::changes_since(self, cursor).await
    }
}

#[async_trait]
impl ServiceWrites for RedisStore {
    async fn override_of(&self, id: &MerchantId) -> StoreResult<Option<Override>> {
        reads::override_of(self, id).await
    }

    async fn set_override(
        &self,
        id: &MerchantId,
        value: Option<Override>,
        projection: Projection,
        audit: AuditEntry,
    ) -> StoreResult<()> {
        writes::set_override(self, id, value, projection, audit).await
    }

    async fn next_serial(&self) -> StoreResult<u32> {
        writes::next_serial(self).await
    }

    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()> {
        writes::issue_code(self, code, audit).await
    }

    async fn code(&self, serial: u32) -> StoreResult<Option<IssuedCode>> {
        reads::code(self, serial).await
    }

    async fn codes_of(&self, id: &MerchantId) -> StoreResult<Vec<IssuedCode>> {
        reads::codes_of(self, id).await
    }

    async fn inactive_codes(&self) -> StoreResult<Vec<(u32, CodeStatus)>> {
        reads::inactive_codes(self).await
    }

    async fn revoke_code(&self, serial: u32, audit: AuditEntry) -> StoreResult<Option<IssuedCode>> {
        writes::revoke_code(self, serial, audit).await
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        writes::append_audit(self, entry).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        reads::audit(self, filter).await
    }

    async fn put_token(&self, token: ApiToken) -> StoreResult<()> {
        writes::put_token(self, token).await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<ApiToken>> {
        reads::token(self, id).await
    }

    async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        reads::tokens(self).await
    }
}

#[async_trait]
impl BatchStore for RedisStore {
    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64> {
        writes::upsert_merchants(self, merchants, None).await
    }

    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>> {
        reads::merchant(self, id).await
    }

    async fn known_merchants(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<MerchantId>> {
        reads::known_merchants(self, ids).await
    }

    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded> {
        writes::add_records(self, records, None).await
    }

    async fn records(&self, id: &MerchantId) -> StoreResult<Vec<Record>> {
        reads::records(self, id).await
    }

    async fn begin_bulk_import(&self, expected_records: u64) -> StoreResult<Box<dyn BulkImport>> {
        Ok(Box::new(
            bulk::begin_bulk_import(self, expected_records).await?,
        ))
    }

    async fn projection(&self, id: &MerchantId) -> StoreResult<Option<Projection>> {
        reads::projection(self, id).await
    }

    async fn put_projections(&self, projections: Vec<Projection>) -> StoreResult<()> {
        writes::put_projections(self, projections).await
    }

    async fn due_for_regrade(&self, as_of: Date) -> StoreResult<Vec<MerchantId>> {
        reads::due_for_regrade(self, as_of).await
    }

    async fn all_merchant_ids(&self) -> StoreResult<Vec<MerchantId>> {
        reads::all_merchant_ids(self).await
    }

    async fn grading_inputs(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<GradingInput>> {
        reads::grading_inputs(self, ids).await
    }

    async fn stream_grading_inputs(
        &self,
        ids: Vec<MerchantId>,
        batch: usize,
        imported: Option<Imported>,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        bulk::stream_grading_inputs(self, ids, batch, imported, tx).await
    }

    async fn note_refresh(&self, at: jiff::Timestamp) -> StoreResult<()> {
        writes::note_refresh(self, at).await
    }

    async fn last_refresh(&self) -> StoreResult<Option<jiff::Timestamp>> {
        reads::last_refresh(self).await
    }
}

#[async_trait]
impl RegulatorQueries for RedisStore {
    async fn projections_page(
        &self,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        reads::projections_page(self, after, limit).await
    }

    async fn for_each_projection(
        &self,
        each: &mut (dyn FnMut(Projection) + Send),
    ) -> StoreResult<()> {
        reads::for_each_projection(self, each).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("ysz").is_ok());
        assert!(check_prefix("t-1:x").is_ok());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("a{b}").is_err());
        assert!(check_prefix("a b").is_err());
    }
}
