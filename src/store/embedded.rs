//! The embedded store: one SQLite database in WAL mode under the data
//! directory. No external service; a county runs on it.
//!
//! Why SQLite: it gives atomic multi-row writes (a killed refresh leaves either
//! the old or the new projection, never half of one) and lets the batch job
//! and the service run as separate processes on the same files. The service
//! learns about another process's writes from the `changes` table (see
//! [`Store::changes_since`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::civil::Date;
use rusqlite::{params, Connection, OptionalExtension};

use super::sort::{remove_stale_sort_dirs, SortRow, Sorted, Sorter};
use super::{
    ApiToken, AuditEntry, AuditFilter, CodeStatus, GradingInput, IssuedCode, RecordsAdded, Store,
    StoreError, StoreResult,
};
use crate::domain::{Grade, MerchantId};
use crate::grading::{Override, Projection};
use crate::records::{Merchant, Record};

const DB_FILE: &str = "yisaozhi.sqlite";
const READERS: usize = 4;
/// Batches of sparse grading inputs read at once (at most [`READERS`]).
const SPARSE_READS_IN_FLIGHT: usize = 2;
/// Above this many pending changes a reader is told to drop its whole cache.
const MAX_CHANGES_LISTED: i64 = 50_000;
/// How many change rows are kept for slow readers.
const CHANGES_KEPT: i64 = 1_000_000;

/// `records.seq` is a plain rowid alias, not AUTOINCREMENT: records are
/// never deleted, so a new record always gets a larger seq than every
/// committed one (what `bulk_since` relies on) without an update of
/// `sqlite_sequence` per insert. Stores made with AUTOINCREMENT keep it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS merchants (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    merchant TEXT NOT NULL,
    json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_index (merchant TEXT PRIMARY KEY, seqs BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirty (merchant TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS projections (
    merchant TEXT PRIMARY KEY,
    grade TEXT NOT NULL,
    next_change_at TEXT,
    json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS projections_due ON projections (next_change_at);
CREATE TABLE IF NOT EXISTS overrides (merchant TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    serial INTEGER PRIMARY KEY,
    merchant TEXT NOT NULL,
    status TEXT NOT NULL,
    json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS codes_by_merchant ON codes (merchant, serial);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    actor TEXT NOT NULL, target TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, seq);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, merchant TEXT NOT NULL);
";

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Set between `begin_bulk_import` and `end_bulk_import`.
    bulk: Mutex<Option<Bulk>>,
    /// Left by the last bulk import for the regrade; see [`Presorted`].
    presorted: Mutex<Option<Presorted>>,
    scan_min: usize,
    sort_bytes: usize,
    bulk_min: u64,
    /// Tells the checkpoint thread to stop.
    stop: Arc<std::sync::atomic::AtomicBool>,
    checkpoints: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
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
fn start_checkpoints(
    path: &Path,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
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

/// A bulk import in progress in this process.
///
/// Records are inserted without their entry in `record_index` and without a
/// regrade mark. The `bulk_since` row in `meta`, committed before the first
/// record, says that every record after that `seq` may lack both; the
/// (merchant, seq) keys are collected here and sorted (with bounded memory),
/// and at the end written merchant by merchant in key order — one pass over
/// the index instead of millions of random inserts — together with the
/// marks, in one transaction that also removes `bulk_since`. A process
/// killed before that leaves `bulk_since`, and the next writer finishes the
/// job from the records table ([`recover_bulk`]).
struct Bulk {
    keys: Sorter,
    /// Set while the records table held nothing but this import's records,
    /// numbered 1, 2, 3, ... without a gap: the keys then carry each
    /// record too, in its binary form ([`crate::records::encode_record`]),
    /// and the sorted output is kept for the regrade ([`Presorted`]).
    whole: bool,
    /// The last seq pushed.
    last_seq: i64,
}

/// Records per [`EncodedRecords`].
const RECORDS_PER_BUFFER: usize = 1024;

/// What the records table and a bulk import's key sort take of a run of
/// records, made in parallel before the write: each record's JSON, and its
/// binary form ([`crate::records::encode_record`]) when wanted, all of
/// them in one buffer instead of one allocation per record.
struct EncodedRecords {
    json: Vec<String>,
    bin: Vec<u8>,
    /// Where each record's binary form ends in `bin`.
    ends: Vec<usize>,
}

impl EncodedRecords {
    /// Serializes each record to its canonical JSON and, with `binary`,
    /// encodes it.
    fn of(records: &[Record], binary: bool) -> StoreResult<Self> {
        let mut out = EncodedRecords {
            json: Vec::with_capacity(records.len()),
            bin: Vec::new(),
            ends: Vec::with_capacity(if binary { records.len() } else { 0 }),
        };
        for r in records {
            out.json.push(to_json(r)?);
            if binary {
                crate::records::encode_record(r, &mut out.bin);
                out.ends.push(out.bin.len());
            }
        }
        Ok(out)
    }

    /// The binary form of the `i`th record, or nothing without one.
    fn bin(&self, i: usize) -> &[u8] {
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bin[start..end]
    }
}

/// Every stored record sorted by (merchant, seq), in binary form, left by a
/// bulk import into an empty records table, so that the regrade that
/// follows it reads the import's sorted runs (merged a second time) instead
/// of scanning the table, sorting it again and parsing every record's JSON.
/// Only an optimisation: it lives in this process (its sort directory goes
/// when it is dropped), and it is used only if the table still ends at
/// `last_seq` (then it holds exactly the records 1..=`last_seq`, all of them).
struct Presorted {
    rows: Sorted,
    last_seq: i64,
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
/// (see [`Store::begin_bulk_import`]; overridable with
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
        migrate(&mut writer)
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
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoints = start_checkpoints(&path, stop.clone());
        if checkpoints.is_some() {
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .with_context(|| format!("cannot open store {}", path.display()))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                stop,
                checkpoints: Mutex::new(checkpoints),
                dir: dir.to_owned(),
                scan_min: env("YSZ_EMBEDDED_SCAN_MIN", SCAN_MIN),
                bulk_min: env("YSZ_EMBEDDED_BULK_MIN", BULK_MIN_RECORDS as usize) as u64,
                sort_bytes: env("YSZ_EMBEDDED_SORT_BYTES", SORT_BYTES),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                bulk: Mutex::new(None),
                presorted: Mutex::new(None),
            }),
        })
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i].lock().unwrap_or_else(|p| p.into_inner());
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
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
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

