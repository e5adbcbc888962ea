//! The search index of a first load, built once after its projections
//! instead of with each of them.
//!
//! When a regrade covers every merchant and the index is empty (a new
//! store's first refresh), [`begin`] commits a `search_deferred` row in
//! `meta` and each projection's write stages the fields of its index entry
//! here (about 90 bytes in one buffer) instead of writing them. [`finish`]
//! (after the regrade's last write, also after a stop) writes the entries in
//! one transaction, each table in its own key order: keys in merchant
//! order, rows cell by cell, documents by number — appended, never
//! inserted between others — and removes the `meta` row. A merchant indexed
//! meanwhile by another process is indexed again from its stored
//! projection. A process that dies before the end leaves the `meta` row:
//! the next regrade rebuilds the whole index from the projections
//! ([`recover`]). Until the end, searches find nothing (the store had no
//! index before).

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::db::{from_json, sql, unavailable, Database};
use super::search_index::{
    filter_tokens_of, index_all, name_tokens, Derived, SearchIndexWriter, CATEGORY_END, INSERT_DOC,
    INSERT_KEY, INSERT_ROW,
};
use crate::model::{Grade, MerchantKind, Projection};
use crate::store::types::StoreResult;

/// Index entries waiting for [`finish`]: their texts in one buffer.
#[derive(Default)]
pub(super) struct Staged {
    /// Per entry: id, region, categories (as `search.cats`), name and
    /// credit code, each followed by a NUL (never in a checked text).
    text: String,
    rows: Vec<StagedRow>,
}

struct StagedRow {
    /// Where the entry's texts start in [`Staged::text`].
    at: usize,
    grade: Grade,
    kind: MerchantKind,
    digest: i64,
}

/// A staged entry with its texts.
struct Entry<'a> {
    id: &'a str,
    region: &'a str,
    cats: &'a str,
    name: &'a str,
    uscc: Option<&'a str>,
    grade: Grade,
    kind: MerchantKind,
    digest: i64,
}

impl Staged {
    /// Stages the entry of `p` (its `derived` made beforehand).
    pub(super) fn push(&mut self, p: &Projection, derived: &Derived) {
        let m = &p.merchant;
        let at = self.text.len();
        let uscc = m.uscc.as_ref().map_or("", |u| u.as_str());
        for part in [
            m.id.as_str(),
            m.region.as_str(),
            &derived.cats,
            &m.name,
            uscc,
        ] {
            self.text.push_str(part);
            self.text.push('\0');
        }
        self.rows.push(StagedRow {
            at,
            grade: p.grade,
            kind: m.kind,
            digest: derived.digest,
        });
    }

    fn entry(&self, row: &StagedRow) -> Entry<'_> {
        let mut parts = self.text[row.at..].splitn(6, '\0');
        let mut next = || parts.next().unwrap_or("");
        let (id, region, cats, name, uscc) = (next(), next(), next(), next(), next());
        Entry {
            id,
            region,
            cats,
            name,
            uscc: (!uscc.is_empty()).then_some(uscc),
            grade: row.grade,
            kind: row.kind,
            digest: row.digest,
        }
    }
}

/// Starts staging if `conn`'s index is empty (blocking; on the writer).
/// Returns whether it did.
pub(super) fn begin(db: &Database, conn: &Connection) -> StoreResult<bool> {
    recover(db, conn)?;
    let empty: bool = conn
        .query_row("SELECT NOT EXISTS (SELECT 1 FROM search_keys)", [], |r| {
            r.get(0)
        })
        .map_err(sql)?;
    if !empty {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('search_deferred', 1)
         ON CONFLICT(key) DO UPDATE SET value = 1",
        [],
    )
    .map_err(sql)?;
    *db.search_staged.lock().unwrap_or_else(|p| p.into_inner()) = Some(Staged::default());
    tracing::debug!("search index deferred to the end of the regrade");
    Ok(true)
}

/// Rebuilds the index from the projections if a deferred build did not
/// finish (blocking; on the writer), unless this process is staging one.
pub(super) fn recover(db: &Database, conn: &Connection) -> StoreResult<()> {
    if db
        .search_staged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some()
    {
        return Ok(());
    }
    let left: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'search_deferred'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    if left.is_none() {
        return Ok(());
    }
    tracing::warn!("a deferred search index was not built; building it from the projections");
    let tx = conn.unchecked_transaction().map_err(unavailable)?;
    tx.execute_batch(
        "DELETE FROM search; DELETE FROM search_keys; DELETE FROM search_counts;
         INSERT INTO search_fts (search_fts) VALUES ('delete-all');
         DELETE FROM meta WHERE key = 'search_deferred';",
    )
    .map_err(sql)?;
    index_all(&tx)?;
    tx.commit().map_err(unavailable)
}

