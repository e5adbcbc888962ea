//! Writing records: one batch at a time (each with its index entries and
//! regrade marks), or as a bulk import that defers both to its end.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{
    all_ok, corrupt, sql, to_json, unavailable, widen_writer_cache, Database, EmbeddedStore,
};
use super::record_index::{append_seqs, index_records_since};
use crate::model::{Merchant, Record};
use crate::store::roles::{BatchStore, BulkImport};
use crate::store::sort::{SortRow, Sorter};
use crate::store::types::{Imported, Presorted, RecordsAdded, StoreResult};

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
pub(super) struct Bulk {
    keys: Sorter,
    /// Set while the records table held nothing but this import's records,
    /// numbered 1, 2, 3, ... without a gap: the keys then carry each
    /// record too, in its binary form ([`crate::model::encode_record`]),
    /// and the sorted output is kept for the regrade ([`Presorted`]).
    whole: bool,
    /// The last seq pushed.
    last_seq: i64,
}

/// What [`BatchStore::begin_bulk_import`](crate::store::roles::BatchStore::begin_bulk_import)
/// returns: a bulk import ([`Bulk`]) when one was expected to be large
/// enough, else records written as [`BatchStore::add_records`](crate::store::roles::BatchStore::add_records) writes them.
pub(super) struct EmbeddedBulkImport {
    db: Arc<Database>,
    bulk: Option<Arc<Mutex<Bulk>>>,
    /// Whether this import set [`Database::importing`] (it is in bulk mode).
    holds_importing: bool,
}

impl Drop for EmbeddedBulkImport {
    fn drop(&mut self) {
        if self.holds_importing {
            // Finished, or abandoned with its `bulk_since` row for the next
            // writer to complete: either way another import may begin.
            self.db.importing.store(false, Ordering::Release);
        }
    }
}

/// Records per [`EncodedRecords`].
const RECORDS_PER_BUFFER: usize = 1024;

/// What the records table and a bulk import's key sort take of a run of
/// records, made in parallel before the write: each record's JSON, and its
/// binary form ([`crate::model::encode_record`]) when wanted, all of
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
                crate::model::encode_record(r, &mut out.bin);
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

/// Finishes what a bulk import killed before its end left undone: the
/// index entries and the regrade marks of every record stored since it
/// began. Not while this process's own bulk import runs
/// ([`Database::importing`]).
pub(super) fn recover_bulk(conn: &mut Connection) -> StoreResult<()> {
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

/// Stores `records` (blocking): with `bulk`, their keys go to its sort;
/// without, each merchant's index entry and regrade mark are written in
/// the same transaction.
pub(super) fn insert_records(
    db: &Database,
    records: Vec<Record>,
    bulk: Option<&Mutex<Bulk>>,
) -> StoreResult<RecordsAdded> {
    use rayon::prelude::*;
    // Into the empty records table of a bulk import, each record also goes
    // to the key sort in its binary form, for the regrade.
    let binary = bulk.is_some_and(|b| b.lock().unwrap_or_else(|p| p.into_inner()).whole);
    // Each record's canonical JSON, never the bytes it was read from: the
    // layout of the input does not reach the store.
    let encoded = all_ok(
        records
            .par_chunks(RECORDS_PER_BUFFER)
            .map(|chunk| EncodedRecords::of(chunk, binary))
            .collect(),
    )?;
    let mut bulk = bulk.map(|b| b.lock().unwrap_or_else(|p| p.into_inner()));
    let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
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
            match bulk.as_deref_mut() {
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
    db.checkpoint.committed(records.len());
    drop(touched);
    // Ten thousands of small strings: freed on another thread, not on the
    // one every write waits for.
    rayon::spawn(move || drop((records, encoded)));
    Ok(added)
}

/// Begins an import (blocking): in bulk mode if at least `bulk_min`
/// records are expected and no other bulk import of this process runs.
pub(super) fn begin(db: Arc<Database>, expected_records: u64) -> StoreResult<EmbeddedBulkImport> {
    if expected_records < db.bulk_min || db.importing.swap(true, Ordering::AcqRel) {
        return Ok(EmbeddedBulkImport {
            db,
            bulk: None,
            holds_importing: false,
        });
    }
    db.note_bulk_writes();
    // From here on, dropping it clears `importing` again.
    let mut import = EmbeddedBulkImport {
        db: db.clone(),
        bulk: None,
        holds_importing: true,
    };
    let since = {
        let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
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
        since
    };
    tracing::debug!(since, "bulk import started");
    import.bulk = Some(Arc::new(Mutex::new(Bulk {
        keys: Sorter::new(&db.dir, db.sort_bytes / 2),
        whole: since == 0,
        last_seq: since,
    })));
    Ok(import)
}

impl EmbeddedBulkImport {
    /// Writes the deferred index entries and marks in key order (blocking)
    /// and keeps the sorted records of a first load for the regrade.
    fn finish_blocking(mut self) -> StoreResult<Imported> {
        // `importing` stays set until the keys are written (`self` dropped).
        let Some(bulk) = self.bulk.take() else {
            return Ok(Imported::default());
        };
        let bulk = Arc::try_unwrap(bulk)
            .map_err(|_| unavailable("bulk import finished while records are added"))?;
        let b = bulk.into_inner().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let mut keys = b.keys.finish().map_err(unavailable)?;
        let mut conn = self.db.writer.lock().unwrap_or_else(|p| p.into_inner());
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
        let presorted = if b.whole && b.last_seq > 0 {
            Some(Presorted {
                rows: keys.rewind().map_err(unavailable)?,
                records: b.last_seq as u64,
            })
        } else {
            None
        };
        tracing::info!(
            keys = n,
            secs = format!("{:.1}", started.elapsed().as_secs_f64()),
            "bulk import: record keys written in order"
        );
        // Ids repeated within the import are found as its records arrive.
        Ok(Imported {
            repeated: 0,
            presorted,
        })
    }
}

#[async_trait]
impl BulkImport for EmbeddedBulkImport {
    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64> {
        // Merchants are few beside records: written and marked as always.
        EmbeddedStore {
            db: self.db.clone(),
        }
        .upsert_merchants(merchants)
        .await
    }

    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded> {
        let db = self.db.clone();
        let bulk = self.bulk.clone();
        tokio::task::spawn_blocking(move || insert_records(&db, records, bulk.as_deref()))
            .await
            .map_err(unavailable)?
    }

    async fn finish(self: Box<Self>) -> StoreResult<Imported> {
        tokio::task::spawn_blocking(move || self.finish_blocking())
            .await
            .map_err(unavailable)?
    }
}
