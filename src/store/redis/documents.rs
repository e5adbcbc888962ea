//! [`Documents`] on Redis: one hash per collection (`{doc:NAME}`, one
//! slot in a cluster); a swap is a script over that hash, its audit entry
//! appended right after.

use async_trait::async_trait;

use super::common::redis_err;
use super::conn::RedisStore;
use super::scripts::SCRIPTS;
use super::writes::append_audit;
use crate::model::AuditEntry;
use crate::store::documents::{check_key, Collection, Documents, Expect};
use crate::store::types::StoreResult;

impl RedisStore {
    fn collection_key(&self, collection: Collection) -> String {
        self.keys.global(&format!("doc:{}", collection.name()), "")
    }
}

#[async_trait]
impl Documents for RedisStore {
    async fn swap_document(
        &self,
        collection: Collection,
        key: &str,
        expect: Expect,
        new: Option<String>,
        audit: Option<AuditEntry>,
    ) -> StoreResult<bool> {
        check_key(key)?;
        let (mode, expected) = match &expect {
            Expect::Any => ("any", ""),
            Expect::Absent => ("absent", ""),
            Expect::Equals(old) => ("equals", old.as_str()),
        };
        let mut inv = SCRIPTS.swap_document.prepare_invoke();
        inv.key(self.collection_key(collection))
            .arg(key)
            .arg(mode)
            .arg(expected)
            .arg(if new.is_some() { "1" } else { "0" })
            .arg(new.as_deref().unwrap_or(""));
        let wrote: i64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        if wrote == 1 {
            if let Some(entry) = audit {
                append_audit(self, entry).await?;
            }
        }
        Ok(wrote == 1)
    }

    async fn document(&self, collection: Collection, key: &str) -> StoreResult<Option<String>> {
        ::redis::cmd("HGET")
            .arg(self.collection_key(collection))
            .arg(key)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn documents(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        let hash = self.collection_key(collection);
        let mut keys: Vec<String> = ::redis::cmd("HKEYS")
            .arg(&hash)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        keys.retain(|k| after.is_none_or(|a| k.as_str() > a));
        keys.sort_unstable();
        keys.truncate(limit);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = ::redis::cmd("HMGET")
            .arg(&hash)
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        // A document removed between the two reads is left out.
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}
