//! The embedded store: one SQLite database in WAL mode under the data
//! directory. No external service; a county runs on it.
//!
//! Why SQLite: it gives atomic multi-row writes (a killed refresh leaves either
//! the old or the new projection, never half of one) and lets the batch job
//! and the service run as separate processes on the same files. The service
//! learns about another process's writes from the `changes` table (see
//! [`ScanRead::changes_since`](crate::store::roles::ScanRead::changes_since)).
//!
//! One file per concern: the connections, their settings and shared
//! helpers (`db.rs`, opened here); the
//! schema and its migrations (`schema.rs`, SQL in `.sql` files); the
//! per-merchant record index (`record_index.rs`); the regulators' search
//! index, written with the projections (`search_index.rs`); the roles: the
//! scan's reads (`reads.rs`), regulators' queries (`search.rs`), the
//! service's own writes
//! (`writes.rs`), the batch job's side (`batch.rs`) with its bulk import
//! (`bulk.rs`) and grading inputs (`grading_inputs.rs`).

mod batch;
mod bulk;
mod changes;
mod db;
mod documents;
mod grading_inputs;
mod reads;
mod record_index;
mod schema;
mod search;
mod search_index;
mod writes;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use self::db::EmbeddedStore;
use self::db::{
    connect, CheckpointSignal, Database, BULK_MIN_RECORDS, DB_FILE, READERS, READER_CACHE_KIB,
    SEQUENTIAL_READ_MIN, SORT_BYTES, WRITER_CACHE_KIB,
};
use crate::store::sort::remove_stale_sort_dirs;

/// How long the checkpoint thread pauses between checkpoints when no large
/// commit wakes it ([`CheckpointSignal`]).
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);
/// Above this size the checkpoint thread copies the whole WAL and starts
/// it over ([`start_checkpoints`]; overridable with
/// `YSZ_EMBEDDED_WAL_RESTART_BYTES`, for tests).
const WAL_RESTART_BYTES: u64 = 256 << 20;
/// How long that full checkpoint waits for the writer's transaction and
/// for readers on older snapshots; new writers wait while it does.
const WAL_RESTART_WAIT: Duration = Duration::from_millis(250);
/// After a full checkpoint that could not finish, the next is tried this
/// much later (a long read, such as an export, holds it back).
const WAL_RESTART_RETRY: Duration = Duration::from_secs(5);

/// Copies the WAL into the database on its own thread and connection
/// (passive checkpoints: never blocking readers or the writer), so the
/// writer's commits do not pay for the copying and its `fsync`s: every
/// [`CHECKPOINT_PAUSE`], and right after a large commit ([`CheckpointSignal`]).
///
/// SQLite starts the WAL over only when a write begins after a checkpoint
/// has copied all of it. Under a steady stream of small writes (codes
/// issued one after another, 2,800 a second) a passive checkpoint never
/// catches up with the last frame, and the WAL grew without bound: 30 GB
/// for 690,000 codes. So once the WAL passes `restart_bytes`
/// ([`WAL_RESTART_BYTES`]), a truncating checkpoint holds the writers back
/// for the frames the passive one left (waiting at most
/// [`WAL_RESTART_WAIT`]) and empties it; not in a process that writes
/// most of the store ([`Database::bulk_writes`]).
fn start_checkpoints(
    path: &Path,
    restart_bytes: u64,
    bulk_writes: Arc<AtomicBool>,
    signal: Arc<CheckpointSignal>,
) -> Option<std::thread::JoinHandle<()>> {
    let path = path.to_owned();
    let wal = beside(&path, "-wal");
    let started = std::thread::Builder::new()
        .name("ysz-checkpoint".into())
        .spawn(move || {
            let Ok(conn) = connect(&path, 1024) else {
                return;
            };
            let _ = conn.busy_timeout(WAL_RESTART_WAIT);
            let mut next_restart = Instant::now();
            while !signal.pause(CHECKPOINT_PAUSE) {
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                let large = std::fs::metadata(&wal).is_ok_and(|m| m.len() > restart_bytes);
                let bulk = bulk_writes.load(Ordering::Relaxed);
                if large && !bulk && Instant::now() >= next_restart {
                    // (busy, frames in the WAL, frames copied); busy is 1
                    // when the checkpoint could not finish in time.
                    let done = conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                            r.get::<_, i64>(0)
                        })
                        .is_ok_and(|busy| busy == 0);
                    if !done {
                        next_restart = Instant::now() + WAL_RESTART_RETRY;
                    }
                }
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

/// The file SQLite keeps beside the database `db`: its name with `suffix`.
fn beside(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The database file created mode 0600 before SQLite opens it, and its
/// journals narrowed to 0600 if a former run left them wider: SQLite
/// creates `-wal` and `-shm` with the database file's mode.
fn prepare_files(db: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    crate::files::prepare_file(db)
        .with_context(|| format!("cannot create store {}", db.display()))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let journal = beside(db, suffix);
        crate::files::restrict_file(&journal)
            .with_context(|| format!("cannot make {} private", journal.display()))?;
    }
    Ok(())
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
        let signal = Arc::new(CheckpointSignal::default());
        let restart_bytes = env("YSZ_EMBEDDED_WAL_RESTART_BYTES", WAL_RESTART_BYTES as usize);
        let bulk_writes = Arc::new(AtomicBool::new(false));
        let checkpoints = start_checkpoints(
            &path,
            restart_bytes as u64,
            bulk_writes.clone(),
            signal.clone(),
        );
        if checkpoints.is_some() {
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .with_context(|| format!("cannot open store {}", path.display()))?;
        }
        Ok(Self {
            db: Arc::new(Database {
                checkpoint: signal,
                bulk_writes,
                checkpoints: Mutex::new(checkpoints),
                dir: dir.to_owned(),
                sequential_read_min: env("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", SEQUENTIAL_READ_MIN),
                bulk_min: env("YSZ_EMBEDDED_BULK_MIN", BULK_MIN_RECORDS as usize) as u64,
                sort_bytes: env("YSZ_EMBEDDED_SORT_BYTES", SORT_BYTES),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                importing: AtomicBool::new(false),
            }),
        })
    }
}
