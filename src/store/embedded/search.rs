//! Regulators' queries on the embedded store, answered from the search
//! index (`search_index.rs`) in one read snapshot: a search reads its
//! total from the counts (or one full-text count) and its page by the
//! cheaper of two ways, never every projection.
//!
//! - **Merge**: the cells (region, grade, kind) the filters allow are
//!   ranges of `search` in merchant order; a page is their merge, each row
//!   checked against the category and the text. It reads about
//!   (offset + page) × scope ÷ total rows.
//! - **Candidates**: the full-text query lists every match's document;
//!   their merchants are sorted and the page cut from them. It costs a
//!   lookup per match.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{from_json, sql, EmbeddedStore};
use super::search_index::{has_category, hex_token, name_match};
use crate::model::{IssuedCode, MerchantId, Projection};
use crate::store::merge::{run_blocking, CellRow, Merge, Want};
use crate::store::query::{MerchantQuery, Page, ReprintItem, Stats};
use crate::store::roles::RegulatorQueries;
use crate::store::types::StoreResult;

/// A merge row costs this much less than a candidate's lookup (measured
/// at 10^6 merchants: about 0.4 µs against 2.5 µs).
const CANDIDATE_COST: u64 = 6;
/// A merge of at most this many rows is always cheap enough.
const CHEAP_MERGE_ROWS: u64 = 20_000;

/// The keys of region codes starting with `prefix`: `lo <= region < hi`
/// (region codes are digits, and `:` follows `9`).
fn region_range(prefix: Option<&str>) -> (String, String) {
    let p = prefix.unwrap_or("");
    (p.to_owned(), format!("{p}:"))
}

/// A cell of the index and how many merchants it holds.
struct Cell {
    region: String,
    grade: String,
    kind: String,
    n: u64,
}

/// The cells `query`'s region, grade and kind allow.
fn cells(c: &Connection, query: &MerchantQuery) -> StoreResult<Vec<Cell>> {
    let (lo, hi) = region_range(query.region.as_deref());
    let mut q = c
        .prepare_cached(
            "SELECT region, grade, kind, n FROM search_counts
             WHERE category = '' AND region >= ?1 AND region < ?2
               AND (?3 IS NULL OR grade = ?3) AND (?4 IS NULL OR kind = ?4) AND n > 0",
        )
        .map_err(sql)?;
    let rows = q
        .query_map(
            params![
                lo,
                hi,
                query.grade.map(|g| g.name()),
                query.kind.map(|k| k.name())
            ],
            |r| {
                Ok(Cell {
                    region: r.get(0)?,
                    grade: r.get(1)?,
                    kind: r.get(2)?,
                    n: r.get::<_, i64>(3)?.max(0) as u64,
                })
            },
        )
        .map_err(sql)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
}