/// Writes the staged entries, if this process staged any (blocking).
pub(super) fn finish(db: &Database) -> StoreResult<()> {
    use rayon::prelude::*;
    let staged = db
        .search_staged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(staged) = staged else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let mut conn = db.writer.lock().unwrap_or_else(|p| p.into_inner());
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    // Indexed meanwhile by another process's write: from what is stored.
    let indexed: HashSet<String> = tx
        .prepare("SELECT merchant FROM search_keys")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(sql)?;
    let mut entries: Vec<Entry<'_>> = staged
        .rows
        .iter()
        .map(|r| staged.entry(r))
        .filter(|e| !indexed.contains(e.id))
        .collect();
    entries.par_sort_by(|a, b| a.id.cmp(b.id));
    entries.dedup_by(|later, first| {
        // A merchant written twice: its last entry counts.
        let same = later.id == first.id;
        if same {
            std::mem::swap(later, first);
        }
        same
    });
    let mut writer = SearchIndexWriter::new(&tx);
    let first_doc = writer.new_doc()?;
    let docs: Vec<(String, String)> = entries
        .par_iter()
        .map(|e| {
            let f = filter_tokens_of(
                e.region,
                e.grade,
                e.kind,
                e.cats.split_terminator(CATEGORY_END),
                e.id,
                e.uscc,
            );
            (name_tokens(e.name), f)
        })
        .collect();
    {
        let mut key = tx.prepare_cached(INSERT_KEY).map_err(sql)?;
        for (i, e) in entries.iter().enumerate() {
            let doc = first_doc + i as i64;
            key.execute(params![
                e.id,
                e.region,
                e.grade.name(),
                e.kind.name(),
                doc,
                e.digest
            ])
            .map_err(sql)?;
        }
        let mut doc = tx.prepare_cached(INSERT_DOC).map_err(sql)?;
        for (i, (n, f)) in docs.iter().enumerate() {
            doc.execute(params![first_doc + i as i64, n, f])
                .map_err(sql)?;
        }
    }
    drop(docs);
    let mut by_cell: Vec<&Entry<'_>> = entries.iter().collect();
    by_cell.par_sort_unstable_by(|a, b| {
        (a.region, a.grade.name(), a.kind.name(), a.id).cmp(&(
            b.region,
            b.grade.name(),
            b.kind.name(),
            b.id,
        ))
    });
    {
        let mut row = tx.prepare_cached(INSERT_ROW).map_err(sql)?;
        for e in by_cell {
            row.execute(params![
                e.region,
                e.grade.name(),
                e.kind.name(),
                e.id,
                e.cats,
                e.name,
                e.uscc
            ])
            .map_err(sql)?;
            writer.count(e.region, e.grade.name(), e.kind.name(), e.cats, 1);
        }
    }
    if !indexed.is_empty() {
        reindex_stored(&mut writer, &staged, &indexed)?;
    }
    writer.finish()?;
    tx.execute("DELETE FROM meta WHERE key = 'search_deferred'", [])
        .map_err(sql)?;
    tx.commit().map_err(unavailable)?;
    tracing::info!(
        merchants = entries.len(),
        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        "search index built"
    );
    Ok(())
}

/// Indexes again, from its stored projection, each staged merchant that
/// another process's write indexed meanwhile.
fn reindex_stored(
    writer: &mut SearchIndexWriter<'_>,
    staged: &Staged,
    indexed: &HashSet<String>,
) -> StoreResult<()> {
    let mut again: Vec<&str> = staged
        .rows
        .iter()
        .map(|r| staged.entry(r).id)
        .filter(|id| indexed.contains(*id))
        .collect();
    again.sort_unstable();
    again.dedup();
    for id in again {
        let json: Option<String> = writer
            .conn
            .prepare_cached("SELECT json FROM projections WHERE merchant = ?1")
            .and_then(|mut q| q.query_row([id], |r| r.get(0)).optional())
            .map_err(sql)?;
        if let Some(json) = json {
            writer.index(&from_json::<Projection>(&json)?)?;
        }
    }
    Ok(())
}
