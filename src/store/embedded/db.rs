//! The open database (its connections and the sizes it works with), the
//! store that holds it, and the helpers every concern of the embedded store
//! shares.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::model::{IssuedCode, MerchantId, Projection};
use crate::store::types::{StoreError, StoreResult};

pub(super) const DB_FILE: &str = "yisaozhi.sqlite";
pub(super) const READERS: usize = 4;
/// Batches of sparse grading inputs read at once (at most [`READERS`]).
pub(super) const SPARSE_READS_IN_FLIGHT: usize = 2;
/// Above this many pending changes a reader is told to drop its whole cache.
pub(super) const MAX_CHANGES_LISTED: i64 = 50_000;
/// How many change rows are kept for slow readers.
pub(super) const CHANGES_KEPT: i64 = 1_000_000;

/// SQLite-backed [`Store`](crate::store::roles::Store).
#[derive(Clone)]
pub struct EmbeddedStore {
    pub(super) db: Arc<Database>,
}

/// The open database: its connections (one writer, a few readers, the
/// checkpoint thread's), its directory and the sizes it works with.
pub(super) struct Database {
    pub(super) dir: std::path::PathBuf,
    pub(super) writer: Mutex<Connection>,
    pub(super) readers: Vec<Mutex<Connection>>,
    pub(super) next_reader: AtomicUsize,
    /// Set while a [`bulk::EmbeddedBulkImport`] in bulk mode is alive: one
    /// at a time (the `bulk_since` row is one), and no recovery of it meanwhile.
    pub(super) importing: AtomicBool,
    pub(super) sequential_read_min: usize,
    pub(super) sort_bytes: usize,
    pub(super) bulk_min: u64,
    /// Wakes the checkpoint thread, or tells it to stop.
    pub(super) checkpoint: Arc<CheckpointSignal>,
    /// Set for the rest of the process once it writes most of the store
    /// (a bulk import, a regrade read in one scan): the checkpoint thread
    /// then leaves the WAL to grow with the job (bounded by what it
    /// writes, truncated when the store closes) instead of holding the
    /// writer back for full checkpoints, which cost such a job a third
    /// more peak memory.
    pub(super) bulk_writes: Arc<AtomicBool>,
    pub(super) checkpoints: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Rows in a commit that wakes the checkpoint thread ([`CheckpointSignal`]).
const LARGE_COMMIT_ROWS: usize = 1024;

/// What wakes the checkpoint thread before its pause ends: a large commit
/// (a batch of projections, whose frames are then copied while the next
/// batch is graded, not up to a pause later; small writes, thousands a
/// second, leave the thread to its pace) or the store closing (which then
/// neither waits out the pause nor has the thread copy the WAL once more
/// before the closing checkpoint). With this and its last write cut in two,
/// a 1 % incremental refresh at 10^6 took ×0.85 the time on copies of one
/// store (`benches/incremental_ab.sh`), ×0.92 over nine fresh stores
/// (`benches/refresh_ab.sh`).
#[derive(Default)]
pub(super) struct CheckpointSignal {
    state: Mutex<SignalState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct SignalState {
    stopped: bool,
    /// A large commit since the thread last woke.
    committed: bool,
}

impl CheckpointSignal {
    fn state(&self) -> std::sync::MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn stop(&self) {
        self.state().stopped = true;
        self.wake.notify_all();
    }

    /// Notes a commit of `rows` rows, waking the thread if that is at
    /// least [`LARGE_COMMIT_ROWS`].
    pub(super) fn committed(&self, rows: usize) {
        if rows < LARGE_COMMIT_ROWS {
            return;
        }
        self.state().committed = true;
        self.wake.notify_all();
    }

