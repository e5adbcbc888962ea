//! The embedded store's change log: the `changes` table, one row per noted
//! change in `seq` order (see [`crate::store::changes`]). A row without a
//! `kind` is a notice for the caches only; those are kept for the last
//! [`CHANGES_KEPT`] positions. A row with one is a public change, kept
//! [`FEED_KEPT_DAYS`](crate::store::changes::FEED_KEPT_DAYS) days; the
//! position before which they were dropped is `feed_kept_after` in `meta`.
//! SQLite runs one write transaction at a time, so positions commit in
//! order and a reader's snapshot always holds a prefix of the log.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::db::{corrupt, sql, CHANGES_KEPT};
use crate::model::{Grade, MerchantId};
use crate::store::changes::{feed_cutoff, Change, ChangeKind, FeedPage, Note};
use crate::store::types::StoreResult;

/// Adds the feed's columns to a `changes` table made before them (its rows
/// become notices) and the indexes that keep each reader's range short.
pub(super) fn migrate(tx: &Transaction<'_>) -> StoreResult<()> {
    let has_kind: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('changes') WHERE name = 'kind')",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if !has_kind {
        tx.execute_batch(
            "ALTER TABLE changes ADD COLUMN at INTEGER;
             ALTER TABLE changes ADD COLUMN kind TEXT;
             ALTER TABLE changes ADD COLUMN grade TEXT;
             ALTER TABLE changes ADD COLUMN serial INTEGER;",
        )
        .map_err(sql)?;
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS changes_public ON changes (seq) WHERE kind IS NOT NULL;
         CREATE INDEX IF NOT EXISTS changes_notices ON changes (seq) WHERE kind IS NULL;",
    )
    .map_err(sql)
}

/// Notes one change at the next position, at `at` (seconds).
pub(super) fn note(tx: &Transaction<'_>, n: &Note<'_>, at: i64) -> StoreResult<()> {
    if crate::store::changes::log_disabled() {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO changes (merchant, at, kind, grade, serial) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut q| {
        q.execute(params![
            n.merchant,
            at,
            n.kind.map(ChangeKind::name),
            n.grade.map(Grade::name),
            n.serial
        ])
    })
    .map_err(sql)?;
    Ok(())
}

/// The effective grade of `merchant`'s stored projection, if it has one.
pub(super) fn stored_grade(tx: &Transaction<'_>, merchant: &str) -> StoreResult<Option<Grade>> {
    let name: Option<String> = tx
        .prepare_cached("SELECT grade FROM projections WHERE merchant = ?1")
        .and_then(|mut q| q.query_row([merchant], |r| r.get(0)).optional())
        .map_err(sql)?;
    name.map(|g| Grade::from_name(&g).ok_or_else(|| corrupt(format!("grade `{g}`"))))
        .transpose()
}

/// Drops notices older than the last [`CHANGES_KEPT`] positions and public
/// changes older than the feed keeps them (a prefix of them, so that
/// `feed_kept_after` is exact).
pub(super) fn trim(tx: &Transaction<'_>, now: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "DELETE FROM changes WHERE kind IS NULL AND seq < (SELECT MAX(seq) FROM changes) - ?1",
    )
    .and_then(|mut q| q.execute([CHANGES_KEPT]))
    .map_err(sql)?;
    let cutoff = feed_cutoff(jiff::Timestamp::from_second(now).map_err(corrupt)?);
    // The oldest public changes, up to the first young enough to keep.
    let mut last_old = None;
    {
        let mut q = tx
            .prepare_cached(
                "SELECT seq, at FROM changes WHERE kind IS NOT NULL ORDER BY seq LIMIT 10000",
            )
            .map_err(sql)?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(sql)?;
        for row in rows {
            let (seq, at) = row.map_err(sql)?;
            if at >= cutoff {
                break;
            }
            last_old = Some(seq);
        }
    }
    if let Some(last) = last_old {
        tx.execute(
            "DELETE FROM changes WHERE kind IS NOT NULL AND seq <= ?1",
            [last],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('feed_kept_after', ?1)
             ON CONFLICT(key) DO UPDATE SET value = ?1",
            [last],
        )
        .map_err(sql)?;
    }
    Ok(())
}

/// Up to `limit` public changes after `after` (`None`: the oldest kept).
pub(super) fn feed(c: &Connection, after: Option<u64>, limit: usize) -> StoreResult<FeedPage> {
    // One snapshot for the three reads.
    let c = &c.unchecked_transaction().map_err(sql)?;
    let kept_after: i64 = c
        .query_row(
            "SELECT COALESCE((SELECT value FROM meta WHERE key = 'feed_kept_after'), 0)",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    // The last position ever given (AUTOINCREMENT keeps it), also when
    // every row has gone.
    let last: i64 = c
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    let from = after.map_or(kept_after, |a| a.min(i64::MAX as u64) as i64);
    let mut q = c
        .prepare_cached(
            "SELECT seq, at, merchant, kind, grade, serial FROM changes
             WHERE kind IS NOT NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(sql)?;
    let rows = q
        .query_map(params![from, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<u32>>(5)?,
            ))
        })
        .map_err(sql)?;
    let mut changes = Vec::new();
    for row in rows {
        let (seq, at, merchant, kind, grade, serial) = row.map_err(sql)?;
        changes.push(Change {
            position: seq as u64,
            at: jiff::Timestamp::from_second(at).map_err(corrupt)?,
            merchant: MerchantId::parse(&merchant).map_err(corrupt)?,
            kind: ChangeKind::from_name(&kind)
                .ok_or_else(|| corrupt(format!("change kind `{kind}`")))?,
            grade: grade
                .map(|g| Grade::from_name(&g).ok_or_else(|| corrupt(format!("grade `{g}`"))))
                .transpose()?,
            serial,
        });
    }
    Ok(FeedPage {
        changes,
        kept_after: kept_after as u64,
        last: last.max(0) as u64,
    })
}
