//! The role traits a backend implements ([`Store`] is all of them) and
//! the defaults shared by backends.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::Timestamp;

use super::changes::FeedPage;
use super::documents::Documents;
use super::query;
use super::types::{AuditFilter, GradingInput, Imported, RecordsAdded, ScanView, StoreResult};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, IssuedCode, Merchant, MerchantId, Override, Projection,
    Record,
};

/// The scan's read and the change stream: all the scan path and the
/// service's cache coherence ask of a store.
#[async_trait]
pub trait ScanRead: Send + Sync + 'static {
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// What a scan needs of a merchant, in one read: its projection (`None`
    /// if it has none; left as stored JSON when the backend read it as such,
    /// so that a scan answer can carry it without parsing and serializing it
    /// again) and the status of each of its codes by serial.
    async fn scan_view(&self, id: &MerchantId) -> StoreResult<Option<ScanView>>;

    /// Merchants whose stored data changed after `cursor`, and the new cursor;
    /// `None` instead of the list when so much changed that everything should
    /// be treated as changed. Lets every service process drop stale cache
    /// entries within a second of a write by any other process.
    async fn changes_since(&self, cursor: u64) -> StoreResult<(Option<Vec<MerchantId>>, u64)>;

    /// The public change feed: up to `limit` public changes after position
    /// `after` (`None`: from the oldest kept), in the store's one order of
    /// positions, read in one snapshot with where the log stands.
    async fn feed(&self, after: Option<u64>, limit: usize) -> StoreResult<FeedPage>;
}

/// What the service owns and must never lose: overrides, issued codes, API
/// tokens and the audit log. Writes that belong together are atomic: an
/// override, its projection and its audit entry are written together.
#[async_trait]
pub trait ServiceWrites: Send + Sync + 'static {
    async fn override_of(&self, id: &MerchantId) -> StoreResult<Option<Override>>;
    /// Sets (or with `None` clears) an override together with the projection
    /// it produces and its audit entry.
    async fn set_override(
        &self,
        id: &MerchantId,
        value: Option<Override>,
        projection: Projection,
        audit: AuditEntry,
    ) -> StoreResult<()>;

    /// A fresh serial number, never handed out before.
    async fn next_serial(&self) -> StoreResult<u32>;
    /// Stores a new active code; the merchant's previous active code becomes
    /// superseded. Audited in the same write when `audit` is given.
    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()>;
    async fn code(&self, serial: u32) -> StoreResult<Option<IssuedCode>>;
    async fn codes_of(&self, id: &MerchantId) -> StoreResult<Vec<IssuedCode>>;
    /// The serial and status of every code that is no longer active
    /// (revoked or superseded), ascending by serial: the signed status list.
    async fn inactive_codes(&self) -> StoreResult<Vec<(u32, CodeStatus)>>;
    /// Revokes a code with its audit entry, atomically; returns the code as
    /// it was (`None`: unknown serial). A code already revoked is left as it
    /// is and `audit` is not written, so a repeated revocation is visible to
    /// the caller (status `revoked` before) and never audited twice.
    async fn revoke_code(&self, serial: u32, audit: AuditEntry) -> StoreResult<Option<IssuedCode>>;

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()>;
    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>>;

    async fn put_token(&self, token: ApiToken) -> StoreResult<()>;
    async fn token(&self, id: &str) -> StoreResult<Option<ApiToken>>;
    /// Every stored token (hashes only), for `yisaozhi tokens list`.
    async fn tokens(&self) -> StoreResult<Vec<ApiToken>>;
}

