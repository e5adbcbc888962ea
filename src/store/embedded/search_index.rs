//! The regulators' search index, written with the projections it is made
//! of (tables in `search_index.sql`): a projection's write indexes it in
//! the same transaction, so the index never disagrees with what a read of
//! every projection would find.
//!
//! Why a full-text table of hexadecimal tokens: a name is searched for any
//! part of it (`超市`, `鑫源超市`, one character), and the names are
//! Chinese, without spaces. Each name is indexed as its overlapping pairs of
//! characters (and its last character alone); a part of two or more
//! characters is then the phrase of its own pairs, one character the pairs
//! that start with it. Written as hexadecimal code points, the tokens pass
//! SQLite's `ascii` tokenizer unchanged (no case folding, no separators
//! inside), so a match is exactly "the name contains the text", as
//! [`MerchantQuery::matches`](crate::store::query::MerchantQuery::matches)
//! says. The filters (region, grade, kind, categories) and the exact
//! matches (id, credit code) are tokens of a second column, so the count of
//! a text search with filters is one full-text query.
//!
//! Counts per cell (region, grade, kind) and category are kept as deltas
//! gathered over a write and added at its end: the totals of filter-only
//! searches and the stats read a few hundred rows, never the merchants.

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::{params, Connection, OptionalExtension};

use super::db::{from_json, sql};
use crate::model::{fnv1a64, Grade, MerchantKind, Projection, PublicMerchant};
use crate::store::types::StoreResult;

/// Follows each category in `search.cats`; a checked text never holds it.
pub(super) const CATEGORY_END: char = '\u{1f}';

/// A merchant's categories as stored in `search.cats`.
pub(super) fn cats_text(categories: &[String]) -> String {
    let mut out = String::new();
    for c in categories {
        out.push_str(c);
        out.push(CATEGORY_END);
    }
    out
}

/// Whether `cats` (as stored) holds `category`.
pub(super) fn has_category(cats: &str, category: &str) -> bool {
    !category.is_empty() && cats.split(CATEGORY_END).any(|c| c == category)
}

/// A character's token stem: its code point in hexadecimal and `x` (which
/// no hexadecimal digit is, so no stem is the start of another).
fn push_stem(out: &mut String, c: char) {
    let _ = write!(out, "{:x}x", c as u32);
}

/// The `n` column of a name: each pair of neighbouring characters, then
/// the last character alone.
pub(super) fn name_tokens(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 4);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if !out.is_empty() {
            out.push(' ');
        }
        push_stem(&mut out, c);
        if let Some(&next) = chars.peek() {
            let _ = write!(out, "{:x}", next as u32);
        }
    }
    out
}

/// The full-text expression for "the name contains `q`" (`q` not empty).
pub(super) fn name_match(q: &str) -> String {
    let chars: Vec<char> = q.chars().collect();
    let mut out = String::from("(n : ");
    if let [c] = chars[..] {
        push_stem(&mut out, c);
        out.push('*');
    } else {
        out.push('"');
        for (i, pair) in chars.windows(2).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            push_stem(&mut out, pair[0]);
            let _ = write!(out, "{:x}", pair[1] as u32);
        }
        out.push('"');
    }
    out.push(')');
    out
}

