//! The embedded store's reads for the scan path and the change stream
//! (regulators' queries: `search`).

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::db::{corrupt, from_json, merchant_ids, sql, EmbeddedStore, MAX_CHANGES_LISTED};
use crate::model::{CodeStatus, MerchantId};
use crate::store::changes::FeedPage;
use crate::store::roles::ScanRead;
use crate::store::types::{ScanView, StoreResult, StoredProjection};

#[async_trait]
impl ScanRead for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await
    }

    async fn scan_view(&self, id: &MerchantId) -> StoreResult<Option<ScanView>> {
        let id = id.clone();
        // One read, in one snapshot; the codes' statuses only, not their JSON.
        self.read(move |c| {
            let json: Option<String> = c
                .prepare_cached("SELECT json FROM projections WHERE merchant = ?1")
                .and_then(|mut q| q.query_row([id.as_str()], |r| r.get(0)).optional())
                .map_err(sql)?;
            let Some(json) = json else {
                return Ok(None);
            };
            let mut q = c
                .prepare_cached("SELECT serial, status FROM codes WHERE merchant = ?1")
                .map_err(sql)?;
            let codes = q
                .query_map([id.as_str()], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql)?
                .map(|row| {
                    let (serial, status) = row.map_err(sql)?;
                    let status = CodeStatus::from_name(&status)
                        .ok_or_else(|| corrupt(format!("code status `{status}`")))?;
                    Ok((serial, status))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(ScanView {
                projection: StoredProjection::Parsed(Box::new(from_json(&json)?)),
                codes,
            }))
        })
        .await
    }

    async fn changes_since(&self, cursor: u64) -> StoreResult<(Option<Vec<MerchantId>>, u64)> {
        self.read(move |c| {
            let max: i64 = c
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                    r.get(0)
                })
                .map_err(sql)?;
            let cursor = cursor as i64;
            if max <= cursor {
                return Ok((Some(Vec::new()), max.max(0) as u64));
            }
            if max - cursor > MAX_CHANGES_LISTED || cursor == 0 {
                return Ok((None, max as u64));
            }
            let mut q = c
                .prepare_cached(
                    "SELECT DISTINCT merchant FROM changes WHERE seq > ?1 AND seq <= ?2",
                )
                .map_err(sql)?;
            let rows = q
                .query_map([cursor, max], |r| r.get::<_, String>(0))
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            Ok((Some(merchant_ids(rows)?), max as u64))
        })
        .await
    }

    async fn feed(&self, after: Option<u64>, limit: usize) -> StoreResult<FeedPage> {
        self.read(move |c| super::changes::feed(c, after, limit))
            .await
    }
}
