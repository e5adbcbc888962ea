//! Regulators' queries on Redis, from the search index (`search_index`):
//! the totals and the stats from the counts hash, a page as the merge of
//! the cells' sorted sets in id order (rows read only when the category or
//! the text must be checked), the reprint count from its hash.
//!
//! A search with a text reads the ids and rows of every cell its filters
//! allow (Redis has no substring index here): fast within a county or a
//! township, slow across a province (see BENCHMARKS.md); it never reads a
//! projection but those of the page.

use std::collections::HashMap;

use super::common::{corrupt, redis_err};
use super::conn::RedisStore;
use super::search_index::{CATEGORY_END, FIELD_END};
use crate::model::{CodeStatus, Grade, MerchantId, Projection};
use crate::store::merge::{run, CellRow, Merge, Want};
use crate::store::query::{MerchantQuery, Page, ReprintItem, Stats};
use crate::store::roles::ServiceWrites;
use crate::store::types::StoreResult;

/// A line of the counts hash.
struct Count {
    region: String,
    grade: String,
    kind: String,
    category: String,
    n: u64,
}

async fn counts(store: &RedisStore) -> StoreResult<Vec<Count>> {
    let all: HashMap<String, i64> = ::redis::cmd("HGETALL")
        .arg(store.search_keys().counts)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let mut out = Vec::with_capacity(all.len());
    for (field, n) in all {
        let mut parts = field.splitn(4, '|');
        let (Some(region), Some(grade), Some(kind), Some(category)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt(format!("search count field `{field}`")));
        };
        if n > 0 {
            out.push(Count {
                region: region.to_owned(),
                grade: grade.to_owned(),
                kind: kind.to_owned(),
                category: category.to_owned(),
                n: n as u64,
            });
        }
    }
    Ok(out)
}

/// Whether a count's cell is one `query`'s region, grade and kind allow.
fn allowed(c: &Count, query: &MerchantQuery) -> bool {
    query
        .region
        .as_deref()
        .is_none_or(|r| c.region.starts_with(r))
        && query.grade.is_none_or(|g| g.name() == c.grade)
        && query.kind.is_none_or(|k| k.name() == c.kind)
}

/// A merchant of a cell, with its row when the merge must check it.
struct Row {
    merchant: String,
    row: Option<String>,
}

impl CellRow for Row {
    fn merchant(&self) -> &str {
        &self.merchant
    }
}

impl Row {
    fn matches(&self, query: &MerchantQuery) -> bool {
        let Some(row) = &self.row else {
            return true;
        };
        let mut f = row.splitn(6, FIELD_END);
        let (_, _, _, cats, uscc, name) = (
            f.next(),
            f.next(),
            f.next(),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        );
        query
            .category
            .as_deref()
            .is_none_or(|c| cats.split(CATEGORY_END).any(|x| !x.is_empty() && x == c))
            && query.q.as_deref().is_none_or(|q| {
                name.contains(q) || self.merchant == q || (!uscc.is_empty() && uscc == q)
            })
    }
}

/// The reads a merge waits for, in one pipeline (and the rows in a second).
async fn read_cells(
    store: &RedisStore,
    cells: &[String],
    with_rows: bool,
    wants: Vec<Want>,
) -> StoreResult<Vec<(usize, Vec<Row>)>> {
    let mut pipe = ::redis::pipe();
    for w in &wants {
        let min = match &w.after {
            Some(a) => format!("({a}"),
            None => "-".to_owned(),
        };
        pipe.cmd("ZRANGE")
            .arg(&cells[w.cell])
            .arg(min)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(w.limit);
    }
    let ids: Vec<Vec<String>> = pipe
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let rows: Vec<Vec<Option<String>>> = if with_rows && ids.iter().any(|i| !i.is_empty()) {
        let key = store.search_keys().rows;
        let mut pipe = ::redis::pipe();
        // `HMGET` of no fields is an error; ask for one that is no id.
        let no_id = [String::new()];
        for batch in &ids {
            let fields = if batch.is_empty() {
                &no_id[..]
            } else {
                &batch[..]
            };
            pipe.cmd("HMGET").arg(&key).arg(fields);
        }
        pipe.query_async(&mut store.conn())
            .await
            .map_err(redis_err)?
    } else {
        ids.iter().map(|b| vec![None; b.len()]).collect()
    };
    Ok(wants
        .iter()
        .zip(ids)
        .zip(rows)
        .map(|((w, ids), rows)| {
            let rows = ids
                .into_iter()
                .zip(rows)
                .map(|(merchant, row)| Row { merchant, row })
                .collect();
            (w.cell, rows)
        })
        .collect())
}

/// The merchants of `query` in id order after `after`: `skip` passed over,
/// then up to `take`.
async fn merged(
    store: &RedisStore,
    counts: &[Count],
    query: &MerchantQuery,
    after: Option<&str>,
    skip: u64,
    take: usize,
) -> StoreResult<Vec<String>> {
    let cells: Vec<String> = counts
        .iter()
        .filter(|c| c.category.is_empty() && allowed(c, query))
        .map(|c| store.cell_key(&c.region, &c.grade, &c.kind))
        .collect();
    let with_rows = query.q.is_some() || query.category.is_some();
    let cells = &cells;
    let rows = run(
        Merge::new(cells.len(), after, take.min(10_000)),
        |wants| read_cells(store, cells, with_rows, wants),
        |row: &Row| row.matches(query),
        skip,
        take,
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.merchant).collect())
}