/// Creates the schema; moves a store made before `record_index` existed
/// (when an index or a key table kept records by merchant) to it.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let exists = |c: &Connection, name: &str| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |r| r.get(0),
        )
    };
    let old =
        exists(conn, "records").map_err(sql)? && !exists(conn, "record_index").map_err(sql)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    tx.execute_batch(SCHEMA).map_err(sql)?;
    // Since schema 2, "never graded" is found from the marks alone: mark
    // any merchant an older version left without a projection or a mark.
    let version: i64 = tx
        .query_row(
            "SELECT COALESCE((SELECT value FROM meta WHERE key = 'schema'), 1)",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if version < 2 {
        tx.execute_batch(
            "INSERT OR IGNORE INTO dirty (merchant)
                 SELECT id FROM merchants WHERE id NOT IN (SELECT merchant FROM projections);
             INSERT INTO meta (key, value) VALUES ('schema', 2)
                 ON CONFLICT(key) DO UPDATE SET value = 2;",
        )
        .map_err(sql)?;
    }
    if old {
        index_records_since(&tx, 0, false)?;
        tx.execute_batch(
            "DROP INDEX IF EXISTS records_by_merchant; DROP TABLE IF EXISTS record_keys;",
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(unavailable)
}

/// Adds every record after `since` to `record_index` (and, with `mark`,
/// marks its merchant for regrading), reading the records table.
fn index_records_since(tx: &rusqlite::Transaction<'_>, since: i64, mark: bool) -> StoreResult<()> {
    let mut q = tx
        .prepare("SELECT merchant, seq FROM records WHERE seq > ?1 ORDER BY merchant, seq")
        .map_err(sql)?;
    let mut rows = q.query([since]).map_err(sql)?;
    let flush = |group: Option<(String, Vec<i64>)>| -> StoreResult<()> {
        if let Some((m, seqs)) = group {
            append_seqs(tx, &m, &seqs)?;
            if mark {
                tx.prepare_cached("INSERT OR IGNORE INTO dirty (merchant) VALUES (?1)")
                    .and_then(|mut q| q.execute([&m]))
                    .map_err(sql)?;
            }
        }
        Ok(())
    };
    let mut current: Option<(String, Vec<i64>)> = None;
    while let Some(row) = rows.next().map_err(sql)? {
        let m: String = row.get(0).map_err(sql)?;
        let seq: i64 = row.get(1).map_err(sql)?;
        match &mut current {
            Some((cm, seqs)) if *cm == m => seqs.push(seq),
            _ => flush(current.replace((m, vec![seq])))?,
        }
    }
    flush(current)
}

/// A merchant's record seqs as stored in `record_index`: 8 bytes each,
/// little-endian, ascending (import order).
fn decode_seqs(blob: &[u8]) -> impl Iterator<Item = i64> + '_ {
    blob.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
}

/// Adds `new` (ascending) to a merchant's entry in `record_index`.
fn append_seqs(tx: &rusqlite::Transaction<'_>, merchant: &str, new: &[i64]) -> StoreResult<()> {
    let old: Option<Vec<u8>> = tx
        .prepare_cached("SELECT seqs FROM record_index WHERE merchant = ?1")
        .and_then(|mut q| q.query_row([merchant], |r| r.get(0)).optional())
        .map_err(sql)?;
    let mut seqs: Vec<i64> = old
        .as_deref()
        .map(|b| decode_seqs(b).collect())
        .unwrap_or_default();
    let in_order = match (seqs.last(), new.first()) {
        (Some(last), Some(first)) => first > last,
        _ => true,
    };
    seqs.extend_from_slice(new);
    if !in_order {
        seqs.sort_unstable();
        seqs.dedup();
    }
    let blob: Vec<u8> = seqs.iter().flat_map(|s| s.to_le_bytes()).collect();
    tx.prepare_cached(
        "INSERT INTO record_index (merchant, seqs) VALUES (?1, ?2)
         ON CONFLICT(merchant) DO UPDATE SET seqs = ?2",
    )
    .and_then(|mut q| q.execute(params![merchant, blob]))
    .map_err(sql)?;
    Ok(())
}

/// A merchant's stored records (JSON) in import order.
fn records_json(c: &Connection, merchant: &str) -> StoreResult<Vec<String>> {
    let blob: Option<Vec<u8>> = c
        .prepare_cached("SELECT seqs FROM record_index WHERE merchant = ?1")
        .and_then(|mut q| q.query_row([merchant], |r| r.get(0)).optional())
        .map_err(sql)?;
    match blob {
        Some(blob) => records_by_seq(c, &blob),
        None => Ok(Vec::new()),
    }
}

/// The records (JSON) with the seqs of a `record_index` entry.
fn records_by_seq(c: &Connection, blob: &[u8]) -> StoreResult<Vec<String>> {
    let mut q = c
        .prepare_cached("SELECT json FROM records WHERE seq = ?1")
        .map_err(sql)?;
    let mut out = Vec::with_capacity(blob.len() / 8);
    for seq in decode_seqs(blob) {
        let json: Option<String> = q.query_row([seq], |r| r.get(0)).optional().map_err(sql)?;
        out.extend(json);
    }
    Ok(out)
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

fn note_change(tx: &rusqlite::Transaction<'_>, merchant: &str) -> StoreResult<()> {
    tx.execute("INSERT INTO changes (merchant) VALUES (?1)", [merchant])
        .map_err(sql)?;
    Ok(())
}

fn insert_audit(tx: &rusqlite::Transaction<'_>, e: &AuditEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit (at, actor, target, json) VALUES (?1, ?2, ?3, ?4)",
        params![e.at.to_string(), e.actor, e.target, to_json(e)?],
    )
    .map_err(sql)?;
    Ok(())
}

fn put_projection(tx: &rusqlite::Transaction<'_>, p: &Projection) -> StoreResult<()> {
    let next_change_at = p.next_change_at.map(|d| d.to_string());
    let json = projection_json(p)?;
    let row = ProjectionRow {
        id: p.merchant.id.as_str(),
        grade: p.grade.name(),
        next_change_at: next_change_at.as_deref(),
        json: &json,
    };
    row.put(tx)
}

/// Projections a [`SerializedProjections`] holds.
const PROJECTIONS_PER_BUFFER: usize = 256;

/// The JSON of a few hundred projections in one buffer (one allocation
/// instead of one per projection), made in parallel outside the write.
struct SerializedProjections {
    json: String,
    /// Where each projection's JSON ends in `json`.
    ends: Vec<usize>,
    next_change_at: Vec<Option<String>>,
}

impl SerializedProjections {
    fn of(projections: &[Projection]) -> StoreResult<Self> {
        let mut json = Vec::with_capacity(projections.len() * 2048);
        let mut ends = Vec::with_capacity(projections.len());
        for p in projections {
            serde_json::to_writer(&mut json, p).map_err(corrupt)?;
            ends.push(json.len());
        }
        Ok(SerializedProjections {
            json: String::from_utf8(json).map_err(corrupt)?,
            ends,
            next_change_at: projections
                .iter()
                .map(|p| p.next_change_at.map(|d| d.to_string()))
                .collect(),
        })
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The JSON of the `i`th projection (each ends on a character boundary).
    fn json(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.json[start..self.ends[i]]
    }
}

/// A projection ready to be written: serialized beforehand, so that a batch
/// can be serialized in parallel outside the write.
struct ProjectionRow<'a> {
    id: &'a str,
    grade: &'static str,
    next_change_at: Option<&'a str>,
    json: &'a str,
}

impl ProjectionRow<'_> {
    /// Writes the projection, clears its merchant's regrade mark and notes
    /// the change for the service's caches.
    fn put(&self, tx: &rusqlite::Transaction<'_>) -> StoreResult<()> {
        tx.prepare_cached(
            "INSERT INTO projections (merchant, grade, next_change_at, json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(merchant) DO UPDATE SET grade = ?2, next_change_at = ?3, json = ?4",
        )
        .and_then(|mut q| q.execute(params![self.id, self.grade, self.next_change_at, self.json]))
        .map_err(sql)?;
        tx.prepare_cached("DELETE FROM dirty WHERE merchant = ?1")
            .and_then(|mut q| q.execute([self.id]))
            .map_err(sql)?;
        tx.prepare_cached("INSERT INTO changes (merchant) VALUES (?1)")
            .and_then(|mut q| q.execute([self.id]))
            .map_err(sql)?;
        Ok(())
    }
}

