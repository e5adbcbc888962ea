//! `record_index`: each merchant's record seqs in one row, so that its
//! records are found with one lookup and read in import order.

use rusqlite::{params, Connection, OptionalExtension};

use super::db::sql;
use crate::store::types::StoreResult;

/// Adds every record after `since` to `record_index` (and, with `mark`,
/// marks its merchant for regrading), reading the records table.
pub(super) fn index_records_since(
    tx: &rusqlite::Transaction<'_>,
    since: i64,
    mark: bool,
) -> StoreResult<()> {
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
pub(super) fn decode_seqs(blob: &[u8]) -> impl Iterator<Item = i64> + '_ {
    blob.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
}

/// Adds `new` (ascending) to a merchant's entry in `record_index`.
pub(super) fn append_seqs(
    tx: &rusqlite::Transaction<'_>,
    merchant: &str,
    new: &[i64],
) -> StoreResult<()> {
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
pub(super) fn records_json(c: &Connection, merchant: &str) -> StoreResult<Vec<String>> {
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
pub(super) fn records_by_seq(c: &Connection, blob: &[u8]) -> StoreResult<Vec<String>> {
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
