//! Bulk mode ([`BatchStore::begin_bulk_import`] with at least
//! [`RedisOptions::bulk_min`] records expected, i.e. a large refresh): the
//! writes (see `writes`) skip the per-item regrade mark, which costs a set insert
//! per record. Instead the import first adds a token to `P:{meta}:bulk`,
//! the import remembers the merchants it changed or gave new records,
//! and [`BulkImport::finish`](crate::store::BulkImport::finish) marks them (`SADD` per slot) and then
//! removes the token. If the process dies before that, the token stays,
//! and the next `due_for_regrade` or bulk import marks *every* merchant
//! (`SUNIONSTORE` of each slot's merchants into its marks) before removing
//! it: a killed bulk import costs one full regrade, never a missed one.
//! Like the embedded store's bulk mode it assumes one bulk importer at a
//! time (a second one would take the first's token for a killed one).
//! Standalone bulk imports also hold their records back: each batch's
//! ids are checked against the stored ids (`SMISMEMBER` per id set), the
//! others go to an external sort by (merchant, input order) on local
//! disk (bounded memory, [`RedisOptions::sort_bytes`]) and their ids to
//! one by id; at the end the records that repeat an earlier record's id
//! of the import are dropped (the first one wins, as in `writes`) and the rest
//! are stored merchant by merchant: one `RPUSH` of all of a merchant's
//! new records, transactions (`MULTI`/`EXEC`) of about
//! [`BULK_STORE_CHUNK`] records that claim the ids (`SADD` per id set)
//! with the appends, no Lua. A kill before or during that leaves the
//! token (every merchant due) and the records not yet stored are
//! imported by the next run; a stored record's id is claimed, so never
//! stored twice. When the store held no records before (a first load),
//! the regrade that follows takes the records from the sort instead of
//! reading the lists, if the store then holds exactly the import's
//! records ([`Presorted`], in the [`Imported`] that `finish` returns).
//!
//! All of an import under way (token, owed marks, sorts) is in its
//! [`RedisBulkImport`] value; the store only knows that one runs
//! (`importing`), so that it does not take the running import's token for
//! a killed one's.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use ::redis::{Cmd, Pipeline};
use futures_util::stream::{self, StreamExt};

use super::common::{corrupt, redis_err};
use super::conn::RedisStore;
use super::keys::{crc16, slot_of, Keys, RECORD_ID_SETS};
use crate::model::{MerchantId, Record};
use crate::store::sort::{remove_stale_sort_dirs, SortRow, Sorted, Sorter};
use crate::store::types::{GradingInput, Imported, Presorted, StoreError, StoreResult};

/// A bulk import in progress in this process: its token in the
/// `P:{meta}:bulk` hash, and the merchants whose regrade mark it owes.
pub(super) struct Bulk {
    token: String,
    touched: HashSet<String>,
    /// Standalone: the import's new records, stored at its end.
    records: Option<BulkRecords>,
}

impl Bulk {
    /// Whether the import sorts its records (standalone).
    pub(super) fn sorts_records(bulk: &Mutex<Self>) -> bool {
        bulk.lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .is_some()
    }

    /// Remembers merchants whose mark the import owes.
    pub(super) fn touch<'a>(bulk: &Mutex<Self>, ids: impl Iterator<Item = &'a str>) {
        let mut bulk = bulk.lock().unwrap_or_else(|p| p.into_inner());
        bulk.touched.extend(ids.map(str::to_owned));
    }
}

/// The records of a standalone bulk import, held back until its end so
/// that each merchant's records are appended with one `RPUSH`: the ids are
/// checked against the stored ids as they arrive, the records whose id is
/// not stored go to an external sort by (merchant, input order) and their
/// ids to one by id, and [`BulkImport::finish`](crate::store::BulkImport::finish) first finds the records
/// that repeat an earlier record's id within the import (adjacent in the
/// id sort), then stores the others merchant by merchant, each
/// `MULTI`/`EXEC` claiming its records' ids in the record-id sets together
/// with the appends. A process killed before that has stored nothing but
/// leaves its token: the next run marks every merchant and imports the
/// records again. Memory stays within [`RedisOptions::sort_bytes`].
struct BulkRecords {
    sorter: Sorter,
    /// (id key, input order) → merchant and id: finds repeated ids.
    ids: Sorter,
    /// Input order of the next record.
    seq: i64,
    /// How many records went to the sort.
    accepted: u64,
    /// Whether the store held no record when the import began: then the
    /// sorted records are kept for the regrade ([`Presorted`]).
    first_load: bool,
}