/// Merchants in `cells` holding `category`.
fn category_total(c: &Connection, cells: &[Cell], category: &str) -> StoreResult<u64> {
    let mut q = c
        .prepare_cached(
            "SELECT n FROM search_counts
             WHERE region = ?1 AND grade = ?2 AND kind = ?3 AND category = ?4",
        )
        .map_err(sql)?;
    let mut total = 0u64;
    for cell in cells {
        let n: Option<i64> = q
            .query_row(params![cell.region, cell.grade, cell.kind, category], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        total += n.unwrap_or(0).max(0) as u64;
    }
    Ok(total)
}

/// The full-text expression of `query`'s text and filters; `None` when it
/// has neither.
fn fts_expression(query: &MerchantQuery) -> Option<String> {
    let mut terms = Vec::new();
    if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
        terms.push(format!(
            "({} OR (f : {}) OR (f : {}))",
            name_match(q),
            hex_token('i', q),
            hex_token('u', q)
        ));
    }
    if let Some(r) = query.region.as_deref().filter(|r| !r.is_empty()) {
        terms.push(format!("(f : r{r}*)"));
    }
    if let Some(g) = query.grade {
        terms.push(format!("(f : g{})", g.name()));
    }
    if let Some(k) = query.kind {
        terms.push(format!("(f : k{})", k.name()));
    }
    if let Some(cat) = &query.category {
        terms.push(format!("(f : {})", hex_token('c', cat)));
    }
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

fn fts_count(c: &Connection, expr: &str) -> StoreResult<u64> {
    c.prepare_cached("SELECT count(*) FROM search_fts WHERE search_fts MATCH ?1")
        .and_then(|mut q| q.query_row([expr], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(sql)
}

/// A row of `search` as the merge reads it: its merchant, and whether it
/// passes the checks the cell does not make (category and text), made
/// on the row as SQLite holds it, without copying its texts.
struct Row {
    merchant: String,
    keep: bool,
}

impl CellRow for Row {
    fn merchant(&self) -> &str {
        &self.merchant
    }
}

/// The category and text checks of `query` on a row of
/// `SELECT merchant, cats, name, uscc`.
fn row_matches(r: &rusqlite::Row<'_>, query: &MerchantQuery) -> rusqlite::Result<bool> {
    if let Some(c) = query.category.as_deref() {
        if !has_category(r.get_ref(1)?.as_str()?, c) {
            return Ok(false);
        }
    }
    let Some(q) = query.q.as_deref() else {
        return Ok(true);
    };
    Ok(r.get_ref(2)?.as_str()?.contains(q)
        || r.get_ref(0)?.as_str()? == q
        || r.get_ref(3)?.as_str_or_null()? == Some(q))
}

/// The merchants matching `query` in merchant order after `after`: `skip`
/// of them passed over, then up to `take`.
fn merge(
    c: &Connection,
    cells: &[Cell],
    query: &MerchantQuery,
    after: Option<&str>,
    skip: u64,
    take: usize,
) -> StoreResult<Vec<String>> {
    let mut read = c
        .prepare_cached(if query.q.is_none() && query.category.is_none() {
            "SELECT merchant FROM search
             WHERE region = ?1 AND grade = ?2 AND kind = ?3 AND merchant > ?4
             ORDER BY merchant LIMIT ?5"
        } else {
            "SELECT merchant, cats, name, uscc FROM search
             WHERE region = ?1 AND grade = ?2 AND kind = ?3 AND merchant > ?4
             ORDER BY merchant LIMIT ?5"
        })
        .map_err(sql)?;
    let rows = run_blocking(
        Merge::new(cells.len(), after, take),
        |want: &Want| {
            let cell = &cells[want.cell];
            read.query_map(
                params![
                    cell.region,
                    cell.grade,
                    cell.kind,
                    want.after.as_deref().unwrap_or(""),
                    want.limit as i64
                ],
                |r| {
                    Ok(Row {
                        merchant: r.get(0)?,
                        keep: row_matches(r, query)?,
                    })
                },
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql)
        },
        |row| row.keep,
        skip,
        take,
    )?;
    Ok(rows.into_iter().map(|r| r.merchant).collect())
}

/// Every merchant the full-text `expr` matches, in merchant order.
fn candidates(c: &Connection, expr: &str) -> StoreResult<Vec<String>> {
    let docs = c
        .prepare_cached("SELECT rowid FROM search_fts WHERE search_fts MATCH ?1")
        .and_then(|mut q| {
            q.query_map([expr], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    let mut by_doc = c
        .prepare_cached("SELECT merchant FROM search_keys WHERE doc = ?1")
        .map_err(sql)?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        if let Some(m) = by_doc
            .query_row([doc], |r| r.get::<_, String>(0))
            .optional()
            .map_err(sql)?
        {
            out.push(m);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The stored JSON of each merchant's projection (`None`: it has none).
fn projections_json(c: &Connection, merchants: &[String]) -> StoreResult<Vec<Option<String>>> {
    let mut q = c
        .prepare_cached("SELECT json FROM projections WHERE merchant = ?1")
        .map_err(sql)?;
    merchants
        .iter()
        .map(|m| q.query_row([m], |r| r.get(0)).optional().map_err(sql))
        .collect()
}

fn projections_of(c: &Connection, merchants: &[String]) -> StoreResult<Vec<Projection>> {
    projections_json(c, merchants)?
        .into_iter()
        .flatten()
        .map(|json| from_json(&json))
        .collect()
}

/// How a search's page is read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Merge,
    Candidates,
}

/// The merchants of a search's page, and its total; `plan` forces a way
/// (tests), else the cheaper is taken.
fn search_page(
    c: &Connection,
    query: &MerchantQuery,
    plan: Option<Plan>,
) -> StoreResult<(u64, Vec<String>)> {
    let per_page = query.per_page.clamp(1, 500);
    let offset = (query.page.max(1) as u64 - 1).saturating_mul(per_page as u64);
    let cells = cells(c, query)?;
    let scope: u64 = cells.iter().map(|cell| cell.n).sum();
    let expr = fts_expression(query);
    let total = match (&query.q, &query.category, &expr) {
        (Some(_), _, Some(expr)) => fts_count(c, expr)?,
        (None, Some(cat), _) => category_total(c, &cells, cat)?,
        _ => scope,
    };
    if total == 0 || offset >= total {
        return Ok((total, Vec::new()));
    }
    let merge_rows = (offset + per_page as u64).saturating_mul(scope) / total;
    let cheaper =
        if merge_rows > CHEAP_MERGE_ROWS && total.saturating_mul(CANDIDATE_COST) < merge_rows {
            Plan::Candidates
        } else {
            Plan::Merge
        };
    let ids = match expr {
        Some(expr) if plan.unwrap_or(cheaper) == Plan::Candidates => candidates(c, &expr)?
            .into_iter()
            .skip(offset as usize)
            .take(per_page)
            .collect(),
        _ => merge(c, &cells, query, None, offset, per_page)?,
    };
    Ok((total, ids))
}

/// Runs `f` in one read transaction (one snapshot of the index and the
/// projections).
fn in_snapshot<T>(c: &Connection, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    let snapshot = c.unchecked_transaction().map_err(sql)?;
    let out = f(c);
    drop(snapshot);
    out
}

#[async_trait]
impl RegulatorQueries for EmbeddedStore {
    async fn projections_page(
        &self,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        self.read(move |c| {
            // Two statements: with `?1 IS NULL OR merchant > ?1` SQLite
            // scans the index from its start on every page.
            let mut q = c
                .prepare_cached(match after {
                    Some(_) => "SELECT json FROM projections WHERE merchant > ?1 ORDER BY merchant LIMIT ?2",
                    None => "SELECT json FROM projections WHERE ?1 IS NULL ORDER BY merchant LIMIT ?2",
                })
                .map_err(sql)?;
            let rows = q
                .query_map(
                    params![after.as_ref().map(|a| a.as_str()), limit as i64],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn search(&self, query: &MerchantQuery) -> StoreResult<Page<Projection>> {
        let query = query.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let (total, ids) = search_page(c, &query, None)?;
                Ok(Page {
                    total,
                    page: query.page.max(1),
                    per_page: query.per_page.clamp(1, 500),
                    items: projections_of(c, &ids)?,
                })
            })
        })
        .await
    }

    async fn search_after(
        &self,
        query: &MerchantQuery,
        after: Option<MerchantId>,
        limit: usize,
    ) -> StoreResult<Vec<Projection>> {
        let query = query.clone();
        self.read(move |c| {
            in_snapshot(c, |c| {
                let cells = cells(c, &query)?;
                let after = after.as_ref().map(|a| a.as_str());
                let ids = merge(c, &cells, &query, after, 0, limit.max(1))?;
                projections_of(c, &ids)
            })
        })
        .await
    }

    async fn stats(&self, region: Option<&str>) -> StoreResult<Stats> {
        let (lo, hi) = region_range(region);
        self.read(move |c| {
            let mut q = c
                .prepare_cached(
                    "SELECT region, grade, category, SUM(n) FROM search_counts
                     WHERE region >= ?1 AND region < ?2
                     GROUP BY region, grade, category HAVING SUM(n) > 0",
                )
                .map_err(sql)?;
            let mut rows = q.query(params![lo, hi]).map_err(sql)?;
            let mut stats = Stats::default();
            while let Some(row) = rows.next().map_err(sql)? {
                let region: String = row.get(0).map_err(sql)?;
                let grade: String = row.get(1).map_err(sql)?;
                let category: String = row.get(2).map_err(sql)?;
                let n = row.get::<_, i64>(3).map_err(sql)?.max(0) as u64;
                let grade = crate::model::Grade::from_name(&grade)
                    .ok_or_else(|| super::db::corrupt(format!("grade `{grade}` in the index")))?;
                stats.add_count(&region, grade, &category, n);
            }
            Ok(stats)
        })
        .await
    }

    async fn reprint(&self) -> StoreResult<Vec<ReprintItem>> {
        let rows: Vec<(String, Vec<String>)> = self
            .read(|c| {
                in_snapshot(c, |c| {
                    // The list from its partial index (never a scan of the
                    // codes), then each merchant's projection and codes.
                    let merchants = c
                        .prepare_cached(
                            "SELECT merchant FROM search_keys INDEXED BY search_keys_reprint
                             WHERE printed IS NOT NULL AND printed <> grade
                             ORDER BY merchant",
                        )
                        .and_then(|mut q| {
                            q.query_map([], |r| r.get::<_, String>(0))?
                                .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .map_err(sql)?;
                    let mut codes = c
                        .prepare_cached(
                            "SELECT json FROM codes WHERE merchant = ?1 AND status = 'active'
                             ORDER BY serial",
                        )
                        .map_err(sql)?;
                    let mut out = Vec::with_capacity(merchants.len());
                    for (m, p) in merchants.iter().zip(projections_json(c, &merchants)?) {
                        let active = codes
                            .query_map([m], |r| r.get::<_, String>(0))
                            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                            .map_err(sql)?;
                        if let Some(p) = p {
                            out.push((p, active));
                        }
                    }
                    Ok(out)
                })
            })
            .await?;
        let mut out: Vec<ReprintItem> = Vec::with_capacity(rows.len());
        for (p, codes) in &rows {
            let p: Projection = from_json(p)?;
            // The first active code that shows another grade (as the
            // default reads them).
            for c in codes {
                let c: IssuedCode = from_json(c)?;
                if c.printed_grade != p.grade {
                    out.push(ReprintItem::new(&p, &c));
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn reprint_count(&self, region: Option<&str>) -> StoreResult<u64> {
        let (lo, hi) = region_range(region);
        self.read(move |c| {
            c.prepare_cached(
                "SELECT count(*) FROM search_keys
                 WHERE printed IS NOT NULL AND printed <> grade AND region >= ?1 AND region < ?2",
            )
            .and_then(|mut q| q.query_row(params![lo, hi], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(sql)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::{project, Rules};
    use crate::model::{Grade, MerchantKind};
    use crate::store::roles::BatchStore;

    /// Both ways of reading a page give what a filter over every
    /// projection gives, whichever the costs would pick.
    #[tokio::test]
    async fn merge_and_candidates_read_the_same_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let words = ["鑫源", "超市", "超", "A", "a", "1", "店"];
        let regions = ["511504", "511502", "510104"];
        let cats = ["食品", "酒类", "药品"];
        let mut all = Vec::new();
        for i in 0..300usize {
            let name: String = (0..1 + i % 4)
                .map(|k| words[(i * 7 + k * 3) % words.len()])
                .collect();
            let line = serde_json::json!({
                "id": format!("M{:03}", (i * 37) % 1000), "name": name,
                "kind": if i % 5 == 0 { "vendor" } else { "shop" }, "address": "南岸",
                "region": regions[i % 3], "categories": [cats[i % 3], cats[(i / 3) % 3]],
            });
            let m = crate::records::parse_merchant(&line.to_string()).unwrap();
            let mut p = project(
                &m,
                &[],
                None,
                &Rules::default(),
                jiff::civil::date(2026, 3, 1),
                jiff::Timestamp::UNIX_EPOCH,
            );
            p.grade = Grade::ALL[(i / 7) % 3];
            all.push(p);
        }
        store.put_projections(all.clone()).await.unwrap();
        all.sort_by(|a, b| a.merchant.id.cmp(&b.merchant.id));
        let mut queries = Vec::new();
        for q in [
            None,
            Some("超"),
            Some("超市"),
            Some("鑫源超"),
            Some("A"),
            Some("M037"),
            Some("x"),
        ] {
            for region in [None, Some("5115"), Some("510104")] {
                for (grade, kind, category) in [
                    (None, None, None),
                    (Some(Grade::Red), None, Some("酒类")),
                    (None, Some(MerchantKind::Vendor), None),
                ] {
                    for (page, per_page) in [(1, 7), (3, 5), (40, 10)] {
                        queries.push(MerchantQuery {
                            q: q.map(str::to_owned),
                            grade,
                            region: region.map(str::to_owned),
                            category: category.map(str::to_owned),
                            kind,
                            page,
                            per_page,
                        });
                    }
                }
            }
        }
        let reads = queries.clone();
        let pages = store
            .read(move |c| {
                let mut out = Vec::new();
                for q in &reads {
                    let merge = search_page(c, q, Some(Plan::Merge))?;
                    let candidates = search_page(c, q, Some(Plan::Candidates))?;
                    out.push((merge, candidates));
                }
                Ok(out)
            })
            .await
            .unwrap();
        for (q, (merge, candidates)) in queries.iter().zip(pages) {
            let matching: Vec<String> = all
                .iter()
                .filter(|p| q.matches(p))
                .map(|p| p.merchant.id.to_string())
                .collect();
            let page: Vec<String> = matching
                .iter()
                .skip((q.page - 1) * q.per_page)
                .take(q.per_page)
                .cloned()
                .collect();
            let want = (matching.len() as u64, page);
            assert_eq!(merge, want, "merge: {q:?}");
            assert_eq!(candidates, want, "candidates: {q:?}");
        }
    }
}