/// A text's bytes in hexadecimal after a one-letter tag.
pub(super) fn hex_token(tag: char, text: &str) -> String {
    let mut out = String::with_capacity(1 + 2 * text.len());
    out.push(tag);
    for b in text.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `f` column: region, grade, kind, categories, id and credit code.
fn filter_tokens(m: &PublicMerchant, grade: Grade) -> String {
    let mut out = format!(
        "r{} g{} k{}",
        m.region.as_str(),
        grade.name(),
        m.kind.name()
    );
    for c in &m.categories {
        out.push(' ');
        out.push_str(&hex_token('c', c));
    }
    out.push(' ');
    out.push_str(&hex_token('i', m.id.as_str()));
    if let Some(u) = &m.uscc {
        out.push(' ');
        out.push_str(&hex_token('u', u.as_str()));
    }
    out
}

/// A digest of what the row holds besides its cell: a row whose cell and
/// digest are unchanged is left as it is.
fn digest(m: &PublicMerchant) -> i64 {
    let mut bytes = Vec::with_capacity(128);
    for part in [m.name.as_str(), m.uscc.as_ref().map_or("", |u| u.as_str())] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    for c in &m.categories {
        bytes.extend_from_slice(c.as_bytes());
        bytes.push(0x1f);
    }
    fnv1a64(&bytes) as i64
}

/// What a projection's index entry is made of besides its fields.
pub(super) struct Derived {
    digest: i64,
    cats: String,
    name_tokens: String,
    filter_tokens: String,
}

impl Derived {
    pub(super) fn of(p: &Projection) -> Derived {
        Derived {
            digest: digest(&p.merchant),
            cats: cats_text(&p.merchant.categories),
            name_tokens: name_tokens(&p.merchant.name),
            filter_tokens: filter_tokens(&p.merchant, p.grade),
        }
    }
}

/// A cell and category whose count changes, grade and kind by their names.
type CountKey = (String, &'static str, &'static str, String);

/// Indexes projections within one write transaction; [`Self::finish`]
/// adds the counts' deltas (call it before the commit).
pub(super) struct SearchIndexWriter<'c> {
    conn: &'c Connection,
    deltas: HashMap<CountKey, i64>,
    next_doc: Option<i64>,
}

struct Previous {
    region: String,
    grade: String,
    kind: String,
    doc: i64,
    digest: i64,
}