/// Records per `MULTI`/`EXEC` when a bulk import stores its sorted records
/// (a merchant's records are never split between two).
const BULK_STORE_CHUNK: usize = 4000;
/// Such transactions in flight at once.
const BULK_STORE_IN_FLIGHT: usize = 8;
/// Memory for the sort of the records that repeat an id within a bulk
/// import (normally none).
const REPEATS_SORT_BYTES: usize = 16 << 20;
/// Merchant ids per pipeline of regrade marks ([`RedisStore::mark_dirty`]).
const MARK_CHUNK: usize = 20_000;

impl RedisStore {
    /// Bulk import, standalone: finds which of `records[i]` (`i` in `todo`,
    /// distinct ids) are not stored yet (one pipelined `SMISMEMBER` per id
    /// set) and puts those into the import's sorts. Returns how many; of
    /// those, the ones that repeat an earlier record's id of this import are
    /// found at its end.
    pub(super) async fn accept_bulk_records(
        &self,
        bulk: &Mutex<Bulk>,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
    ) -> StoreResult<u64> {
        let mut by_set: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for i in todo {
            by_set
                .entry(crc16(records[i].id.as_bytes()) % RECORD_ID_SETS)
                .or_default()
                .push(i);
        }
        let mut pipe = ::redis::pipe();
        for (&set, members) in &by_set {
            let ids: Vec<&str> = members.iter().map(|&i| records[i].id.as_str()).collect();
            pipe.cmd("SMISMEMBER")
                .arg(self.keys.record_ids(set))
                .arg(&ids);
        }
        let replies: Vec<Vec<i64>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        let mut fresh: Vec<usize> = Vec::new();
        if replies.len() != by_set.len() {
            return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
        }
        for ((_, members), stored) in by_set.iter().zip(&replies) {
            for (k, &i) in members.iter().enumerate() {
                if stored.get(k) == Some(&0) {
                    fresh.push(i);
                }
            }
        }
        // In input order, so that a merchant's records keep it.
        fresh.sort_unstable();
        let mut guard = bulk.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bulk) = guard.records.as_mut() else {
            return Err(StoreError::Unavailable(
                "bulk import without a record sort".into(),
            ));
        };
        let io = |e: std::io::Error| StoreError::Unavailable(format!("sorting records: {e}"));
        let mut payload = Vec::new();
        let mut key = String::new();
        for &i in &fresh {
            let r = &records[i];
            let merchant = r.merchant.as_str();
            payload.clear();
            push_prefixed(&mut payload, r.id.as_bytes());
            push_prefixed(&mut payload, jsons[i].as_bytes());
            // A first load's sort feeds the regrade: the binary form then
            // spares it parsing the JSON.
            if bulk.first_load {
                crate::model::encode_record(r, &mut payload);
            }
            bulk.sorter.push(merchant, bulk.seq, &payload).map_err(io)?;
            payload.clear();
            push_prefixed(&mut payload, merchant.as_bytes());
            payload.extend_from_slice(r.id.as_bytes());
            bulk.ids
                .push(id_sort_key(&r.id, &mut key), bulk.seq, &payload)
                .map_err(io)?;
            bulk.seq += 1;
        }
        bulk.accepted += fresh.len() as u64;
        Ok(fresh.len() as u64)
    }

    /// End of a standalone bulk import: stores the sorted records merchant
    /// by merchant, but those that repeat an earlier record's id of the
    /// import, each transaction appending its merchants' records with one
    /// `RPUSH` each and claiming their ids (one `SADD` per id set). Adds the
    /// merchants to `touched` (their marks follow, as for any bulk import)
    /// and returns how many records were stored, how many repeated an id,
    /// and the sort.
    async fn store_sorted(
        &self,
        records: BulkRecords,
        touched: &mut HashSet<String>,
    ) -> StoreResult<(u64, u64, Sorted)> {
        tracing::info!(
            records = records.accepted,
            "bulk import: storing the sorted records merchant by merchant"
        );
        let keys = self.keys.clone();
        let (tx, rx) =
            tokio::sync::mpsc::channel::<(Pipeline, Vec<String>, u64)>(BULK_STORE_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || -> StoreResult<(u64, Sorted)> {
            let io = |e: std::io::Error| StoreError::Unavailable(format!("sorting records: {e}"));
            let (mut repeats, repeated) = repeated_ids(records.ids).map_err(io)?;
            let mut repeat = SortRow::default();
            let mut more = repeats.next_into(&mut repeat).map_err(io)?;
            let mut sorted = records.sorter.finish().map_err(io)?;
            let mut row = SortRow::default();
            let mut chunk = BulkChunk::default();
            while sorted.next_into(&mut row).map_err(io)? {
                // Both sorts are in (merchant, input order).
                while more && (&repeat.merchant, repeat.seq) < (&row.merchant, row.seq) {
                    more = repeats.next_into(&mut repeat).map_err(io)?;
                }
                if more && (&repeat.merchant, repeat.seq) == (&row.merchant, row.seq) {
                    continue;
                }
                let merchant = std::str::from_utf8(&row.merchant).map_err(corrupt)?;
                if chunk.records >= BULK_STORE_CHUNK
                    && chunk.merchants.last().map(String::as_str) != Some(merchant)
                {
                    let done = std::mem::take(&mut chunk);
                    if tx.blocking_send(done.into_pipeline()).is_err() {
                        return Ok((repeated, sorted));
                    }
                }
                chunk.push(&keys, merchant, &row.payload)?;
            }
            if chunk.records > 0 {
                let _ = tx.blocking_send(chunk.into_pipeline());
            }
            Ok((repeated, sorted))
        });
        let sent = tokio_stream_of(rx)
            .map(|(pipe, merchants, n)| {
                let mut conn = self.conn();
                async move {
                    pipe.query_async::<()>(&mut conn).await.map_err(redis_err)?;
                    StoreResult::Ok((merchants, n))
                }
            })
            .buffer_unordered(BULK_STORE_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let (repeated, sorted) = reader
            .await
            .map_err(|e| StoreError::Unavailable(format!("sorting records: {e}")))??;
        let mut stored = 0;
        for done in sent {
            let (merchants, n) = done?;
            touched.extend(merchants);
            stored += n;
        }
        Ok((stored, repeated, sorted))
    }

    /// Standalone: how many records the store holds (the ids in the
    /// record-id sets; each is a stored record).
    async fn stored_records(&self) -> StoreResult<u64> {
        let mut pipe = ::redis::pipe();
        for b in 0..RECORD_ID_SETS {
            pipe.scard(self.keys.record_ids(b));
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        Ok(counts.into_iter().sum())
    }

    /// [`BatchStore::stream_grading_inputs`] from the sorted records of a bulk
    /// import that are every record of the store ([`Presorted`]): `ids`
    /// ascending, each batch's records taken from the sort (merged once
    /// more) and parsed in parallel, the rest read with three `GET`s per
    /// merchant instead of reading every list back.
    async fn stream_presorted(
        &self,
        rows: Sorted,
        ids: Vec<MerchantId>,
        batch: usize,
        tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
    ) -> StoreResult<()> {
        let io = |e: std::io::Error| StoreError::Unavailable(format!("sorted records: {e}"));
        let joined =
            |e: tokio::task::JoinError| StoreError::Unavailable(format!("sorted records: {e}"));
        let mut rows = tokio::task::spawn_blocking(move || rows.rewind())
            .await
            .map_err(joined)?
            .map_err(io)?;
        // A row read ahead of the batch it belongs to.
        let mut ahead: Option<SortRow> = None;
        for chunk in ids.chunks(batch.max(1)) {
            let want = chunk.to_vec();
            let read = tokio::task::spawn_blocking(move || {
                let records = take_sorted_records(&mut rows, &mut ahead, &want);
                (records, rows, ahead)
            });
            let (inputs, read) = tokio::join!(self.read_grading_inputs(chunk, false), read);
            let (records, back, left) = read.map_err(joined)?;
            (rows, ahead) = (back, left);
            let records = records?;
            let inputs: Vec<GradingInput> = inputs?
                .into_iter()
                .zip(records)
                .filter_map(|(input, records)| {
                    input.map(|mut i| {
                        i.records = records;
                        i
                    })
                })
                .collect();
            if tx.send(inputs).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The hash of running (or killed) bulk imports: token → start (Unix seconds).
    fn bulk_key(&self) -> String {
        self.keys.global("meta", "bulk")
    }

    /// Marks `ids` for regrading, in pipelines of `SADD`s per slot.
    async fn mark_dirty(&self, ids: Vec<String>) -> StoreResult<()> {
        let keys = &self.keys;
        // Large chunks: a bulk import marks up to every merchant, and one
        // `SADD` per slot of many members costs Redis far less than many
        // of one or two.
        self.in_lanes(
            ids,
            |id| slot_of(id),
            MARK_CHUNK,
            |mut conn, chunk| async move {
                let mut by_slot: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
                for id in &chunk {
                    by_slot
                        .entry(keys.index_slot(slot_of(id)))
                        .or_default()
                        .push(id);
                }
                let mut pipe = ::redis::pipe();
                for (slot, members) in by_slot {
                    pipe.sadd(keys.index(slot, "dirty"), members).ignore();
                }
                pipe.query_async::<()>(&mut conn).await.map_err(redis_err)?;
                Ok(vec![(); chunk.len()])
            },
        )
        .await
        .into_result()
        .map(drop)
    }

    /// Completes bulk imports that never ended (killed): their merchants'
    /// marks are unknown, so every merchant is marked for regrading, then
    /// their tokens are removed. Not while this process runs one (its token
    /// is not stale).
    pub(super) async fn recover_bulk(&self) -> StoreResult<()> {
        if self.importing.load(Ordering::Acquire) {
            return Ok(());
        }
        let stale: Vec<String> = ::redis::cmd("HKEYS")
            .arg(self.bulk_key())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        if stale.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            imports = stale.len(),
            "an earlier bulk import into Redis did not finish; marking every merchant for regrading"
        );
        let keys = &self.keys;
        self.per_slot(
            |slot, pipe| {
                let dirty = keys.index(slot, "dirty");
                pipe.cmd("SUNIONSTORE")
                    .arg(&dirty)
                    .arg(&dirty)
                    .arg(keys.index(slot, "merchants"));
            },
            |_| Ok(()),
        )
        .await?;
        ::redis::cmd("HDEL")
            .arg(self.bulk_key())
            .arg(&stale)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }
}

/// The records of `want` (ascending) from `rows` sorted by merchant,
/// decoded in parallel, one list per id; rows of other merchants are passed
/// over, and the first row past `want` is kept in `ahead`.
fn take_sorted_records(
    rows: &mut Sorted,
    ahead: &mut Option<SortRow>,
    want: &[MerchantId],
) -> StoreResult<Vec<Vec<Record>>> {
    use rayon::prelude::*;
    let io = |e: std::io::Error| StoreError::Unavailable(format!("sorted records: {e}"));
    let mut binaries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); want.len()];
    let mut row = ahead.take().unwrap_or_default();
    let mut have = !row.merchant.is_empty();
    let mut k = 0;
    loop {
        if !have && !rows.next_into(&mut row).map_err(io)? {
            break;
        }
        have = false;
        while k < want.len() && want[k].as_str().as_bytes() < row.merchant.as_slice() {
            k += 1;
        }
        if k == want.len() {
            *ahead = Some(row);
            break;
        }
        if want[k].as_str().as_bytes() == row.merchant.as_slice() {
            binaries[k].push(bulk_row_binary(&row.payload)?.to_vec());
        }
    }
    binaries
        .into_par_iter()
        .zip(want)
        .map(|(binaries, id)| {
            binaries
                .iter()
                .map(|b| crate::model::decode_record(id, b).map_err(corrupt))
                .collect::<StoreResult<Vec<Record>>>()
        })
        .collect()
}

