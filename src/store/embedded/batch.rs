//! The batch job's side of the embedded store: merchants and records as
//! they arrive, the projections graded from them, and what is due.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use jiff::civil::Date;
use rusqlite::{params, OptionalExtension};

use super::bulk;
use super::changes;
use super::db::{
    all_ok, corrupt, merchant_ids, projection_json, sql, to_json, unavailable, EmbeddedStore,
    RANGE_READ_MIN, SPARSE_READS_IN_FLIGHT,
};
use super::grading_inputs::{self, raw_inputs_by_id, raw_inputs_by_range, RawInput};
use super::record_index::records_json;
use super::search_index::{Derived, SearchIndexWriter};
use crate::model::{Grade, Merchant, MerchantId, Projection, Record};
use crate::store::changes::{ChangeKind, Note};
use crate::store::roles::{BatchStore, BulkImport};
use crate::store::types::{GradingInput, Imported, RecordsAdded, StoreResult};

#[async_trait]
impl BatchStore for EmbeddedStore {
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
            let at = crate::clock::now().as_second();
            for (id, json) in &rows {
                let n = put.execute(params![id.as_str(), json]).map_err(sql)?;
                if n > 0 {
                    mark.execute([id.as_str()]).map_err(sql)?;
                    changes::note(tx, &Note::of(id.as_str(), ChangeKind::Merchant), at)?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
    }

    async fn merchant(&self, id: &MerchantId) -> StoreResult<Option<Merchant>> {
        self.json_row("SELECT json FROM merchants WHERE id = ?1", id.to_string())
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
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || bulk::insert_records(&db, records, None))
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
        self.json_row(
            "SELECT json FROM projections WHERE merchant = ?1",
            id.to_string(),
        )
        .await
    }

    async fn put_projections(&self, projections: Vec<Projection>) -> StoreResult<()> {
        use rayon::prelude::*;
        let rows = projections.len();
        // Serialized in parallel before the write, a few hundred to a buffer.
        let (projections, chunks, derived) = tokio::task::spawn_blocking(move || {
            let chunks = all_ok(
                projections
                    .par_chunks(PROJECTIONS_PER_BUFFER)
                    .map(SerializedProjections::of)
                    .collect(),
            );
            let derived: Vec<Derived> = projections.par_iter().map(Derived::of).collect();
            chunks.map(|chunks| (projections, chunks, derived))
        })
        .await
        .map_err(unavailable)??;
        self.write(move |tx| {
            let at = crate::clock::now().as_second();
            let mut rows = projections.iter().zip(&derived);
            let mut search = SearchIndexWriter::new(tx);
            for chunk in &chunks {
                for i in 0..chunk.len() {
                    let Some((p, derived)) = rows.next() else {
                        break;
                    };
                    let row = ProjectionRow {
                        id: p.merchant.id.as_str(),
                        grade: p.grade,
                        at,
                        next_change_at: chunk.next_change_at[i].as_deref(),
                        json: chunk.json(i),
                    };
                    row.put(tx)?;
                    search.index_derived(p, derived)?;
                }
            }
            search.finish()?;
            changes::trim(tx, at)?;
            // Freed on another thread, not on the one every write waits for.
            rayon::spawn(move || drop((projections, chunks, derived)));
            Ok(())
        })
        .await?;
        self.db.checkpoint.committed(rows);
        Ok(())
    }

    async fn due_for_regrade(&self, as_of: Date) -> StoreResult<Vec<MerchantId>> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            // A bulk import killed before its end left its marks deferred.
            if !db.importing.load(Ordering::Acquire) {
                let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
                bulk::recover_bulk(&mut conn)?;
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

    async fn grading_inputs(&self, ids: Vec<MerchantId>) -> StoreResult<Vec<GradingInput>> {
        self.read(move |c| {
            use rayon::prelude::*;
            // One read transaction for the batch: one snapshot, and not a
            // lock taken and released (fcntl calls, a WAL index check) for
            // each of its several statements per merchant and per record.
            let snapshot = c.unchecked_transaction().map_err(sql)?;
            let sorted = ids.windows(2).all(|w| w[0] < w[1]);
            let by_range = if ids.len() >= RANGE_READ_MIN && sorted {
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
        imported: Option<Imported>,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let batch = batch.max(1);
        let sorted = ids.windows(2).all(|w| w[0] < w[1]);
        let (dense, all) = if sorted && ids.len() >= self.db.sequential_read_min {
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
        let db = self.db.clone();
        let presorted = imported.and_then(|i| i.presorted);
        tokio::task::spawn_blocking(move || {
            grading_inputs::read_grading_inputs_in_order(
                &db, &ids, all, presorted, batch, false, &tx,
            )
        })
        .await
        .map_err(unavailable)?
    }

    /// One sequential pass over the records table that sorts the sampling
    /// records alone (a fifth of all at a province's size), unless there
    /// are too few merchants for a pass to pay.
    async fn stream_sampling_inputs(
        &self,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let mut ids = self.all_merchant_ids().await?;
        if ids.len() < self.db.sequential_read_min {
            return crate::store::roles::sampling_of_all_inputs(self, batch, tx).await;
        }
        ids.sort_unstable();
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            grading_inputs::read_grading_inputs_in_order(
                &db,
                &ids,
                true,
                None,
                batch.max(1),
                true,
                &tx,
            )
        })
        .await
        .map_err(unavailable)?
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

    async fn begin_bulk_import(&self, expected_records: u64) -> StoreResult<Box<dyn BulkImport>> {
        let db = self.db.clone();
        let import = tokio::task::spawn_blocking(move || bulk::begin(db, expected_records))
            .await
            .map_err(unavailable)??;
        Ok(Box::new(import))
    }
}

pub(super) fn put_projection(tx: &rusqlite::Transaction<'_>, p: &Projection) -> StoreResult<()> {
    let next_change_at = p.next_change_at.map(|d| d.to_string());
    let json = projection_json(p)?;
    let row = ProjectionRow {
        id: p.merchant.id.as_str(),
        grade: p.grade,
        next_change_at: next_change_at.as_deref(),
        json: &json,
        at: crate::clock::now().as_second(),
    };
    row.put(tx)?;
    let mut search = SearchIndexWriter::new(tx);
    search.index(p)?;
    search.finish()
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
    grade: Grade,
    next_change_at: Option<&'a str>,
    json: &'a str,
    /// When it is written (seconds), for the change log.
    at: i64,
}

impl ProjectionRow<'_> {
    /// Writes the projection, clears its merchant's regrade mark and notes
    /// the change: a `grade` change if its grade differs from the stored
    /// one's, else a notice for the caches.
    fn put(&self, tx: &rusqlite::Transaction<'_>) -> StoreResult<()> {
        let before = changes::stored_grade(tx, self.id)?;
        tx.prepare_cached(
            "INSERT INTO projections (merchant, grade, next_change_at, json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(merchant) DO UPDATE SET grade = ?2, next_change_at = ?3, json = ?4",
        )
        .and_then(|mut q| {
            q.execute(params![
                self.id,
                self.grade.name(),
                self.next_change_at,
                self.json
            ])
        })
        .map_err(sql)?;
        tx.prepare_cached("DELETE FROM dirty WHERE merchant = ?1")
            .and_then(|mut q| q.execute([self.id]))
            .map_err(sql)?;
        changes::note(tx, &Note::projection(self.id, before, self.grade), self.at)
    }
}