fn merchant_ids(rows: Vec<String>) -> StoreResult<Vec<MerchantId>> {
    rows.iter()
        .map(|s| MerchantId::parse(s).map_err(corrupt))
        .collect()
}

fn code_row(json: String) -> StoreResult<IssuedCode> {
    from_json(&json)
}

/// Finishes what a bulk import killed before its end left undone: the
/// index entries and the regrade marks of every record stored since it began.
fn recover_bulk(conn: &mut Connection) -> StoreResult<()> {
    let since: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'bulk_since'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql)?;
    let Some(since) = since else {
        return Ok(());
    };
    tracing::warn!(
        since,
        "an earlier bulk import did not finish; completing its index and marks"
    );
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    index_records_since(&tx, since, true)?;
    tx.execute("DELETE FROM meta WHERE key = 'bulk_since'", [])
        .map_err(sql)?;
    tx.commit().map_err(unavailable)
}

/// The rows of an ordered `SELECT key, value ...`, read in step with a
/// sorted list of keys (a merge join).
struct Cursor<'s> {
    rows: rusqlite::Rows<'s>,
    head: Option<(String, String)>,
    done: bool,
}

impl<'s> Cursor<'s> {
    fn new(rows: rusqlite::Rows<'s>) -> Self {
        Cursor {
            rows,
            head: None,
            done: false,
        }
    }

    /// The value for `key`, skipping smaller keys.
    fn seek(&mut self, key: &str) -> StoreResult<Option<String>> {
        loop {
            if self.head.is_none() && !self.done {
                match self.rows.next().map_err(sql)? {
                    Some(row) => {
                        self.head = Some((row.get(0).map_err(sql)?, row.get(1).map_err(sql)?))
                    }
                    None => self.done = true,
                }
            }
            match &self.head {
                None => return Ok(None),
                Some((k, _)) if k.as_str() < key => self.head = None,
                Some((k, _)) if k.as_str() == key => return Ok(self.head.take().map(|(_, v)| v)),
                Some(_) => return Ok(None),
            }
        }
    }
}

/// Grading inputs of many merchants (sorted `ids`) in one pass: a
/// sequential scan of the records table sorted by merchant with bounded
/// memory ([`Sorter`]) — or the sorted records a bulk import left
/// ([`Presorted`]) —, merged batch by batch with range scans of merchants,
/// overrides and projections. Random lookups into a table of ten million
/// records cost several microseconds each; this costs a fraction of one.
///
/// The records are read in one snapshot, which ends before the first batch
/// is sent: a read transaction held through the whole regrade would keep
/// every projection it writes in the WAL (a checkpoint may not copy pages
/// past the oldest reader's snapshot), leaving all of it to copy at the end.
/// Each batch's merchants, overrides and grades are read in one snapshot.
fn scan_grading_inputs(
    inner: &Inner,
    ids: &[MerchantId],
    all: bool,
    batch: usize,
    tx: &tokio::sync::mpsc::Sender<Vec<GradingInput>>,
) -> StoreResult<()> {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    widen_writer_cache(&inner.writer.lock().unwrap_or_else(|p| p.into_inner()))?;
    let conn = connect(&inner.dir.join(DB_FILE), READER_CACHE_KIB).map_err(unavailable)?;
    conn.execute_batch("BEGIN").map_err(sql)?;
    // The first read: the snapshot the records are read in.
    let max_seq: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |r| {
            r.get(0)
        })
        .map_err(sql)?;
    let presorted = inner
        .presorted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .filter(|p| p.last_seq == max_seq);
    let from_bulk = presorted.is_some();
    let mut records = match presorted {
        Some(p) => p.rows,
        None => {
            let mut sorter = Sorter::new(&inner.dir, inner.sort_bytes);
            // Every merchant (a full regrade): no need to pick records out.
            let wanted: Option<HashSet<&str>> =
                (!all).then(|| ids.iter().map(MerchantId::as_str).collect());
            let mut q = conn
                .prepare("SELECT seq, merchant, json FROM records")
                .map_err(sql)?;
            let mut rows = q.query([]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let m = row.get_ref(1).map_err(sql)?.as_str().map_err(corrupt)?;
                if wanted.as_ref().is_none_or(|w| w.contains(m)) {
                    let json = row.get_ref(2).map_err(sql)?.as_str().map_err(corrupt)?;
                    sorter
                        .push(m, row.get(0).map_err(sql)?, json.as_bytes())
                        .map_err(unavailable)?;
                }
            }
            sorter.finish().map_err(unavailable)?
        }
    };
    conn.execute_batch("COMMIT").map_err(sql)?;
    tracing::info!(
        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        from_bulk,
        "records scanned and sorted by merchant"
    );
    let mut row = SortRow::default();
    let mut more = records.next_into(&mut row).map_err(unavailable)?;
    let mut raw: Vec<RawInput> = Vec::with_capacity(batch);
    let send = |raw: Vec<RawInput>| -> StoreResult<bool> {
        let raw = fill_by_range(&conn, raw)?;
        let inputs = all_ok(raw.into_par_iter().map(RawInput::parse).collect())?;
        Ok(tx.blocking_send(inputs).is_ok())
    };
    for id in ids {
        let mut input = RawInput {
            id: id.as_str().to_owned(),
            binary: from_bulk,
            ..RawInput::default()
        };
        while more && row.merchant.as_slice() <= id.as_str().as_bytes() {
            if row.merchant == id.as_str().as_bytes() {
                input.push_record(&row.payload);
            }
            more = records.next_into(&mut row).map_err(unavailable)?;
        }
        raw.push(input);
        if raw.len() >= batch && !send(std::mem::take(&mut raw))? {
            return Ok(());
        }
    }
    if !raw.is_empty() {
        send(raw)?;
    }
    Ok(())
}