/// The records of a bulk import that repeat the id of an earlier record of
/// it, from the import's id sort: sorted by (merchant, input order) like
/// the records, and how many.
fn repeated_ids(ids: Sorter) -> std::io::Result<(Sorted, u64)> {
    let bad = |e: StoreError| std::io::Error::other(e.to_string());
    let mut repeats = Sorter::new(&sort_dir(), REPEATS_SORT_BYTES);
    let mut ids = ids.finish()?;
    let mut row = SortRow::default();
    let mut key: Vec<u8> = Vec::new();
    // The ids of the current key seen so far (one, unless ids share a key).
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut repeated = 0;
    while ids.next_into(&mut row)? {
        if row.merchant != key {
            key.clone_from(&row.merchant);
            seen.clear();
        }
        let (merchant, id) = split_prefixed(&row.payload).map_err(bad)?;
        if seen.iter().any(|s| s.as_slice() == id) {
            let merchant = std::str::from_utf8(merchant).map_err(std::io::Error::other)?;
            repeats.push(merchant, row.seq, &[])?;
            repeated += 1;
        } else {
            seen.push(id.to_vec());
        }
    }
    Ok((repeats.finish()?, repeated))
}

/// Appends `bytes` after their length (4 bytes little-endian).
fn push_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What [`push_prefixed`] wrote, and what follows it: a bulk import's
/// sorted record row (id, JSON) or id row (merchant, id).
fn split_prefixed(payload: &[u8]) -> StoreResult<(&[u8], &[u8])> {
    let bad = || StoreError::Corrupt("bulk import: bad sorted row".into());
    let len = payload.get(..4).ok_or_else(bad)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
    let id = payload.get(4..4 + len).ok_or_else(bad)?;
    Ok((id, &payload[4 + len..]))
}

