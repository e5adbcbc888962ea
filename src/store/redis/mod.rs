//! The Redis store: one Redis (`redis://HOST:PORT`) or a Redis Cluster
//! (`redis+cluster://HOST:PORT,...`) behind the same role traits ([`Store`](crate::store::roles::Store)).
//!
//! Standalone uses one `ConnectionManager` built at start (multiplexed,
//! reconnecting, cloned per command); Cluster uses one `ClusterConnection`
//! (also multiplexed, one connection per node). Both get explicit connect and
//! response timeouts ([`RedisOptions`]).
//!
//! One module per concern:
//!
//! - `options`: [`RedisOptions`] and its defaults; `common`: errors and JSON.
//! - `keys`: the key layout (every key, its type and what it holds) and the
//!   slot maths.
//! - `conn`: the connections, the circuit breaker of standalone Redis and
//!   the scan read's budget (what happens when Redis is down or hangs);
//!   [`RedisStore`] itself.
//! - `cluster`: connecting to a cluster that is settling, per-master
//!   pipelines.
//! - `lanes`: how a batch is spread over the multiplexed connection.
//! - `scripts`: the Lua scripts (`scripts/*.lua`).
//! - `writes`: every write, and what is atomic and in which order.
//! - `bulk`: bulk mode, a large refresh's import; `import`: the import
//!   value's [`BulkImport`] methods.
//! - `reads`, `changes` (the change stream that keeps replicas coherent),
//!   `migrate` (bringing an older standalone store to the current layout).
//! - `search_index` (the regulators' index, written after the projections
//!   and codes) and `search` (the queries it answers).
//!
//! The role impls below ([`ScanRead`], [`ServiceWrites`], [`BatchStore`],
//! [`RegulatorQueries`]) only send each method to its concern.
//!
//! Needs Redis ≥ 6.2 (`XADD MINID`, `SMISMEMBER`).

mod bulk;
mod changes;
mod cluster;
mod conn;
mod documents;
mod import;
mod keys;
mod lanes;
mod migrate;
mod reads;
mod scripts;
mod search;
mod search_index;
mod writes;

mod common;
mod options;

use async_trait::async_trait;
use jiff::civil::Date;

pub use self::conn::{scan_read_limit, RedisStore, SCAN_BUDGET};
pub use self::keys::{slot_of, slot_tag, SLOTS};
pub use self::options::{
    RedisOptions, BULK_MIN_RECORDS, CHANGES_KEPT, CHUNK, CONNECT_WAIT, DEFAULT_PREFIX,
    MAX_CHANGES_LISTED, SORT_BYTES,
};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, IssuedCode, Merchant, MerchantId, Override, Projection,
    Record,
};
use crate::store::changes::FeedPage;
use crate::store::query::{MerchantQuery, Page, ReprintItem, Stats};
use crate::store::roles::{BatchStore, BulkImport, RegulatorQueries, ScanRead, ServiceWrites};
use crate::store::types::{
    AuditFilter, GradingInput, Imported, RecordsAdded, ScanView, StoreResult,
};

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

    async fn feed(&self, after: Option<u64>, limit: usize) -> StoreResult<FeedPage> {
        changes::feed(self, after, limit).await
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
        let indexed = [projection.clone()];
        writes::set_override(self, id, value, projection, audit).await?;
        search_index::index(self, &indexed).await
    }

    async fn next_serial(&self) -> StoreResult<u32> {
        writes::next_serial(self).await
    }

    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()> {
        let merchant = code.merchant.clone();
        writes::issue_code(self, code, audit).await?;
        search_index::note_printed(self, &merchant).await
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
        let before = writes::revoke_code(self, serial, audit).await?;
        if let Some(code) = &before {
            search_index::note_printed(self, &code.merchant).await?;
        }
        Ok(before)
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
        let rows = projections
            .iter()
            .map(|p| (p.merchant.id.to_string(), search_index::row(p)))
            .collect();
        writes::put_projections(self, projections).await?;
        search_index::index_rows(self, rows).await
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

    async fn search(&self, query: &MerchantQuery) -> StoreResult<Page<Projection>> {
        search::search(self, query).await
    }

    async fn search_after(
        &self,
        query: &MerchantQuery,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        search::search_after(self, query, after, limit).await
    }

    async fn stats(&self, region: Option<&str>) -> StoreResult<Stats> {
        search::stats(self, region).await
    }

    async fn reprint(&self) -> StoreResult<Vec<ReprintItem>> {
        search::reprint(self).await
    }

    async fn reprint_count(&self, region: Option<&str>) -> StoreResult<u64> {
        search::reprint_count(self, region).await
    }
}
