//! The schema and its migrations, as SQL files beside this one: the
//! tables (`schema.sql`), created at every open, and what moves a store an
//! older version left to them, once.

use rusqlite::Connection;

use super::db::{sql, unavailable};
use super::record_index::index_records_since;
use super::search_index::index_all;
use crate::store::types::StoreResult;

const SCHEMA: &str = include_str!("schema.sql");
/// Schema 2 finds "never graded" from the regrade marks alone.
const MARK_UNGRADED: &str = include_str!("mark_ungraded.sql");
/// A store made before `record_index` existed, once its index is built.
const DROP_RECORD_KEYS: &str = include_str!("drop_record_keys.sql");
/// Schema 3: the regulators' search index (`search_index.rs`).
const SEARCH_INDEX: &str = include_str!("search_index.sql");

/// Creates the schema; moves a store made before `record_index` existed
/// (when an index or a key table kept records by merchant) to it, and
/// indexes the projections of a store made before the search index.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let exists = |c: &Connection, name: &str| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |r| r.get(0),
        )
    };
    let old =
        exists(conn, "records").map_err(sql)? && !exists(conn, "record_index").map_err(sql)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    tx.execute_batch(SCHEMA).map_err(sql)?;
    let version: i64 = tx
        .query_row(
            "SELECT COALESCE((SELECT value FROM meta WHERE key = 'schema'), 1)",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    super::changes::migrate(&tx)?;
    if version < 2 {
        tx.execute_batch(MARK_UNGRADED).map_err(sql)?;
    }
    if old {
        index_records_since(&tx, 0, false)?;
        tx.execute_batch(DROP_RECORD_KEYS).map_err(sql)?;
    }
    tx.execute_batch(SEARCH_INDEX).map_err(sql)?;
    if version < 3 {
        // Projections written before the index existed (none in a new store).
        index_all(&tx)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema', 3)
             ON CONFLICT(key) DO UPDATE SET value = 3",
            [],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(unavailable)
}