/// The batch job's side: facts from upstream (merchants and records), bulk
/// imports, grading inputs and the projections derived from them. A
/// projection never appears without the records it was computed from being
/// stored.
#[async_trait]
pub trait BatchStore: Send + Sync + 'static {
    /// Inserts or replaces merchants; each new or changed one is marked for
    /// regrading. Returns how many were new or changed.
    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64>;
    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>>;
    /// Which of `ids` are known merchants.
    async fn known_merchants(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<MerchantId>>;
    /// Adds records; a record whose id is already stored is a duplicate and is
    /// left as it was. Merchants that got new records are marked for regrading.
    /// A backend stores each record's canonical JSON (its `Serialize`
    /// output), never the bytes it was read from, and tells records apart by
    /// the value of their id.
    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded>;
    /// A merchant's records in import order.
    async fn records(&self, id: &MerchantId) -> StoreResult<Vec<Record>>;

    /// Starts an import of about `expected_records` records; the records
    /// go through the returned [`BulkImport`], which a large import lets the
    /// backend write in bulk. Until [`BulkImport::finish`], every write stays
    /// atomic and a kill at any point still leaves every merchant with new
    /// records due for regrading.
    async fn begin_bulk_import(&self, expected_records: u64) -> StoreResult<Box<dyn BulkImport>>;

    async fn projection(&self, id: &MerchantId) -> StoreResult<Option<Projection>>;
    /// Writes projections and clears the regrade mark of their merchants, atomically.
    async fn put_projections(&self, projections: Vec<Projection>) -> StoreResult<()>;
    /// Merchants to regrade as of `as_of`: marked ones, ones without a
    /// projection, and ones whose `next_change_at` ≤ `as_of`.
    async fn due_for_regrade(&self, as_of: Date) -> StoreResult<Vec<MerchantId>>;
    async fn all_merchant_ids(&self) -> StoreResult<Vec<MerchantId>>;

    /// The grading inputs of `ids` (unknown merchants are left out), in the
    /// order of `ids`. The batch job calls it with a few thousand ids at a
    /// time; backends answer in a few round trips instead of four per merchant.
    async fn grading_inputs(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<GradingInput>>;

    /// Sends the grading inputs of `ids` to `tx` in batches of about `batch`,
    /// in the order of `ids`, and returns when all are sent (or `tx` is
    /// closed). For regrading many merchants at once: a backend may then
    /// read everything in one pass instead of merchant by merchant, or take
    /// the records from `imported`, the import that preceded the regrade.
    async fn stream_grading_inputs(
        &self,
        ids: Vec<MerchantId>,
        batch: usize,
        imported: Option<Imported>,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()>;

    /// Sends, in batches of about `batch` and in merchant id order, each
    /// merchant that has a sampling record with its sampling records only
    /// (in import order; merchants without one are left out), and returns
    /// when all are sent (or `tx` is closed): the open data's sampling
    /// results. The default reads every merchant's grading inputs; a
    /// backend may skip the other records before it sorts them.
    async fn stream_sampling_inputs(
        &self,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        sampling_of_all_inputs(self, batch, tx).await
    }

    /// Records that a refresh completed at `at` (for monitoring).
    async fn note_refresh(&self, at: Timestamp) -> StoreResult<()>;
    /// When the last refresh completed, if known.
    async fn last_refresh(&self) -> StoreResult<Option<Timestamp>>;
}

/// An import under way, begun by [`BatchStore::begin_bulk_import`]. What
/// it leaves for the regrade is the [`Imported`] that [`BulkImport::finish`]
/// returns, never state in the store for the next call to pick up.
#[async_trait]
pub trait BulkImport: Send + Sync {
    /// [`BatchStore::upsert_merchants`], as part of this import (a backend
    /// may defer their regrade marks to its end).
    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64>;

    /// [`BatchStore::add_records`], as part of this import.
    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded>;

    /// Ends the import; call it before [`BatchStore::due_for_regrade`], also
    /// after a failed import. A process killed before leaves the store for
    /// the next run to complete.
    async fn finish(self: Box<Self>) -> StoreResult<Imported>;
}

/// Regulator queries over projections (search, stats, reprint list) and
/// paging through them; the defaults read every projection page by page.
#[async_trait]
pub trait RegulatorQueries: ServiceWrites {
    /// Up to `limit` projections in merchant-id order, after `after`.
    async fn projections_page(
        &self,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>>;

    /// Calls `each` for every projection, in pages.
    async fn for_each_projection(
        &self,
        each: &mut (dyn FnMut(Projection) + Send),
    ) -> StoreResult<()> {
        let mut after = None;
        loop {
            let page = self.projections_page(after.clone(), 1000).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.merchant.id.clone());
            for p in page {
                each(p);
            }
        }
    }

    /// Regulator search; the default reads every projection.
    async fn search(&self, query: &query::MerchantQuery) -> StoreResult<query::Page<Projection>> {
        let per_page = query.per_page.clamp(1, 500);
        let skip = query.page.max(1).saturating_sub(1).saturating_mul(per_page);
        let mut page = query::Page {
            total: 0,
            page: query.page.max(1),
            per_page,
            items: Vec::new(),
        };
        self.for_each_projection(&mut |p| {
            if query.matches(&p) {
                if page.total as usize >= skip && page.items.len() < per_page {
                    page.items.push(p);
                }
                page.total += 1;
            }
        })
        .await?;
        Ok(page)
    }

    /// Up to `limit` projections matching `query` (its page and per-page
    /// ignored) in merchant-id order after `after`: how the ledger reads
    /// every match with bounded memory. The default reads projections page
    /// by page until it has `limit` matches.
    async fn search_after(
        &self,
        query: &query::MerchantQuery,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        let mut after = after;
        let mut out = Vec::new();
        while out.len() < limit {
            let page = self.projections_page(after.clone(), 1000).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.merchant.id.clone());
            for p in page {
                if out.len() < limit && query.matches(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Counts by grade, region and category for merchants in `region` (prefix).
    async fn stats(&self, region: Option<&str>) -> StoreResult<query::Stats> {
        let mut stats = query::Stats::default();
        self.for_each_projection(&mut |p| {
            if region.is_none_or(|r| p.merchant.region.as_str().starts_with(r)) {
                stats.add(&p);
            }
        })
        .await?;
        Ok(stats)
    }

    /// Merchants whose active code was printed with another grade than the
    /// live one.
    async fn reprint(&self) -> StoreResult<Vec<query::ReprintItem>> {
        let mut projections = Vec::new();
        self.for_each_projection(&mut |p| projections.push(p))
            .await?;
        let mut out = Vec::new();
        for p in projections {
            let codes = self.codes_of(&p.merchant.id).await?;
            if let Some(code) = codes
                .iter()
                .find(|c| c.status == CodeStatus::Active && c.printed_grade != p.grade)
            {
                out.push(query::ReprintItem::new(&p, code));
            }
        }
        Ok(out)
    }

    /// How many merchants in `region` (prefix) are on the reprint list.
    async fn reprint_count(&self, region: Option<&str>) -> StoreResult<u64> {
        Ok(self
            .reprint()
            .await?
            .iter()
            .filter(|r| region.is_none_or(|p| r.region.starts_with(p)))
            .count() as u64)
    }
}

/// A whole storage backend: every role. Handlers and the batch job hold a
/// [`SharedStore`] and ask for the role they use (`&dyn ScanRead`, ...);
/// they never know which backend they talk to.
pub trait Store: ScanRead + ServiceWrites + BatchStore + RegulatorQueries + Documents {}

impl<T: ScanRead + ServiceWrites + BatchStore + RegulatorQueries + Documents> Store for T {}

pub type SharedStore = Arc<dyn Store>;

/// [`BatchStore::stream_grading_inputs`] by [`BatchStore::grading_inputs`]
/// of one batch after another: a backend's way when it has no one-pass read
/// for these merchants.
pub(crate) async fn stream_by_lookups<S: BatchStore + ?Sized>(
    store: &S,
    ids: Vec<MerchantId>,
    batch: usize,
    tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
) -> StoreResult<()> {
    for chunk in ids.chunks(batch.max(1)) {
        let inputs = store.grading_inputs(chunk.to_vec()).await?;
        if tx.send(inputs).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// [`BatchStore::stream_sampling_inputs`] by
/// [`BatchStore::stream_grading_inputs`] of every merchant, keeping the
/// sampling records.
pub(crate) async fn sampling_of_all_inputs<S: BatchStore + ?Sized>(
    store: &S,
    batch: usize,
    tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
) -> StoreResult<()> {
    let mut ids = store.all_merchant_ids().await?;
    ids.sort_unstable();
    let (all_tx, mut all_rx) = tokio::sync::mpsc::channel::<Vec<GradingInput>>(2);
    let forward = async move {
        while let Some(mut inputs) = all_rx.recv().await {
            for input in &mut inputs {
                input.records.retain(Record::is_sampling);
            }
            inputs.retain(|i| !i.records.is_empty());
            if !inputs.is_empty() && tx.send(inputs).await.is_err() {
                // Dropping `all_rx` stops the read too.
                return;
            }
        }
    };
    let (read, ()) = tokio::join!(
        store.stream_grading_inputs(ids, batch, None, all_tx),
        forward
    );
    read
}

/// The inactive codes of `ids`, read through [`ServiceWrites::codes_of`]
/// with a few reads in flight, ascending by serial.
pub(crate) async fn inactive_codes_of<S: ServiceWrites + ?Sized>(
    store: &S,
    ids: Vec<MerchantId>,
) -> StoreResult<Vec<(u32, CodeStatus)>> {
    use futures_util::{StreamExt, TryStreamExt};
    const IN_FLIGHT: usize = 32;
    let mut out: Vec<(u32, CodeStatus)> = futures_util::stream::iter(ids)
        .map(|id| async move { store.codes_of(&id).await })
        .buffer_unordered(IN_FLIGHT)
        .map_ok(|codes| {
            futures_util::stream::iter(
                codes
                    .into_iter()
                    .filter(|c| c.status != CodeStatus::Active)
                    .map(|c| Ok((c.serial, c.status))),
            )
        })
        .try_flatten()
        .try_collect()
        .await?;
    out.sort_unstable_by_key(|e| e.0);
    Ok(out)
}