/// The binary form of the record ([`crate::model::encode_record`]) in a
/// first load's sorted record row.
fn bulk_row_binary(payload: &[u8]) -> StoreResult<&[u8]> {
    let (_, rest) = split_prefixed(payload)?;
    split_prefixed(rest).map(|(_, binary)| binary)
}

/// A record id as a key of the id sort: the id itself when it fits
/// ([`Sorter::push`] takes at most 32 bytes, no NUL), else 32 hex digits of
/// a 128-bit hash of it. Equal ids get equal keys; the rare other ids that
/// share a key are told apart by the full id in the row.
fn id_sort_key<'a>(id: &'a str, buf: &'a mut String) -> &'a str {
    use std::hash::{Hash, Hasher};
    if id.len() <= 32 && !id.contains('\0') {
        return id;
    }
    buf.clear();
    for salt in [0u8, 1] {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        buf.push_str(&format!("{:016x}", h.finish()));
    }
    buf
}

/// Where a standalone bulk import spills its sorted runs.
fn sort_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("yisaozhi-redis-sort")
}

/// A receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// One transaction's worth of a bulk import's sorted records
/// ([`RedisStore::store_sorted`]): whole merchants, in order, packed into
/// the commands as they come (no copy of a record per record).
#[derive(Default)]
struct BulkChunk {
    /// The `RPUSH` of the current merchant's records.
    rpush: Option<Cmd>,
    /// The `RPUSH`es of the merchants before.
    done: Vec<Cmd>,
    /// The merchants, in order.
    merchants: Vec<String>,
    /// Per id set touched, its `SADD` of the records' ids.
    ids: BTreeMap<u16, Cmd>,
    records: usize,
}