/// Completes a batch of [`RawInput`]s (sorted by id, records already in)
/// with their merchants, overrides and previous grades: three range scans
/// over the batch's ids in one read transaction. Ids that are not a known
/// merchant are left out.
fn fill_by_range(c: &Connection, mut raw: Vec<RawInput>) -> StoreResult<Vec<RawInput>> {
    let (Some(first), Some(last)) = (raw.first(), raw.last()) else {
        return Ok(raw);
    };
    let (first, last) = (first.id.clone(), last.id.clone());
    c.execute_batch("BEGIN").map_err(sql)?;
    let filled = (|| {
        for (n, query) in [
            "SELECT id, json FROM merchants WHERE id >= ?1 AND id <= ?2 ORDER BY id",
            "SELECT merchant, json FROM overrides WHERE merchant >= ?1 AND merchant <= ?2 ORDER BY merchant",
            "SELECT merchant, grade FROM projections WHERE merchant >= ?1 AND merchant <= ?2 ORDER BY merchant",
        ]
        .into_iter()
        .enumerate()
        {
            let mut q = c.prepare_cached(query).map_err(sql)?;
            let mut cursor = Cursor::new(q.query(params![first, last]).map_err(sql)?);
            for input in &mut raw {
                let value = cursor.seek(&input.id)?;
                match n {
                    0 => input.merchant = value.unwrap_or_default(),
                    1 => input.override_ = value,
                    _ => input.previous = value,
                }
            }
        }
        StoreResult::Ok(())
    })();
    c.execute_batch("COMMIT").map_err(sql)?;
    filled?;
    raw.retain(|input| !input.merchant.is_empty());
    Ok(raw)
}

/// A merchant's grading input as stored, parsed later in parallel.
#[derive(Default)]
struct RawInput {
    id: String,
    /// JSON; empty if the merchant is unknown.
    merchant: String,
    /// The records in import order, each as a little-endian `u32` length
    /// and that many bytes: JSON, or with `binary` the form of
    /// [`crate::records::encode_record`]. One buffer per merchant instead
    /// of one allocation per record.
    records: Vec<u8>,
    /// How many records `records` holds.
    count: usize,
    binary: bool,
    override_: Option<String>,
    previous: Option<String>,
}

impl RawInput {
    fn push_record(&mut self, bytes: &[u8]) {
        if self.records.is_empty() {
            // Most merchants have a few records of some 100 bytes each.
            self.records.reserve(1024);
        }
        self.count += 1;
        self.records
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.records.extend_from_slice(bytes);
    }

    fn parse(self) -> StoreResult<GradingInput> {
        // The records parser's typed fast path, not `Value`: this is the
        // batch job's hottest loop.
        let merchant = crate::records::parse_stored_merchant(&self.merchant).map_err(corrupt)?;
        let mut records = Vec::with_capacity(self.count);
        let mut rest = &self.records[..];
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes(*len) as usize;
            if tail.len() < len {
                return Err(corrupt("truncated record in a grading input"));
            }
            let (item, tail) = tail.split_at(len);
            rest = tail;
            let record = if self.binary {
                crate::records::decode_record(&merchant.id, item)
            } else {
                std::str::from_utf8(item)
                    .map_err(|e| e.to_string())
                    .and_then(crate::records::parse_stored_record)
            };
            records.push(record.map_err(corrupt)?);
        }
        Ok(GradingInput {
            merchant,
            records,
            override_: self.override_.as_deref().map(from_json).transpose()?,
            previous: self.previous.as_deref().and_then(Grade::from_name),
        })
    }
}

/// Grading inputs, four indexed lookups per merchant.
fn raw_inputs_by_id(c: &Connection, ids: &[MerchantId]) -> StoreResult<Vec<RawInput>> {
    let mut qm = c
        .prepare_cached("SELECT json FROM merchants WHERE id = ?1")
        .map_err(sql)?;
    let mut qo = c
        .prepare_cached("SELECT json FROM overrides WHERE merchant = ?1")
        .map_err(sql)?;
    let mut qp = c
        .prepare_cached("SELECT grade FROM projections WHERE merchant = ?1")
        .map_err(sql)?;
    let mut qi = c
        .prepare_cached("SELECT seqs FROM record_index WHERE merchant = ?1")
        .map_err(sql)?;
    let mut out = Vec::with_capacity(ids.len());
    // (seq, which input): the records of the whole batch are read in seq
    // order, not merchant by merchant, so that consecutive lookups go
    // forward through the table and share its upper pages.
    let mut wanted: Vec<(i64, usize)> = Vec::new();
    for id in ids {
        let id = id.as_str();
        let merchant: Option<String> = qm.query_row([id], |r| r.get(0)).optional().map_err(sql)?;
        let Some(merchant) = merchant else {
            continue;
        };
        let seqs: Option<Vec<u8>> = qi.query_row([id], |r| r.get(0)).optional().map_err(sql)?;
        wanted.extend(
            seqs.as_deref()
                .into_iter()
                .flat_map(decode_seqs)
                .map(|seq| (seq, out.len())),
        );
        out.push(RawInput {
            merchant,
            override_: qo.query_row([id], |r| r.get(0)).optional().map_err(sql)?,
            previous: qp.query_row([id], |r| r.get(0)).optional().map_err(sql)?,
            ..RawInput::default()
        });
    }
    wanted.sort_unstable();
    let mut qr = c
        .prepare_cached("SELECT json FROM records WHERE seq = ?1")
        .map_err(sql)?;
    for (seq, i) in wanted {
        // Ascending seqs: each merchant's records stay in import order.
        let json: Option<String> = qr.query_row([seq], |r| r.get(0)).optional().map_err(sql)?;
        if let Some(json) = json {
            out[i].push_record(json.as_bytes());
        }
    }
    Ok(out)
}