/// Fields read per `HMGET` when a search reads every row of its cells.
const SCAN_FIELDS: usize = 5_000;

/// Every merchant of the cells `query` allows that passes its checks, in
/// id order: each cell's members in one pipeline, then their rows in
/// pipelined batches (fewer round trips than a merge that reads it all).
async fn scan(
    store: &RedisStore,
    counts: &[Count],
    query: &MerchantQuery,
) -> StoreResult<Vec<String>> {
    let mut pipe = ::redis::pipe();
    for c in counts
        .iter()
        .filter(|c| c.category.is_empty() && allowed(c, query))
    {
        pipe.cmd("ZRANGE")
            .arg(store.cell_key(&c.region, &c.grade, &c.kind))
            .arg(0)
            .arg(-1);
    }
    let cells: Vec<Vec<String>> = pipe
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let ids: Vec<String> = cells.into_iter().flatten().collect();
    let key = store.search_keys().rows;
    let mut out = Vec::new();
    for batch in ids.chunks(SCAN_FIELDS * 8) {
        let mut pipe = ::redis::pipe();
        for part in batch.chunks(SCAN_FIELDS) {
            pipe.cmd("HMGET").arg(&key).arg(part);
        }
        let rows: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut store.conn())
            .await
            .map_err(redis_err)?;
        for (merchant, row) in batch.iter().zip(rows.into_iter().flatten()) {
            let row = Row {
                merchant: merchant.clone(),
                row: Some(row.unwrap_or_default()),
            };
            if row.matches(query) {
                out.push(row.merchant);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

async fn projections(store: &RedisStore, ids: Vec<String>) -> StoreResult<Vec<Projection>> {
    let ids = ids
        .iter()
        .map(|s| MerchantId::parse(s).map_err(corrupt))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(store
        .projections_of(&ids)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

pub(super) async fn search(
    store: &RedisStore,
    query: &MerchantQuery,
) -> StoreResult<Page<Projection>> {
    let per_page = query.per_page.clamp(1, 500);
    let offset = (query.page.max(1) as u64 - 1).saturating_mul(per_page as u64);
    let counts = counts(store).await?;
    let (total, ids) = if query.q.is_some() {
        // Every match, to count them.
        let all = scan(store, &counts, query).await?;
        let total = all.len() as u64;
        let page = all
            .into_iter()
            .skip(offset as usize)
            .take(per_page)
            .collect();
        (total, page)
    } else {
        let category = query.category.as_deref().unwrap_or("");
        let total = counts
            .iter()
            .filter(|c| c.category == category && allowed(c, query))
            .map(|c| c.n)
            .sum();
        let page = if offset < total {
            merged(store, &counts, query, None, offset, per_page).await?
        } else {
            Vec::new()
        };
        (total, page)
    };
    Ok(Page {
        total,
        page: query.page.max(1),
        per_page,
        items: projections(store, ids).await?,
    })
}

pub(super) async fn search_after(
    store: &RedisStore,
    query: &MerchantQuery,
    after: Option<MerchantId>,
    limit: usize,
) -> StoreResult<Vec<Projection>> {
    let counts = counts(store).await?;
    let after = after.as_ref().map(|a| a.as_str());
    let ids = merged(store, &counts, query, after, 0, limit.max(1)).await?;
    projections(store, ids).await
}

pub(super) async fn stats(store: &RedisStore, region: Option<&str>) -> StoreResult<Stats> {
    let mut stats = Stats::default();
    for c in counts(store).await? {
        if region.is_none_or(|r| c.region.starts_with(r)) {
            let grade = Grade::from_name(&c.grade)
                .ok_or_else(|| corrupt(format!("grade `{}` in the search index", c.grade)))?;
            stats.add_count(&c.region, grade, &c.category, c.n);
        }
    }
    Ok(stats)
}

pub(super) async fn reprint_count(store: &RedisStore, region: Option<&str>) -> StoreResult<u64> {
    let all: HashMap<String, i64> = ::redis::cmd("HGETALL")
        .arg(store.search_keys().reprint_counts)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    Ok(all
        .iter()
        .filter(|(r, _)| region.is_none_or(|p| r.starts_with(p)))
        .map(|(_, n)| (*n).max(0) as u64)
        .sum())
}

pub(super) async fn reprint(store: &RedisStore) -> StoreResult<Vec<ReprintItem>> {
    let ids: Vec<String> = ::redis::cmd("ZRANGE")
        .arg(store.search_keys().reprint)
        .arg(0)
        .arg(-1)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let mut out = Vec::with_capacity(ids.len());
    for window in ids.chunks(500) {
        for p in projections(store, window.to_vec()).await? {
            let codes = store.codes_of(&p.merchant.id).await?;
            if let Some(code) = codes
                .iter()
                .find(|c| c.status == CodeStatus::Active && c.printed_grade != p.grade)
            {
                out.push(ReprintItem::new(&p, code));
            }
        }
    }
    Ok(out)
}
