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

pub use self::db::EmbeddedStore;
use self::db::{
    connect, Database, BULK_MIN_RECORDS, DB_FILE, READERS, READER_CACHE_KIB, SEQUENTIAL_READ_MIN,
    SORT_BYTES, WRITER_CACHE_KIB,
};
use crate::store::sort::remove_stale_sort_dirs;

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
