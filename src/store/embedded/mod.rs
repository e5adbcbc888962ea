//! The embedded store: one SQLite database in WAL mode under the data
//! directory. No external service; a county runs on it.
//!
//! Why SQLite: it gives atomic multi-row writes (a killed refresh leaves either
//! the old or the new projection, never half of one) and lets the batch job
//! and the service run as separate processes on the same files. The service
//! learns about another process's writes from the `changes` table (see
//! [`ScanRead::changes_since`]).
//!
//! One file per concern: the connections and their settings here; the
//! schema and its migrations (`schema.rs`, SQL in `.sql` files); the
//! per-merchant record index (`record_index.rs`); the roles: the scan's
//! and regulators' reads (`reads.rs`), the service's own writes
//! (`writes.rs`), the batch job's side (`batch.rs`) with its bulk import
//! (`bulk.rs`) and grading inputs (`grading_inputs.rs`).

mod batch;
mod bulk;
mod grading_inputs;
mod reads;
mod record_index;
mod schema;
mod writes;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::sort::remove_stale_sort_dirs;
#[cfg(doc)]
use super::ScanRead;
use super::{StoreError, StoreResult};
use crate::model::{IssuedCode, MerchantId, Projection};

const DB_FILE: &str = "yisaozhi.sqlite";
const READERS: usize = 4;
/// Batches of sparse grading inputs read at once (at most [`READERS`]).
const SPARSE_READS_IN_FLIGHT: usize = 2;
/// Above this many pending changes a reader is told to drop its whole cache.
const MAX_CHANGES_LISTED: i64 = 50_000;
/// How many change rows are kept for slow readers.
const CHANGES_KEPT: i64 = 1_000_000;

/// SQLite-backed [`Store`](super::Store).
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

/// The open database: its connections (one writer, a few readers, the
/// checkpoint thread's), its directory and the sizes it works with.
struct Database {
    dir: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Set while a [`bulk::EmbeddedBulkImport`] in bulk mode is alive: one
    /// at a time (the `bulk_since` row is one), and no recovery of it meanwhile.
    importing: AtomicBool,
    scan_min: usize,
    sort_bytes: usize,
    bulk_min: u64,
    /// Tells the checkpoint thread to stop.
    stop: Arc<AtomicBool>,
    checkpoints: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Database {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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

/// Copies the WAL into the database on its own thread and connection
/// (passive checkpoints: never blocking readers or the writer), so the
/// writer's commits do not pay for the copying and its `fsync`s.
fn start_checkpoints(path: &Path, stop: Arc<AtomicBool>) -> Option<std::thread::JoinHandle<()>> {
    let path = path.to_owned();
    let started = std::thread::Builder::new()
        .name("ysz-checkpoint".into())
        .spawn(move || {
            let Ok(conn) = connect(&path, 1024) else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
    match started {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::warn!(error = %e, "no checkpoint thread; the writer checkpoints");
            None
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
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
const WRITER_CACHE_KIB: i64 = 32 * 1024;
const WRITER_BULK_CACHE_KIB: i64 = 256 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// An import expected to add at least this many records runs in bulk mode
/// (see [`BatchStore::begin_bulk_import`](super::BatchStore::begin_bulk_import); overridable with
/// `YSZ_EMBEDDED_BULK_MIN`, for tests).
const BULK_MIN_RECORDS: u64 = 100_000;
/// A regrade of at least this many merchants, and of at least a quarter of
/// all, reads records with one sequential scan and an external sort instead
/// of one index lookup per merchant (overridable with
/// `YSZ_EMBEDDED_SCAN_MIN`, for tests).
const SCAN_MIN: usize = 20_000;
/// Memory an external sort may use before it spills a sorted run to disk
/// (overridable with `YSZ_EMBEDDED_SORT_BYTES`, for tests).
const SORT_BYTES: usize = 256 << 20;
/// Merchants per grading batch above which the batch is read with range scans.
const RANGE_SCAN_MIN: usize = 64;

/// Lets the writer's page cache grow to [`WRITER_BULK_CACHE_KIB`] (for the
/// rest of the process: it is a maximum).
fn widen_writer_cache(writer: &Connection) -> StoreResult<()> {
    writer
        .pragma_update(None, "cache_size", -WRITER_BULK_CACHE_KIB)
        .map_err(sql)
}

/// The database file created mode 0600 before SQLite opens it, and its
/// journals narrowed to 0600 if a former run left them wider: SQLite
/// creates `-wal` and `-shm` with the database file's mode.
fn prepare_files(db: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    crate::files::prepare_file(db)
        .with_context(|| format!("cannot create store {}", db.display()))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut journal = db.as_os_str().to_owned();
        journal.push(suffix);
        let journal = std::path::PathBuf::from(journal);
        crate::files::restrict_file(&journal)
            .with_context(|| format!("cannot make {} private", journal.display()))?;
    }
    Ok(())
}

fn connect(path: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
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

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        crate::files::create_dir(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        prepare_files(&path)?;
        let mut writer = connect(&path, WRITER_CACHE_KIB)
            .with_context(|| format!("cannot open store {}", path.display()))?;
        schema::migrate(&mut writer)
            .with_context(|| format!("cannot prepare store schema in {}", path.display()))?;
        let readers = (0..READERS)
            .map(|_| connect(&path, READER_CACHE_KIB).map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| format!("cannot open store {}", path.display()))?;
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        remove_stale_sort_dirs(dir);
        let stop = Arc::new(AtomicBool::new(false));
        let checkpoints = start_checkpoints(&path, stop.clone());
        if checkpoints.is_some() {
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .with_context(|| format!("cannot open store {}", path.display()))?;
        }
        Ok(Self {
            db: Arc::new(Database {
                stop,
                checkpoints: Mutex::new(checkpoints),
                dir: dir.to_owned(),
                scan_min: env("YSZ_EMBEDDED_SCAN_MIN", SCAN_MIN),
                bulk_min: env("YSZ_EMBEDDED_BULK_MIN", BULK_MIN_RECORDS as usize) as u64,
                sort_bytes: env("YSZ_EMBEDDED_SORT_BYTES", SORT_BYTES),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                importing: AtomicBool::new(false),
            }),
        })
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
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

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
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
fn all_ok<T>(results: Vec<StoreResult<T>>) -> StoreResult<Vec<T>> {
    results.into_iter().collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// [`to_json`] for projections (about 1.5 KB): one allocation, not a dozen.
fn projection_json(p: &Projection) -> StoreResult<String> {
    let mut out = Vec::with_capacity(2048);
    serde_json::to_writer(&mut out, p).map_err(corrupt)?;
    String::from_utf8(out).map_err(corrupt)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(corrupt)
}

fn sql(e: rusqlite::Error) -> StoreError {
    unavailable(e)
}

fn merchant_ids(rows: Vec<String>) -> StoreResult<Vec<MerchantId>> {
    rows.iter()
        .map(|s| MerchantId::parse(s).map_err(corrupt))
        .collect()
}

fn code_row(json: String) -> StoreResult<IssuedCode> {
    from_json(&json)
}
