//! [`Documents`] on SQLite: one `documents` table keyed by (collection,
//! key); a swap and its audit entry are one transaction.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::db::{sql, EmbeddedStore};
use super::writes::insert_audit;
use crate::model::AuditEntry;
use crate::store::documents::{check_key, Collection, Documents, Expect};
use crate::store::types::StoreResult;

#[async_trait]
impl Documents for EmbeddedStore {
    async fn swap_document(
        &self,
        collection: Collection,
        key: &str,
        expect: Expect,
        new: Option<String>,
        audit: Option<AuditEntry>,
    ) -> StoreResult<bool> {
        check_key(key)?;
        let key = key.to_owned();
        let c = collection.name();
        self.write(move |tx| {
            let current: Option<String> = tx
                .query_row(
                    "SELECT json FROM documents WHERE collection = ?1 AND key = ?2",
                    params![c, key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            let allowed = match &expect {
                Expect::Any => true,
                Expect::Absent => current.is_none(),
                Expect::Equals(old) => current.as_deref() == Some(old.as_str()),
            };
            if !allowed {
                return Ok(false);
            }
            let wrote = match new {
                Some(json) => {
                    tx.execute(
                        "INSERT INTO documents (collection, key, json) VALUES (?1, ?2, ?3)
                         ON CONFLICT(collection, key) DO UPDATE SET json = ?3",
                        params![c, key, json],
                    )
                    .map_err(sql)?;
                    true
                }
                None => {
                    tx.execute(
                        "DELETE FROM documents WHERE collection = ?1 AND key = ?2",
                        params![c, key],
                    )
                    .map_err(sql)?
                        > 0
                }
            };
            if wrote {
                if let Some(entry) = &audit {
                    insert_audit(tx, entry)?;
                }
            }
            Ok(wrote)
        })
        .await
    }

    async fn document(&self, collection: Collection, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        let c = collection.name();
        self.read(move |conn| {
            conn.prepare_cached("SELECT json FROM documents WHERE collection = ?1 AND key = ?2")
                .and_then(|mut q| q.query_row(params![c, key], |r| r.get(0)).optional())
                .map_err(sql)
        })
        .await
    }

    async fn documents(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        let after = after.map(str::to_owned);
        let c = collection.name();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // Keys compare bytewise (SQLite's BINARY collation), as Redis sorts them.
            let mut q = conn
                .prepare_cached(
                    "SELECT key, json FROM documents WHERE collection = ?1 AND (?2 IS NULL OR key > ?2)
                     ORDER BY key LIMIT ?3",
                )
                .map_err(sql)?;
            let rows = q
                .query_map(params![c, after, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
        .await
    }
}