impl<'c> SearchIndexWriter<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        SearchIndexWriter {
            conn,
            deltas: HashMap::new(),
            next_doc: None,
        }
    }

    fn count(
        &mut self,
        region: &str,
        grade: &'static str,
        kind: &'static str,
        cats: &str,
        by: i64,
    ) {
        let mut add = |category: &str| {
            *self
                .deltas
                .entry((region.to_owned(), grade, kind, category.to_owned()))
                .or_default() += by;
        };
        add("");
        let mut seen: Vec<&str> = cats.split(CATEGORY_END).filter(|c| !c.is_empty()).collect();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            add(c);
        }
    }

    /// Indexes `p` (replacing what its merchant had).
    pub(super) fn index(&mut self, p: &Projection) -> StoreResult<()> {
        self.index_derived(p, &Derived::of(p))
    }

    /// Indexes `p` with what [`Derived::of`] made of it (beforehand, on
    /// another thread: the writer's time is the refresh's one serial stage).
    pub(super) fn index_derived(&mut self, p: &Projection, derived: &Derived) -> StoreResult<()> {
        let m = &p.merchant;
        let (region, grade, kind) = (m.region.as_str(), p.grade.name(), m.kind.name());
        let digest = derived.digest;
        let previous = self
            .conn
            .prepare_cached(
                "SELECT region, grade, kind, doc, digest FROM search_keys WHERE merchant = ?1",
            )
            .and_then(|mut q| {
                q.query_row([m.id.as_str()], |r| {
                    Ok(Previous {
                        region: r.get(0)?,
                        grade: r.get(1)?,
                        kind: r.get(2)?,
                        doc: r.get(3)?,
                        digest: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(sql)?;
        let doc = match previous {
            Some(o)
                if o.digest == digest
                    && o.region == region
                    && o.grade == grade
                    && o.kind == kind =>
            {
                return Ok(());
            }
            Some(o) => {
                self.unindex(m.id.as_str(), &o)?;
                self.conn
                    .prepare_cached(
                        "UPDATE search_keys SET region = ?2, grade = ?3, kind = ?4, digest = ?5
                         WHERE merchant = ?1",
                    )
                    .and_then(|mut q| {
                        q.execute(params![m.id.as_str(), region, grade, kind, digest])
                    })
                    .map_err(sql)?;
                o.doc
            }
            None => {
                let doc = self.new_doc()?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO search_keys (merchant, region, grade, kind, doc, digest, printed)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                            (SELECT json_extract(json, '$.printed_grade') FROM codes
                             WHERE merchant = ?1 AND status = 'active' ORDER BY serial DESC LIMIT 1))",
                    )
                    .and_then(|mut q| {
                        q.execute(params![m.id.as_str(), region, grade, kind, doc, digest])
                    })
                    .map_err(sql)?;
                doc
            }
        };
        let cats = &derived.cats;
        self.conn
            .prepare_cached(
                "INSERT INTO search (region, grade, kind, merchant, cats, name, uscc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut q| {
                q.execute(params![
                    region,
                    grade,
                    kind,
                    m.id.as_str(),
                    cats,
                    m.name,
                    m.uscc.as_ref().map(|u| u.as_str())
                ])
            })
            .map_err(sql)?;
        self.conn
            .prepare_cached("INSERT INTO search_fts (rowid, n, f) VALUES (?1, ?2, ?3)")
            .and_then(|mut q| q.execute(params![doc, derived.name_tokens, derived.filter_tokens]))
            .map_err(sql)?;
        self.count(region, grade, kind, cats, 1);
        Ok(())
    }

    /// Removes a merchant's row, document and counts as `previous` left them.
    fn unindex(&mut self, merchant: &str, previous: &Previous) -> StoreResult<()> {
        let cats: Option<String> = self
            .conn
            .prepare_cached(
                "DELETE FROM search WHERE region = ?1 AND grade = ?2 AND kind = ?3 AND merchant = ?4
                 RETURNING cats",
            )
            .and_then(|mut q| {
                q.query_row(
                    params![previous.region, previous.grade, previous.kind, merchant],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(sql)?;
        self.conn
            .prepare_cached("DELETE FROM search_fts WHERE rowid = ?1")
            .and_then(|mut q| q.execute([previous.doc]))
            .map_err(sql)?;
        if let (Some(cats), Some(grade), Some(kind)) = (
            cats,
            Grade::from_name(&previous.grade),
            MerchantKind::from_name(&previous.kind),
        ) {
            self.count(&previous.region, grade.name(), kind.name(), &cats, -1);
        }
        Ok(())
    }

    fn new_doc(&mut self) -> StoreResult<i64> {
        let next = match self.next_doc {
            Some(n) => n,
            None => self
                .conn
                .query_row(
                    "SELECT COALESCE(MAX(doc), 0) + 1 FROM search_keys",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?,
        };
        self.next_doc = Some(next + 1);
        Ok(next)
    }

    /// Adds the counts' deltas; the write is complete after this.
    pub(super) fn finish(self) -> StoreResult<()> {
        let mut add = self
            .conn
            .prepare_cached(
                "INSERT INTO search_counts (region, grade, kind, category, n)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (region, grade, kind, category) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(sql)?;
        let mut removed = false;
        for ((region, grade, kind, category), n) in &self.deltas {
            if *n != 0 {
                add.execute(params![region, grade, kind, category, n])
                    .map_err(sql)?;
                removed |= *n < 0;
            }
        }
        if removed {
            self.conn
                .execute("DELETE FROM search_counts WHERE n = 0", [])
                .map_err(sql)?;
        }
        Ok(())
    }
}

/// Indexes every projection (a store made before the index existed).
pub(super) fn index_all(conn: &Connection) -> StoreResult<()> {
    let mut writer = SearchIndexWriter::new(conn);
    let mut q = conn
        .prepare("SELECT json FROM projections ORDER BY merchant")
        .map_err(sql)?;
    let mut rows = q.query([]).map_err(sql)?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(sql)? {
        let json: String = row.get(0).map_err(sql)?;
        writer.index(&from_json::<Projection>(&json)?)?;
        n += 1;
    }
    if n > 0 {
        tracing::info!(merchants = n, "search index built");
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_its_pairs_and_its_last_character() {
        assert_eq!(name_tokens("超市"), "8d85x5e02 5e02x");
        assert_eq!(name_tokens("a"), "61x");
        assert_eq!(name_tokens(""), "");
        assert_eq!(name_match("超市"), "(n : \"8d85x5e02\")");
        assert_eq!(name_match("超市A"), "(n : \"8d85x5e02 5e02x41\")");
        assert_eq!(name_match("超"), "(n : 8d85x*)");
    }

    #[test]
    fn categories_are_found_whole() {
        let cats = cats_text(&["食品".into(), "酒类".into()]);
        assert!(has_category(&cats, "食品"));
        assert!(has_category(&cats, "酒类"));
        assert!(!has_category(&cats, "食"));
        assert!(!has_category(&cats, ""));
        assert_eq!(hex_token('c', "A"), "c41");
    }
}