impl BulkChunk {
    /// Adds one sorted row's payload (id, JSON, binary form) for `merchant`.
    fn push(&mut self, keys: &Keys, merchant: &str, payload: &[u8]) -> StoreResult<()> {
        let (id, rest) = split_prefixed(payload)?;
        let (json, _binary) = split_prefixed(rest)?;
        if self.merchants.last().map(String::as_str) != Some(merchant) {
            self.done.extend(self.rpush.take());
            let mut rpush = ::redis::cmd("RPUSH");
            rpush.arg(keys.merchant(merchant, "records"));
            self.rpush = Some(rpush);
            self.merchants.push(merchant.to_owned());
        }
        if let Some(rpush) = self.rpush.as_mut() {
            rpush.arg(json);
        }
        let set = crc16(id) % RECORD_ID_SETS;
        self.ids
            .entry(set)
            .or_insert_with(|| {
                let mut sadd = ::redis::cmd("SADD");
                sadd.arg(keys.record_ids(set));
                sadd
            })
            .arg(id);
        self.records += 1;
        Ok(())
    }

    /// The transaction: per merchant one `RPUSH`, per id set one `SADD`.
    /// With its merchants and record count.
    fn into_pipeline(mut self) -> (Pipeline, Vec<String>, u64) {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        self.done.extend(self.rpush.take());
        for cmd in self.done {
            pipe.add_command(cmd).ignore();
        }
        for cmd in self.ids.into_values() {
            pipe.add_command(cmd).ignore();
        }
        (pipe, self.merchants, self.records as u64)
    }
}

