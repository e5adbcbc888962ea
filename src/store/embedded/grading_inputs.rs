//! Grading inputs read from the embedded store: by index lookups for a
//! few merchants, by range scans for a dense batch, and for a regrade of
//! most merchants by one sorted pass over the records table (or over the
//! sorted records the bulk import before it left).

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::db::{
    all_ok, connect, corrupt, from_json, sql, unavailable, widen_writer_cache, Database, DB_FILE,
    READER_CACHE_KIB,
};
use super::record_index::{decode_seqs, records_by_seq};
use crate::model::{Grade, MerchantId};
use crate::store::sort::{SortRow, Sorter};
use crate::store::types::{GradingInput, Presorted, StoreResult};

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
pub(super) fn read_grading_inputs_in_order(
    db: &Database,
    ids: &[MerchantId],
    all: bool,
    presorted: Option<Presorted>,
    batch: usize,
    sampling_only: bool,
    tx: &tokio::sync::mpsc::Sender<Vec<GradingInput>>,
) -> StoreResult<()> {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    db.note_bulk_writes();
    widen_writer_cache(&db.writer.lock().unwrap_or_else(|p| p.into_inner()))?;
    let conn = connect(&db.dir.join(DB_FILE), READER_CACHE_KIB).map_err(unavailable)?;
    conn.execute_batch("BEGIN").map_err(sql)?;
    // The first read: the snapshot the records are read in.
    let max_seq: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |r| {
            r.get(0)
        })
        .map_err(sql)?;
    let presorted = presorted.filter(|p| !sampling_only && p.records == max_seq as u64);
    let from_bulk = presorted.is_some();
    let mut records = match presorted {
        Some(p) => p.rows,
        None => {
            let mut sorter = Sorter::new(&db.dir, db.sort_bytes);
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
                    if sampling_only && !is_marked_sampling(json.as_bytes()) {
                        continue;
                    }
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
        let mut inputs = all_ok(raw.into_par_iter().map(RawInput::parse).collect())?;
        if sampling_only {
            // The marker may also match text it is not the kind of.
            for input in &mut inputs {
                input.records.retain(crate::model::Record::is_sampling);
            }
            inputs.retain(|i| !i.records.is_empty());
        }
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
        if sampling_only && input.count == 0 {
            continue;
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

/// Whether a record's stored JSON may be a sampling record's: it holds
/// the kind's member as the canonical form writes it (`false` only for
/// records that are not).
fn is_marked_sampling(json: &[u8]) -> bool {
    memchr::memmem::find(json, crate::model::SAMPLING_KIND_MEMBER).is_some()
}

/// A merchant's grading input as stored, parsed later in parallel.
#[derive(Default)]
pub(super) struct RawInput {
    id: String,
    /// JSON; empty if the merchant is unknown.
    merchant: String,
    /// The records in import order, each as a little-endian `u32` length
    /// and that many bytes: JSON, or with `binary` the form of
    /// [`crate::model::encode_record`]. One buffer per merchant instead
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

    pub(super) fn parse(self) -> StoreResult<GradingInput> {
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
                crate::model::decode_record(&merchant.id, item)
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
pub(super) fn raw_inputs_by_id(c: &Connection, ids: &[MerchantId]) -> StoreResult<Vec<RawInput>> {
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
pub(super) fn raw_inputs_by_range(
    c: &Connection,
    ids: &[MerchantId],
) -> StoreResult<Option<Vec<RawInput>>> {
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
