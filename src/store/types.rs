//! The store's data types: its error, what its reads return and what a bulk
//! import leaves for the regrade.

use jiff::Timestamp;

use crate::model::{CodeStatus, Grade, Merchant, Override, Projection, Record};

use super::sort;

/// A failure of the storage backend (not of the caller's input).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    #[error("conflict: {0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Filters for reading the audit log; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub target: Option<String>,
    pub actor: Option<String>,
    pub since: Option<Timestamp>,
    pub limit: usize,
}

/// What a batch of records did to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsAdded {
    pub inserted: u64,
    pub duplicate: u64,
}

/// Everything needed to regrade one merchant.
#[derive(Debug, Clone, PartialEq)]
pub struct GradingInput {
    pub merchant: Merchant,
    /// In import order.
    pub records: Vec<Record>,
    pub override_: Option<Override>,
    /// The effective grade of the stored projection, if there is one.
    pub previous: Option<Grade>,
}

/// What [`ScanRead::scan_view`](super::roles::ScanRead::scan_view) reads of a merchant.
#[derive(Debug)]
pub struct ScanView {
    pub projection: StoredProjection,
    /// Every code's status, by serial.
    pub codes: Vec<(u32, CodeStatus)>,
}

/// A projection as a backend read it.
#[derive(Debug)]
pub enum StoredProjection {
    Parsed(Box<Projection>),
    /// Exactly as stored (`serde_json` of a [`Projection`]), not yet parsed.
    Json(String),
}

impl StoredProjection {
    pub fn parse(self) -> StoreResult<Projection> {
        match self {
            StoredProjection::Parsed(p) => Ok(*p),
            StoredProjection::Json(j) => parse_projection_json(&j),
        }
    }
}

/// Reads a projection's stored JSON, or any part of it (`T` may be a subset
/// of [`Projection`]'s fields); bad JSON is [`StoreError::Corrupt`].
pub fn parse_projection_json<T: serde::de::DeserializeOwned>(json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("projection JSON: {e}")))
}

/// What a finished [`BulkImport`](super::roles::BulkImport) leaves for the regrade that follows it.
#[derive(Default)]
pub struct Imported {
    /// How many records that [`BulkImport::add_records`](super::roles::BulkImport::add_records) counted as inserted
    /// turned out to repeat the id of an earlier record of the same import
    /// (a backend that stores the records only at the end finds those
    /// then); they are duplicates, not stored.
    pub repeated: u64,
    /// The import's records sorted by merchant, when they were every
    /// record of the store.
    pub(crate) presorted: Option<Presorted>,
}

/// Every stored record sorted by (merchant, import order), left by a bulk
/// import into a store without records, so that the regrade that follows
/// reads the import's sorted runs (merged a second time) instead of reading
/// and parsing every record again. Only an optimisation: a backend uses it
/// only if the store still holds exactly `records` records (then they are
/// these, all of them); its sort directory goes when it is dropped.
pub(crate) struct Presorted {
    pub rows: sort::Sorted,
    pub records: u64,
}

tokio::task_local! {
    /// When the scan this task answers began (`Scanner::scan`): a store
    /// whose scan read has a time budget counts it from then, so that time
    /// spent before the read (verifying the signature) is in it too.
    pub static SCAN_STARTED: tokio::time::Instant;
}
