//! The regulators' search index in Redis, so that a search, the stats
//! and the reprint count do not read every projection.
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{search}:row` | hash | merchant → its indexed row: region, grade, kind, categories, credit code, name |
//! | `P:{search}:cell:<region>:<grade>:<kind>` | sorted set | the cell's merchants, all of score 0 (so in id order, `BYLEX`) |
//! | `P:{search}:counts` | hash | `<region>\|<grade>\|<kind>\|<category>` → merchants (category empty: each merchant once) |
//! | `P:{search}:printed` | hash | merchant → the grade printed on its active code |
//! | `P:{search}:reprint` | sorted set | merchants whose active code shows another grade (score 0) |
//! | `P:{search}:reprint-counts` | hash | region → merchants on the reprint list |
//! | `P:{search}:built` | string | set once every projection stored before the index existed is in it |
//!
//! Every key is tagged `{search}`: one slot, so one script updates a batch
//! atomically, also in a cluster (where the keys live on one master).
//! Written right after the projections (or codes) they describe, 1,000
//! merchants at a time: this process reads the rows and printed grades the
//! index holds for them, works out what moves (only what changed), and one
//! script applies the moves if the index still holds what was read, or
//! the batch is read again (a code issued meanwhile). Redis's one thread
//! does the writes only, not the comparing (4× less of its time per
//! merchant than a script that compared the rows itself). Older stores'
//! sets of merchants per credit code, which nothing read, are removed by
//! the first connect (`migrate`). Not atomic with the
//! projection write (that lives in the merchant's slot): a crash in
//! between leaves the merchant's entry as it was until its next projection
//! write, which compares with what the index holds and so repairs it
//! (`refresh --full` rewrites every projection).

use std::collections::HashMap;
use std::sync::LazyLock;

use ::redis::Script;
use futures_util::{StreamExt, TryStreamExt};

use super::common::redis_err;
use super::conn::RedisStore;
use crate::model::{CodeStatus, MerchantId, Projection};
use crate::store::roles::{RegulatorQueries, ServiceWrites};
use crate::store::types::{StoreError, StoreResult};

/// Separates a row's fields; follows each category (neither is in a
/// checked text).
pub(super) const FIELD_END: char = '\u{1e}';
pub(super) const CATEGORY_END: char = '\u{1f}';

/// Merchants per index script.
const CHUNK: usize = 1000;
/// Index scripts in flight.
const IN_FLIGHT: usize = 4;

static INDEX: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!("\n", include_str!("scripts/search_index.lua"))));
static PRINTED: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!("\n", include_str!("scripts/search_printed.lua"))));

/// The index's keys.
pub(super) struct SearchKeys {
    pub(super) rows: String,
    pub(super) counts: String,
    pub(super) printed: String,
    pub(super) reprint: String,
    pub(super) reprint_counts: String,
    pub(super) built: String,
    pub(super) cell_prefix: String,
    pub(super) uscc_prefix: String,
}

impl RedisStore {
    pub(super) fn search_keys(&self) -> SearchKeys {
        let k = |what: &str| self.keys.global("search", what);
        SearchKeys {
            rows: k("row"),
            counts: k("counts"),
            printed: k("printed"),
            reprint: k("reprint"),
            reprint_counts: k("reprint-counts"),
            built: k("built"),
            cell_prefix: k("cell:"),
            uscc_prefix: k("uscc:"),
        }
    }

    /// The key of a cell.
    pub(super) fn cell_key(&self, region: &str, grade: &str, kind: &str) -> String {
        format!("{}{region}:{grade}:{kind}", self.search_keys().cell_prefix)
    }
}

/// A projection's row in the index.
pub(super) fn row(p: &Projection) -> String {
    let m = &p.merchant;
    let mut out = String::with_capacity(96);
    for part in [m.region.as_str(), p.grade.name(), m.kind.name()] {
        out.push_str(part);
        out.push(FIELD_END);
    }
    for c in &m.categories {
        out.push_str(c);
        out.push(CATEGORY_END);
    }
    out.push(FIELD_END);
    out.push_str(m.uscc.as_ref().map_or("", |u| u.as_str()));
    out.push(FIELD_END);
    out.push_str(&m.name);
    out
}

/// What indexing a batch of rows moves, computed from the rows and printed
/// grades the index holds for its merchants.
#[derive(Default)]
struct Moves<'a> {
    /// The rows to store, each merchant's last (its id, its row).
    rows: Vec<(&'a str, &'a str)>,
    /// Counts hash field → change.
    counts: HashMap<String, i64>,
    /// Region → change of its reprint count.
    reprint_counts: HashMap<&'a str, i64>,
    /// Sorted set (score 0) → member → present after the batch.
    zsets: HashMap<String, HashMap<&'a str, bool>>,
}

/// A row's fields, as `row` writes them.
struct Fields<'a> {
    region: &'a str,
    grade: &'a str,
    kind: &'a str,
    /// Each category followed by [`CATEGORY_END`].
    categories: &'a str,
}

fn fields(row: &str) -> Fields<'_> {
    let mut f = row.split(FIELD_END);
    let mut next = || f.next().unwrap_or("");
    Fields {
        region: next(),
        grade: next(),
        kind: next(),
        categories: next(),
    }
}

impl<'a> Moves<'a> {
    /// Adds (`by` 1) or removes (`by` -1) a merchant's entries for `row`,
    /// `printed` being the grade on its active code.
    fn place(
        &mut self,
        keys: &SearchKeys,
        id: &'a str,
        row: &'a str,
        printed: Option<&str>,
        by: i64,
    ) {
        let f = fields(row);
        let present = by > 0;
        let cell = format!("{}{}:{}:{}", keys.cell_prefix, f.region, f.grade, f.kind);
        self.zsets.entry(cell).or_default().insert(id, present);
        let cell = format!("{}|{}|{}|", f.region, f.grade, f.kind);
        // Each category once (the text after the last end is no category).
        let mut seen: Vec<&str> = Vec::new();
        if let Some((listed, _)) = f.categories.rsplit_once(CATEGORY_END) {
            for c in listed.split(CATEGORY_END) {
                if !c.is_empty() && !seen.contains(&c) {
                    seen.push(c);
                    *self.counts.entry(format!("{cell}{c}")).or_default() += by;
                }
            }
        }
        *self.counts.entry(cell).or_default() += by;
        if printed.is_some_and(|p| p != f.grade) {
            self.zsets
                .entry(keys.reprint.clone())
                .or_default()
                .insert(id, present);
            *self.reprint_counts.entry(f.region).or_default() += by;
        }
    }

    /// The moves of `rows` (merchant id, row; of one merchant twice, the
    /// last counts, as if they were indexed one after another), `held` and
    /// `printed` being what the index holds for each.
    fn of(
        keys: &SearchKeys,
        rows: &'a [(String, String)],
        held: &'a [Option<String>],
        printed: &'a [Option<String>],
    ) -> Moves<'a> {
        let mut moves = Moves::default();
        // Each merchant's row so far, and its place in `moves.rows`.
        let mut current: HashMap<&str, (Option<&str>, Option<usize>)> = HashMap::new();
        for (i, (id, row)) in rows.iter().enumerate() {
            let (old, listed) = current
                .entry(id.as_str())
                .or_insert((held[i].as_deref(), None));
            if *old == Some(row.as_str()) {
                continue;
            }
            let p = printed[i].as_deref();
            if let Some(old) = *old {
                moves.place(keys, id, old, p, -1);
            }
            moves.place(keys, id, row, p, 1);
            *old = Some(row);
            match *listed {
                Some(at) => moves.rows[at].1 = row,
                None => {
                    *listed = Some(moves.rows.len());
                    moves.rows.push((id, row));
                }
            }
        }
        moves
    }

    /// Adds the moves to the index script's arguments (after the held
    /// rows and grades; see `scripts/search_index.lua`).
    fn args(&self, inv: &mut ::redis::ScriptInvocation<'_>) {
        inv.arg(self.rows.len());
        for (id, row) in &self.rows {
            inv.arg(*id).arg(*row);
        }
        let deltas = |inv: &mut ::redis::ScriptInvocation<'_>, d: Vec<(&str, i64)>| {
            inv.arg(d.len());
            for (field, by) in d {
                inv.arg(field).arg(by);
            }
        };
        deltas(
            inv,
            nonzero(self.counts.iter().map(|(k, v)| (k.as_str(), *v))),
        );
        deltas(
            inv,
            nonzero(self.reprint_counts.iter().map(|(k, v)| (*k, *v))),
        );
        for (key, members) in &self.zsets {
            let (added, removed): (Vec<_>, Vec<_>) = members.iter().partition(|(_, &p)| p);
            inv.arg(key).arg(removed.len());
            for (m, _) in removed {
                inv.arg(*m);
            }
            inv.arg(added.len());
            for (m, _) in added {
                inv.arg(0).arg(*m);
            }
        }
    }
}

/// The entries of `changes` that change something.
fn nonzero<'k>(changes: impl Iterator<Item = (&'k str, i64)>) -> Vec<(&'k str, i64)> {
    changes.filter(|(_, by)| *by != 0).collect()
}

/// Times a chunk is read and moved again when a merchant's row or printed
/// grade changed in between (a code issued or an override set meanwhile).
const ATTEMPTS: usize = 16;

/// Indexes one chunk: reads what the index holds for its merchants,
/// computes the moves here (not in Redis, whose one thread every writer
/// and reader waits for), and has the script apply them if the index still
/// holds what was read.
async fn index_chunk(
    store: &RedisStore,
    keys: &SearchKeys,
    chunk: &[(String, String)],
) -> StoreResult<()> {
    let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
    for _ in 0..ATTEMPTS {
        let (held, printed): (Vec<Option<String>>, Vec<Option<String>>) = ::redis::pipe()
            .cmd("HMGET")
            .arg(&keys.rows)
            .arg(&ids)
            .cmd("HMGET")
            .arg(&keys.printed)
            .arg(&ids)
            .query_async(&mut store.conn())
            .await
            .map_err(redis_err)?;
        if held.len() != ids.len() || printed.len() != ids.len() {
            return Err(StoreError::Corrupt(
                "redis: unexpected reply length reading the search index".into(),
            ));
        }
        let moves = Moves::of(keys, chunk, &held, &printed);
        let mut inv = INDEX.prepare_invoke();
        inv.key(&keys.rows)
            .key(&keys.counts)
            .key(&keys.printed)
            .key(&keys.reprint)
            .key(&keys.reprint_counts)
            .arg(ids.len());
        for ((id, h), p) in ids.iter().zip(&held).zip(&printed) {
            inv.arg(*id)
                .arg(h.as_deref().unwrap_or(""))
                .arg(p.as_deref().unwrap_or(""));
        }
        moves.args(&mut inv);
        let applied: i64 = inv
            .invoke_async(&mut store.conn())
            .await
            .map_err(redis_err)?;
        if applied == 1 {
            return Ok(());
        }
        tracing::debug!(
            merchants = ids.len(),
            "the search index changed between its read and its write; reading it again"
        );
    }
    Err(StoreError::Unavailable(format!(
        "redis: the search index of {} merchants (from {}) changed under each of {ATTEMPTS} \
         attempts to update it (codes issued for them meanwhile); their projections are stored, \
         and `refresh --full` brings the index up to date",
        ids.len(),
        ids.first().copied().unwrap_or("")
    )))
}

/// Indexes `rows` (merchant id, row), in order (of one merchant twice, the
/// last counts).
pub(super) async fn index_rows(store: &RedisStore, rows: Vec<(String, String)>) -> StoreResult<()> {
    let keys = store.search_keys();
    // Chunks in flight at once must not share a merchant.
    let sequential = {
        let mut ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.windows(2).any(|w| w[0] == w[1])
    };
    let (keys, rows) = (&keys, &rows);
    futures_util::stream::iter((0..rows.len()).step_by(CHUNK))
        .map(|from| index_chunk(store, keys, &rows[from..rows.len().min(from + CHUNK)]))
        .buffered(if sequential { 1 } else { IN_FLIGHT })
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Indexes projections just written.
pub(super) async fn index(store: &RedisStore, projections: &[Projection]) -> StoreResult<()> {
    let rows = projections
        .iter()
        .map(|p| (p.merchant.id.to_string(), row(p)))
        .collect();
    index_rows(store, rows).await
}

/// Notes the grade on the merchant's active code (after a code write).
pub(super) async fn note_printed(store: &RedisStore, id: &MerchantId) -> StoreResult<()> {
    let codes = store.codes_of(id).await?;
    let printed = codes
        .iter()
        .find(|c| c.status == CodeStatus::Active)
        .map_or("", |c| c.printed_grade.name());
    let keys = store.search_keys();
    let _: i64 = PRINTED
        .prepare_invoke()
        .key(&keys.rows)
        .key(&keys.printed)
        .key(&keys.reprint)
        .key(&keys.reprint_counts)
        .arg(id.as_str())
        .arg(printed)
        .invoke_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    Ok(())
}

impl RedisStore {
    /// Builds the search index of a store written before it existed, once
    /// (a store that starts empty is only marked); `StoreSpec::open` calls
    /// it after connecting.
    pub async fn build_search_index(&self) -> StoreResult<()> {
        build_once(self).await
    }
}

async fn build_once(store: &RedisStore) -> StoreResult<()> {
    let keys = store.search_keys();
    let built: bool = ::redis::cmd("EXISTS")
        .arg(&keys.built)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    if built {
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut with_codes = Vec::new();
    store
        .for_each_projection(&mut |p| {
            rows.push((p.merchant.id.to_string(), row(&p)));
            with_codes.push(p.merchant.id.clone());
        })
        .await?;
    if !rows.is_empty() {
        tracing::info!(merchants = rows.len(), "building the search index");
    }
    index_rows(store, rows).await?;
    futures_util::stream::iter(with_codes)
        .map(|id| async move { note_printed(store, &id).await })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let _: () = ::redis::cmd("SET")
        .arg(&keys.built)
        .arg(1)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    Ok(())
}