    /// Pauses for `pause`, or less if a commit or the stop comes first:
    /// whether stopped.
    pub(super) fn pause(&self, pause: std::time::Duration) -> bool {
        let (mut state, _) = self
            .wake
            .wait_timeout_while(self.state(), pause, |s| !s.stopped && !s.committed)
            .unwrap_or_else(|p| p.into_inner());
        state.committed = false;
        state.stopped
    }
}

impl Database {
    /// Notes that this process writes most of the store
    /// ([`Database::bulk_writes`]).
    pub(super) fn note_bulk_writes(&self) {
        self.bulk_writes.store(true, Ordering::Relaxed);
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.checkpoint.stop();
        // Wait for a checkpoint in progress: while it runs, the truncating
        // one below would find the database busy and leave the WAL (and the
        // next process would rebuild its index and copy it again).
        let thread = self
            .checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        // Copy what is left of the WAL into the database and truncate it,
        // so the next process does not pay for this one's writes.
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Page cache of one connection, in KiB (SQLite's negative `cache_size`).
/// A maximum: it fills only as far as pages are used, each page in memory
/// the process touches for the first time (slow to get from the kernel).
/// Small writes and reads touch pages all over the file once each, which
/// a larger cache would only make the process allocate: the writer's
/// cache grows to [`WRITER_BULK_CACHE_KIB`] only for a job that writes
/// most of the store (a first bulk load, a regrade of most merchants),
/// whose index pages it uses again and again.
pub(super) const WRITER_CACHE_KIB: i64 = 32 * 1024;
pub(super) const WRITER_BULK_CACHE_KIB: i64 = 256 * 1024;
pub(super) const READER_CACHE_KIB: i64 = 16 * 1024;
/// An import expected to add at least this many records runs in bulk mode
/// (see [`BatchStore::begin_bulk_import`](crate::store::roles::BatchStore::begin_bulk_import); overridable with
/// `YSZ_EMBEDDED_BULK_MIN`, for tests).
pub(super) const BULK_MIN_RECORDS: u64 = 100_000;
/// A regrade of at least this many merchants, and of at least a quarter of
/// all, reads records with one sequential scan and an external sort instead
/// of one index lookup per merchant (overridable with
/// `YSZ_EMBEDDED_SEQUENTIAL_READ_MIN`, for tests).
pub(super) const SEQUENTIAL_READ_MIN: usize = 20_000;
/// Memory an external sort may use before it spills a sorted run to disk
/// (overridable with `YSZ_EMBEDDED_SORT_BYTES`, for tests).
pub(super) const SORT_BYTES: usize = 256 << 20;
/// Merchants per grading batch above which the batch is read with range scans.
pub(super) const RANGE_READ_MIN: usize = 64;

/// Lets the writer's page cache grow to [`WRITER_BULK_CACHE_KIB`] (for the
/// rest of the process: it is a maximum).
pub(super) fn widen_writer_cache(writer: &Connection) -> StoreResult<()> {
    writer
        .pragma_update(None, "cache_size", -WRITER_BULK_CACHE_KIB)
        .map_err(sql)
}

impl EmbeddedStore {
    pub(super) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let i = db.next_reader.fetch_add(1, Ordering::Relaxed) % db.readers.len();
            let conn = db.readers[i].lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(unavailable)?
    }

    pub(super) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let out = f(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
        .map_err(unavailable)?
    }
}

/// The values of `results`, or the first error. For rayon's output: a
/// parallel `collect` into a `Result` cannot know the length beforehand and
/// builds the vector from pieces (reallocating and copying them); a
/// parallel `collect` into a `Vec` of `Result`s writes each in its place.
pub(super) fn all_ok<T>(results: Vec<StoreResult<T>>) -> StoreResult<Vec<T>> {
    results.into_iter().collect()
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// [`to_json`] for projections (about 1.5 KB): one allocation, not a dozen.
pub(super) fn projection_json(p: &Projection) -> StoreResult<String> {
    let mut out = Vec::with_capacity(2048);
    serde_json::to_writer(&mut out, p).map_err(corrupt)?;
    String::from_utf8(out).map_err(corrupt)
}

impl EmbeddedStore {
    /// The `json` column of the one row `query` selects by `key` (`?1`),
    /// parsed; `None` if there is no such row.
    pub(super) async fn json_row<T>(
        &self,
        query: &'static str,
        key: String,
    ) -> StoreResult<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.read(move |c| {
            let json: Option<String> = c
                .prepare_cached(query)
                .and_then(|mut q| q.query_row([key], |r| r.get(0)).optional())
                .map_err(sql)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub(super) fn sql(e: rusqlite::Error) -> StoreError {
    unavailable(e)
}

pub(super) fn merchant_ids(rows: Vec<String>) -> StoreResult<Vec<MerchantId>> {
    rows.iter()
        .map(|s| MerchantId::parse(s).map_err(corrupt))
        .collect()
}

pub(super) fn code_row(json: String) -> StoreResult<IssuedCode> {
    from_json(&json)
}

/// A connection to the database at `path` in the store's settings, with a
/// page cache of `cache_kib`.
pub(super) fn connect(path: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    // After a big refresh the WAL is reset; do not keep gigabytes of it.
    conn.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
    Ok(conn)
}
