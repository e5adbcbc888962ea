//! The regulators' search index in Redis, so that a search, the stats
//! and the reprint count do not read every projection.
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:{search}:row` | hash | merchant → its indexed row: region, grade, kind, categories, credit code, name |
//! | `P:{search}:cell:<region>:<grade>:<kind>` | sorted set | the cell's merchants, all of score 0 (so in id order, `BYLEX`) |
//! | `P:{search}:counts` | hash | `<region>\|<grade>\|<kind>\|<category>` → merchants (category empty: each merchant once) |
//! | `P:{search}:uscc:<code>` | set | the merchants of a credit code |
//! | `P:{search}:printed` | hash | merchant → the grade printed on its active code |
//! | `P:{search}:reprint` | sorted set | merchants whose active code shows another grade (score 0) |
//! | `P:{search}:reprint-counts` | hash | region → merchants on the reprint list |
//! | `P:{search}:built` | string | set once every projection stored before the index existed is in it |
//!
//! Every key is tagged `{search}`: one slot, so one script updates a batch
//! atomically, also in a cluster (where the keys live on one master).
//! Written right after the projections (or codes) they describe, by one
//! script per 1,000 merchants that compares each merchant's row with the
//! one it holds and moves only what changed. Not atomic with the
//! projection write (that lives in the merchant's slot): a crash in
//! between leaves the merchant's entry as it was until its next projection
//! write, which compares with what the index holds and so repairs it
//! (`refresh --full` rewrites every projection).

use std::sync::LazyLock;

use ::redis::Script;
use futures_util::{StreamExt, TryStreamExt};

use super::common::redis_err;
use super::conn::RedisStore;
use crate::model::{CodeStatus, MerchantId, Projection};
use crate::store::roles::{RegulatorQueries, ServiceWrites};
use crate::store::types::StoreResult;

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

/// Indexes `rows` (merchant id, row), in order (of one merchant twice, the
/// last counts).
pub(super) async fn index_rows(store: &RedisStore, rows: Vec<(String, String)>) -> StoreResult<()> {
    let keys = store.search_keys();
    let chunks: Vec<Vec<(String, String)>> = rows.chunks(CHUNK).map(<[_]>::to_vec).collect();
    // Chunks in flight at once must not share a merchant.
    let sequential = {
        let mut ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.windows(2).any(|w| w[0] == w[1])
    };
    let keys = &keys;
    futures_util::stream::iter(chunks)
        .map(|chunk| async move {
            let mut inv = INDEX.prepare_invoke();
            inv.key(&keys.rows)
                .key(&keys.counts)
                .key(&keys.printed)
                .key(&keys.reprint)
                .key(&keys.reprint_counts)
                .arg(&keys.cell_prefix)
                .arg(&keys.uscc_prefix)
                .arg(chunk.len());
            for (id, row) in &chunk {
                inv.arg(id).arg(row);
            }
            let _: i64 = inv
                .invoke_async(&mut store.conn())
                .await
                .map_err(redis_err)?;
            StoreResult::Ok(())
        })
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