/// Grading inputs of sorted `ids` with four range scans over
/// `[first, last]`, or `None` if the ids are too sparse in that range (more
/// than twice as many merchants in it) for scans to pay.
fn raw_inputs_by_range(c: &Connection, ids: &[MerchantId]) -> StoreResult<Option<Vec<RawInput>>> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(Some(Vec::new()));
    };
    let (first, last) = (first.as_str(), last.as_str());
    let cap = 2 * ids.len() as i64;
    let merchants: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT id, json FROM merchants WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(sql)?
        .query_map(params![first, last, cap + 1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    if merchants.len() as i64 > cap {
        return Ok(None);
    }
    let slot = |m: &str| ids.binary_search_by(|id| id.as_str().cmp(m)).ok();
    let mut out: Vec<Option<RawInput>> = Vec::with_capacity(ids.len());
    out.resize_with(ids.len(), || None);
    for (id, json) in merchants {
        if let Some(i) = slot(&id) {
            out[i] = Some(RawInput {
                merchant: json,
                ..RawInput::default()
            });
        }
    }
    {
        let mut q = c
            .prepare_cached(
                "SELECT merchant, seqs FROM record_index WHERE merchant >= ?1 AND merchant <= ?2",
            )
            .map_err(sql)?;
        let mut rows = q.query(params![first, last]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let m = row.get_ref(0).map_err(sql)?.as_str().map_err(corrupt)?;
            if let Some(input) = slot(m).and_then(|i| out[i].as_mut()) {
                let blob = row.get_ref(1).map_err(sql)?.as_blob().map_err(corrupt)?;
                for json in records_by_seq(c, blob)? {
                    input.push_record(json.as_bytes());
                }
            }
        }
    }
    for (table, column) in [("overrides", "json"), ("projections", "grade")] {
        let mut q = c
            .prepare_cached(&format!(
                "SELECT merchant, {column} FROM {table} WHERE merchant >= ?1 AND merchant <= ?2"
            ))
            .map_err(sql)?;
        let mut rows = q.query(params![first, last]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let m: String = row.get(0).map_err(sql)?;
            if let Some(input) = slot(&m).and_then(|i| out[i].as_mut()) {
                let v: String = row.get(1).map_err(sql)?;
                match table {
                    "overrides" => input.override_ = Some(v),
                    _ => input.previous = Some(v),
                }
            }
        }
    }
    Ok(Some(out.into_iter().flatten().collect()))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await
    }

    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64> {
        // Serialized in parallel before the write.
        let rows = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            all_ok(
                merchants
                    .par_iter()
                    .map(|m| Ok((m.id.clone(), to_json(m)?)))
                    .collect(),
            )
        })
        .await
        .map_err(unavailable)??;
        self.write(move |tx| {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO merchants (id, json) VALUES (?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET json = ?2 WHERE json <> ?2",
                )
                .map_err(sql)?;
            // New merchants are marked too, so that "never graded" is found
            // from the marks, not by scanning every merchant.
            let mut mark = tx
                .prepare_cached("INSERT OR IGNORE INTO dirty (merchant) VALUES (?1)")
                .map_err(sql)?;
            let mut changed = 0;
            for (id, json) in &rows {
                let n = put.execute(params![id.as_str(), json]).map_err(sql)?;
                if n > 0 {
                    mark.execute([id.as_str()]).map_err(sql)?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
    }

    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>> {
        let id = id.clone();
        self.read(move |c| {
            let json: Option<String> = c
                .query_row(
                    "SELECT json FROM merchants WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn known_merchants(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<MerchantId>> {
        self.read(move |c| {
            let mut q = c
                .prepare_cached("SELECT 1 FROM merchants WHERE id = ?1")
                .map_err(sql)?;
            let mut known = Vec::new();
            for id in ids {
                if q.exists([id.as_str()]).map_err(sql)? {
                    known.push(id);
                }
            }
            Ok(known)
        })
        .await
    }

    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded> {
        use rayon::prelude::*;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // Into the empty records table of a bulk import, each record
            // also goes to the key sort in its binary form, for the regrade.
            let binary = inner
                .bulk
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|b| b.whole);
            // Each record's canonical JSON, never the bytes it was read
            // from: the layout of the input does not reach the store.
            let encoded = all_ok(
                records
                    .par_chunks(RECORDS_PER_BUFFER)
                    .map(|chunk| EncodedRecords::of(chunk, binary))
                    .collect(),
            )?;
            let mut bulk = inner.bulk.lock().unwrap_or_else(|p| p.into_inner());
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut added = RecordsAdded::default();
            let mut touched: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
            {
                let mut put = tx
                    .prepare_cached(
                        "INSERT INTO records (id, merchant, json) VALUES (?1, ?2, ?3)
                         ON CONFLICT(id) DO NOTHING",
                    )
                    .map_err(sql)?;
                let rows = encoded.iter().flat_map(|e| {
                    e.json
                        .iter()
                        .enumerate()
                        .map(move |(i, json)| (json, e.bin(i)))
                });
                for (r, (json, bin)) in records.iter().zip(rows) {
                    let n = put
                        .execute(params![r.id, r.merchant.as_str(), json])
                        .map_err(sql)?;
                    if n == 0 {
                        added.duplicate += 1;
                        continue;
                    }
                    added.inserted += 1;
                    let seq = tx.last_insert_rowid();
                    let merchant = r.merchant.as_str();
                    match bulk.as_mut() {
                        Some(b) => {
                            b.whole &= binary && seq == b.last_seq + 1;
                            b.last_seq = seq;
                            let payload = if b.whole { bin } else { &[] };
                            b.keys.push(merchant, seq, payload).map_err(unavailable)?
                        }
                        None => touched.entry(merchant).or_default().push(seq),
                    }
                }
            }
            for (m, seqs) in &mut touched {
                seqs.sort_unstable();
                append_seqs(&tx, m, seqs)?;
                tx.prepare_cached("INSERT OR IGNORE INTO dirty (merchant) VALUES (?1)")
                    .and_then(|mut q| q.execute([m]))
                    .map_err(sql)?;
            }
            tx.commit().map_err(unavailable)?;
            drop(touched);
            // Ten thousands of small strings: freed on another thread, not
            // on the one every write waits for.
            rayon::spawn(move || drop((records, encoded)));
            Ok(added)
        })
        .await
        .map_err(unavailable)?
    }

    async fn records(&self, id: &MerchantId) -> StoreResult<Vec<Record>> {
        let id = id.clone();
        self.read(move |c| {
            records_json(c, id.as_str())?
                .iter()
                .map(|j| crate::records::parse_stored_record(j).map_err(corrupt))
                .collect()
        })
        .await
    }

    async fn projection(&self, id: &MerchantId) -> StoreResult<Option<Projection>> {
        let id = id.clone();
        self.read(move |c| {
            let json: Option<String> = c
                .query_row(
                    "SELECT json FROM projections WHERE merchant = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn put_projections(&self, projections: Vec<Projection>) -> StoreResult<()> {
        use rayon::prelude::*;
        // Serialized in parallel before the write, a few hundred to a buffer.
        let (projections, chunks) = tokio::task::spawn_blocking(move || {
            let chunks = all_ok(
                projections
                    .par_chunks(PROJECTIONS_PER_BUFFER)
                    .map(SerializedProjections::of)
                    .collect(),
            );
            chunks.map(|chunks| (projections, chunks))
        })
        .await
        .map_err(unavailable)??;
        self.write(move |tx| {
            let mut rows = projections.iter();
            for chunk in &chunks {
                for i in 0..chunk.len() {
                    let Some(p) = rows.next() else { break };
                    let row = ProjectionRow {
                        id: p.merchant.id.as_str(),
                        grade: p.grade.name(),
                        next_change_at: chunk.next_change_at[i].as_deref(),
                        json: chunk.json(i),
                    };
                    row.put(tx)?;
                }
            }
            tx.execute(
                "DELETE FROM changes WHERE seq < (SELECT MAX(seq) FROM changes) - ?1",
                [CHANGES_KEPT],
            )
            .map_err(sql)?;
            // Freed on another thread, not on the one every write waits for.
            rayon::spawn(move || drop((projections, chunks)));
            Ok(())
        })
        .await
    }

    async fn grading_inputs(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<GradingInput>> {
        self.read(move |c| {
            use rayon::prelude::*;
            // One read transaction for the batch: one snapshot, and not a
            // lock taken and released (fcntl calls, a WAL index check) for
            // each of its several statements per merchant and per record.
            let snapshot = c.unchecked_transaction().map_err(sql)?;
            let sorted = ids.windows(2).all(|w| w[0] < w[1]);
            let by_range = if ids.len() >= RANGE_SCAN_MIN && sorted {
                raw_inputs_by_range(c, &ids)?
            } else {
                None
            };
            let raw = match by_range {
                Some(raw) => raw,
                None => raw_inputs_by_id(c, &ids)?,
            };
            drop(snapshot);
            all_ok(raw.into_par_iter().map(RawInput::parse).collect())
        })
        .await
    }

    async fn stream_grading_inputs(
        &self,
        ids: Vec<MerchantId>,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let batch = batch.max(1);
        let sorted = ids.windows(2).all(|w| w[0] < w[1]);
        let (dense, all) = if sorted && ids.len() >= self.inner.scan_min {
            let total: i64 = self
                .read(|c| {
                    c.query_row("SELECT COUNT(*) FROM merchants", [], |r| r.get(0))
                        .map_err(sql)
                })
                .await?;
            (ids.len() as i64 * 4 >= total, ids.len() as i64 >= total)
        } else {
            (false, false)
        };
        if !dense {
            // A few batches read at once, on different reader connections
            // (each a random-access walk of the records table), sent in order.
            use futures_util::stream::{StreamExt, TryStreamExt};
            let chunks: Vec<Vec<MerchantId>> = ids.chunks(batch).map(<[_]>::to_vec).collect();
            let mut batches = futures_util::stream::iter(chunks)
                .map(|chunk| self.grading_inputs(chunk))
                .buffered(SPARSE_READS_IN_FLIGHT);
            while let Some(inputs) = batches.try_next().await? {
                if tx.send(inputs).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || scan_grading_inputs(&inner, &ids, all, batch, &tx))
            .await
            .map_err(unavailable)?
    }

    async fn begin_bulk_import(&self, expected_records: u64) -> StoreResult<()> {
        if expected_records < self.inner.bulk_min {
            return Ok(());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut bulk = inner.bulk.lock().unwrap_or_else(|p| p.into_inner());
            if bulk.is_some() {
                return Ok(());
            }
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            recover_bulk(&mut conn)?;
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let since: i64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |r| {
                    r.get(0)
                })
                .map_err(sql)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('bulk_since', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = ?1",
                [since],
            )
            .map_err(sql)?;
            tx.commit().map_err(unavailable)?;
            if since == 0 {
                widen_writer_cache(&conn)?;
            }
            *inner.presorted.lock().unwrap_or_else(|p| p.into_inner()) = None;
            *bulk = Some(Bulk {
                keys: Sorter::new(&inner.dir, inner.sort_bytes / 2),
                whole: since == 0,
                last_seq: since,
            });
            tracing::debug!(since, "bulk import started");
            Ok(())
        })
        .await
        .map_err(unavailable)?
    }

    async fn end_bulk_import(&self) -> StoreResult<u64> {
        // Ids repeated within the import are found as its records arrive.
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut bulk = inner.bulk.lock().unwrap_or_else(|p| p.into_inner());
            let Some(b) = bulk.take() else {
                return Ok(());
            };
            let started = std::time::Instant::now();
            let mut keys = b.keys.finish().map_err(unavailable)?;
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut n = 0u64;
            {
                // Merchants without a projection are due anyway.
                let mut mark = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO dirty (merchant)
                         SELECT ?1 WHERE EXISTS (SELECT 1 FROM projections WHERE merchant = ?1)",
                    )
                    .map_err(sql)?;
                let mut flush = |m: &[u8], seqs: &[i64]| -> StoreResult<()> {
                    if !seqs.is_empty() {
                        let m = std::str::from_utf8(m).map_err(corrupt)?;
                        append_seqs(&tx, m, seqs)?;
                        mark.execute([m]).map_err(sql)?;
                    }
                    Ok(())
                };
                let mut row = SortRow::default();
                let mut merchant: Vec<u8> = Vec::new();
                let mut seqs: Vec<i64> = Vec::new();
                while keys.next_into(&mut row).map_err(unavailable)? {
                    n += 1;
                    if row.merchant != merchant {
                        flush(&merchant, &seqs)?;
                        seqs.clear();
                        merchant.clone_from(&row.merchant);
                    }
                    seqs.push(row.seq);
                }
                flush(&merchant, &seqs)?;
            }
            tx.execute("DELETE FROM meta WHERE key = 'bulk_since'", [])
                .map_err(sql)?;
            tx.commit().map_err(unavailable)?;
            if b.whole && b.last_seq > 0 {
                *inner.presorted.lock().unwrap_or_else(|p| p.into_inner()) = Some(Presorted {
                    rows: keys.rewind().map_err(unavailable)?,
                    last_seq: b.last_seq,
                });
            }
            tracing::info!(
                keys = n,
                secs = format!("{:.1}", started.elapsed().as_secs_f64()),
                "bulk import: record keys written in order"
            );
            Ok(())
        })
        .await
        .map_err(unavailable)?
        .map(|()| 0)
    }

    async fn due_for_regrade(&self, as_of: Date) -> StoreResult<Vec<MerchantId>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A bulk import killed before its end left its marks deferred.
            let bulk = inner.bulk.lock().unwrap_or_else(|p| p.into_inner());
            if bulk.is_none() {
                let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
                recover_bulk(&mut conn)?;
            }
            StoreResult::Ok(())
        })
        .await
        .map_err(unavailable)??;
        self.read(move |c| {
            // Two indexed reads, never a scan of every merchant: a merchant
            // without a projection is marked since its upsert (see
            // `upsert_merchants`). Two statements in one snapshot, merged
            // here: as one `UNION ... ORDER BY`, SQLite chose to read every
            // projection in merchant order rather than the date index.
            c.execute_batch("BEGIN").map_err(sql)?;
            let read = (|| {
                let mut rows = c
                    .prepare_cached("SELECT merchant FROM dirty")
                    .and_then(|mut q| {
                        q.query_map([], |r| r.get::<_, String>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(sql)?;
                let due = c
                    .prepare_cached(
                        "SELECT merchant FROM projections INDEXED BY projections_due
                         WHERE next_change_at <= ?1",
                    )
                    .and_then(|mut q| {
                        q.query_map([as_of.to_string()], |r| r.get::<_, String>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(sql)?;
                rows.extend(due);
                StoreResult::Ok(rows)
            })();
            c.execute_batch("COMMIT").map_err(sql)?;
            let mut rows = read?;
            rows.sort_unstable();
            rows.dedup();
            merchant_ids(rows)
        })
        .await
    }

    async fn all_merchant_ids(&self) -> StoreResult<Vec<MerchantId>> {
        self.read(|c| {
            let mut q = c
                .prepare("SELECT id FROM merchants ORDER BY id")
                .map_err(sql)?;
            let rows = q
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            merchant_ids(rows)
        })
        .await
    }

    async fn projections_page(
        &self,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT json FROM projections WHERE (?1 IS NULL OR merchant > ?1)
                     ORDER BY merchant LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = q
                .query_map(
                    params![after.as_ref().map(|a| a.as_str()), limit as i64],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn reprint(&self) -> StoreResult<Vec<super::query::ReprintItem>> {
        let rows: Vec<(String, String)> = self
            .read(|c| {
                let mut q = c
                    .prepare(
                        "SELECT p.json, c.json FROM codes c JOIN projections p ON p.merchant = c.merchant
                         WHERE c.status = 'active'
                           AND json_extract(c.json, '$.printed_grade') <> p.grade
                         ORDER BY c.merchant",
                    )
                    .map_err(sql)?;
                let rows = q
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql)?;
                Ok(rows)
            })
            .await?;
        rows.iter()
            .map(|(p, c)| {
                let p: Projection = from_json(p)?;
                let c: IssuedCode = from_json(c)?;
                Ok(super::query::ReprintItem::new(&p, &c))
            })
            .collect()
    }

    async fn note_refresh(&self, at: jiff::Timestamp) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('last_refresh', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = ?1",
                [at.as_second()],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn last_refresh(&self) -> StoreResult<Option<jiff::Timestamp>> {
        let secs: Option<i64> = self
            .read(|c| {
                c.query_row(
                    "SELECT value FROM meta WHERE key = 'last_refresh'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)
            })
            .await?;
        Ok(secs.and_then(|s| jiff::Timestamp::from_second(s).ok()))
    }

    async fn override_of(&self, id: &MerchantId) -> StoreResult<Option<Override>> {
        let id = id.clone();
        self.read(move |c| {
            let json: Option<String> = c
                .query_row(
                    "SELECT json FROM overrides WHERE merchant = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn set_override(
        &self,
        id: &MerchantId,
        value: Option<Override>,
        projection: Projection,
        audit: AuditEntry,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.write(move |tx| {
            match &value {
                Some(o) => tx.execute(
                    "INSERT INTO overrides (merchant, json) VALUES (?1, ?2)
                     ON CONFLICT(merchant) DO UPDATE SET json = ?2",
                    params![id.as_str(), to_json(o)?],
                ),
                None => tx.execute("DELETE FROM overrides WHERE merchant = ?1", [id.as_str()]),
            }
            .map_err(sql)?;
            put_projection(tx, &projection)?;
            insert_audit(tx, &audit)
        })
        .await
    }

    async fn next_serial(&self) -> StoreResult<u32> {
        self.write(|tx| {
            let n: i64 = tx
                .query_row(
                    "INSERT INTO meta (key, value) VALUES ('serial', 1)
                     ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            u32::try_from(n).map_err(|_| StoreError::Conflict("code serials exhausted".into()))
        })
        .await
    }

    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()> {
        self.write(move |tx| {
            let mut previous = Vec::new();
            {
                let mut q = tx
                    .prepare_cached(
                        "SELECT json FROM codes WHERE merchant = ?1 AND status = 'active'",
                    )
                    .map_err(sql)?;
                let rows = q
                    .query_map([code.merchant.as_str()], |r| r.get::<_, String>(0))
                    .map_err(sql)?;
                for row in rows {
                    previous.push(code_row(row.map_err(sql)?)?);
                }
            }
            for mut old in previous {
                old.status = CodeStatus::Superseded;
                tx.execute(
                    "UPDATE codes SET status = 'superseded', json = ?2 WHERE serial = ?1",
                    params![old.serial, to_json(&old)?],
                )
                .map_err(sql)?;
            }
            let inserted = tx
                .execute(
                    "INSERT INTO codes (serial, merchant, status, json) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(serial) DO NOTHING",
                    params![
                        code.serial,
                        code.merchant.as_str(),
                        code.status.name(),
                        to_json(&code)?
                    ],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "code serial {} already issued",
                    code.serial
                )));
            }
            if let Some(a) = &audit {
                insert_audit(tx, a)?;
            }
            note_change(tx, code.merchant.as_str())
        })
        .await
    }

    async fn code(&self, serial: u32) -> StoreResult<Option<IssuedCode>> {
        self.read(move |c| {
            let json: Option<String> = c
                .query_row("SELECT json FROM codes WHERE serial = ?1", [serial], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            json.map(code_row).transpose()
        })
        .await
    }

    async fn inactive_codes(&self) -> StoreResult<Vec<(u32, CodeStatus)>> {
        self.read(|c| {
            let mut q = c
                .prepare_cached(
                    "SELECT serial, status FROM codes WHERE status <> 'active' ORDER BY serial",
                )
                .map_err(sql)?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql)?;
            rows.map(|row| {
                let (serial, status) = row.map_err(sql)?;
                let status = CodeStatus::from_name(&status)
                    .ok_or_else(|| corrupt(format!("code status `{status}`")))?;
                Ok((serial, status))
            })
            .collect()
        })
        .await
    }

    async fn codes_of(&self, id: &MerchantId) -> StoreResult<Vec<IssuedCode>> {
        let id = id.clone();
        self.read(move |c| {
            let mut q = c
                .prepare_cached("SELECT json FROM codes WHERE merchant = ?1 ORDER BY serial")
                .map_err(sql)?;
            let rows = q
                .query_map([id.as_str()], |r| r.get::<_, String>(0))
                .map_err(sql)?;
            rows.map(|j| code_row(j.map_err(sql)?)).collect()
        })
        .await
    }
    async fn scan_view(
        &self,
        id: &MerchantId,
    ) -> StoreResult<Option<(Projection, Vec<(u32, CodeStatus)>)>> {
        let id = id.clone();
        // One read, in one snapshot; the codes' statuses only, not their JSON.
        self.read(move |c| {
            let json: Option<String> = c
                .prepare_cached("SELECT json FROM projections WHERE merchant = ?1")
                .and_then(|mut q| q.query_row([id.as_str()], |r| r.get(0)).optional())
                .map_err(sql)?;
            let Some(json) = json else {
                return Ok(None);
            };
            let mut q = c
                .prepare_cached("SELECT serial, status FROM codes WHERE merchant = ?1")
                .map_err(sql)?;
            let codes = q
                .query_map([id.as_str()], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql)?
                .map(|row| {
                    let (serial, status) = row.map_err(sql)?;
                    let status = CodeStatus::from_name(&status)
                        .ok_or_else(|| corrupt(format!("code status `{status}`")))?;
                    Ok((serial, status))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some((from_json(&json)?, codes)))
        })
        .await
    }

    async fn revoke_code(&self, serial: u32, audit: AuditEntry) -> StoreResult<Option<IssuedCode>> {
        self.write(move |tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM codes WHERE serial = ?1", [serial], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            let Some(json) = json else { return Ok(None) };
            let before = code_row(json)?;
            if before.status == CodeStatus::Revoked {
                return Ok(Some(before));
            }
            let mut after = before.clone();
            after.status = CodeStatus::Revoked;
            tx.execute(
                "UPDATE codes SET status = 'revoked', json = ?2 WHERE serial = ?1",
                params![serial, to_json(&after)?],
            )
            .map_err(sql)?;
            insert_audit(tx, &audit)?;
            note_change(tx, before.merchant.as_str())?;
            Ok(Some(before))
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| insert_audit(tx, &entry)).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |c| {
            let mut q = c
                .prepare(
                    "SELECT json FROM audit
                     WHERE (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR actor = ?2)
                       AND (?3 IS NULL OR at >= ?3)
                     ORDER BY seq DESC LIMIT ?4",
                )
                .map_err(sql)?;
            let limit = if filter.limit == 0 { 100 } else { filter.limit } as i64;
            let rows = q
                .query_map(
                    params![
                        filter.target,
                        filter.actor,
                        filter.since.map(|t| t.to_string()),
                        limit
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn put_token(&self, token: ApiToken) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO tokens (id, json) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET json = ?2",
                params![token.id, to_json(&token)?],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<ApiToken>> {
        let id = id.to_owned();
        self.read(move |c| {
            let json: Option<String> = c
                .query_row("SELECT json FROM tokens WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            json.map(|j| from_json(&j)).transpose()
        })
        .await
    }

    async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.read(|c| {
            let mut q = c
                .prepare("SELECT json FROM tokens ORDER BY id")
                .map_err(sql)?;
            let rows = q.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn changes_since(&self, cursor: u64) -> StoreResult<(Option<Vec<MerchantId>>, u64)> {
        self.read(move |c| {
            let max: i64 = c
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                    r.get(0)
                })
                .map_err(sql)?;
            let cursor = cursor as i64;
            if max <= cursor {
                return Ok((Some(Vec::new()), max.max(0) as u64));
            }
            if max - cursor > MAX_CHANGES_LISTED || cursor == 0 {
                return Ok((None, max as u64));
            }
            let mut q = c
                .prepare_cached(
                    "SELECT DISTINCT merchant FROM changes WHERE seq > ?1 AND seq <= ?2",
                )
                .map_err(sql)?;
            let rows = q
                .query_map([cursor, max], |r| r.get::<_, String>(0))
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            Ok((Some(merchant_ids(rows)?), max as u64))
        })
        .await
    }
}