/// Begins an import: in bulk mode if at least `bulk_min` records are
/// expected and no other bulk import of this process runs.
pub(super) async fn begin_bulk_import(
    store: &RedisStore,
    expected_records: u64,
) -> StoreResult<RedisBulkImport> {
    let mut import = RedisBulkImport {
        store: store.clone(),
        bulk: None,
        holds_importing: false,
    };
    if expected_records < store.bulk_min || store.importing.load(Ordering::Acquire) {
        return Ok(import);
    }
    store.recover_bulk().await?;
    if store.importing.swap(true, Ordering::AcqRel) {
        return Ok(import);
    }
    // From here on, dropping `import` clears `importing` again.
    import.holds_importing = true;
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Unavailable(format!("random: {e}")))?;
    let token = format!(
        "{}-{}",
        std::process::id(),
        data_encoding::HEXLOWER.encode(&raw)
    );
    let started = jiff::Timestamp::now().as_second();
    ::redis::cmd("HSET")
        .arg(store.bulk_key())
        .arg(&token)
        .arg(started)
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(redis_err)?;
    // Standalone sorts the records by merchant and stores them at the end.
    let records = if store.cluster {
        None
    } else {
        let first_load = store.stored_records().await? == 0;
        let dir = sort_dir();
        remove_stale_sort_dirs(&dir);
        // Records are longer than their ids: most of the memory to them.
        Some(BulkRecords {
            sorter: Sorter::new(&dir, store.sort_bytes / 4 * 3),
            ids: Sorter::new(&dir, store.sort_bytes / 4),
            seq: 0,
            accepted: 0,
            first_load,
        })
    };
    import.bulk = Some(Mutex::new(Bulk {
        token,
        touched: HashSet::new(),
        records,
    }));
    tracing::debug!("bulk import into Redis started");
    Ok(import)
}

/// Ends a bulk import: stores its held-back records (standalone), marks
/// what it touched, removes its token.
pub(super) async fn end_bulk_import(store: &RedisStore, bulk: Bulk) -> StoreResult<Imported> {
    let mut touched = bulk.touched;
    let mut repeated = 0;
    let mut presorted = None;
    // On failure the token stays: the next run marks everyone.
    if let Some(records) = bulk.records {
        let first_load = records.first_load;
        let (stored, repeats, rows) = store.store_sorted(records, &mut touched).await?;
        repeated = repeats;
        tracing::debug!(
            records = stored,
            repeated,
            "bulk import into Redis stored its records"
        );
        // The sort holds the repeats too: then the regrade reads the lists.
        if first_load && repeated == 0 {
            presorted = Some(Presorted {
                rows,
                records: stored,
            });
        }
    }
    let marked = touched.len();
    store.mark_dirty(touched.into_iter().collect()).await?;
    ::redis::cmd("HDEL")
        .arg(store.bulk_key())
        .arg(&bulk.token)
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(redis_err)?;
    tracing::debug!(marked, "bulk import into Redis ended");
    Ok(Imported {
        repeated,
        presorted,
    })
}

/// What [`BatchStore::begin_bulk_import`] returns: a bulk import (`bulk`),
/// or none (too small, or another one runs in this process) whose writes
/// go to the store as they would without it.
pub(super) struct RedisBulkImport {
    pub(super) store: RedisStore,
    pub(super) bulk: Option<Mutex<Bulk>>,
    /// Whether this import set [`RedisStore`]'s `importing`.
    holds_importing: bool,
}

impl Drop for RedisBulkImport {
    fn drop(&mut self) {
        // Finished, or abandoned without `finish` (its token then stays in
        // Redis and the next run marks every merchant, as after a kill):
        // either way another import may begin.
        if self.holds_importing {
            self.store.importing.store(false, Ordering::Release);
        }
    }
}

pub(super) async fn stream_grading_inputs(
    store: &RedisStore,
    ids: Vec<MerchantId>,
    batch: usize,
    imported: Option<Imported>,
    tx: tokio::sync::mpsc::Sender<Vec<GradingInput>>,
) -> StoreResult<()> {
    if let Some(p) = imported.and_then(|i| i.presorted) {
        let ascending = ids.windows(2).all(|w| w[0] < w[1]);
        if ascending && store.stored_records().await? == p.records {
            return store.stream_presorted(p.rows, ids, batch, tx).await;
        }
    }
    crate::store::roles::stream_by_lookups(store, ids, batch, tx).await
}
