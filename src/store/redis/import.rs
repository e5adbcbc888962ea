//! [`BulkImport`] for the Redis store's import value: its merchants and
//! records go through `writes` with the import's bulk state, and `finish`
//! ends the import (`bulk`).

use async_trait::async_trait;

use super::bulk::{end_bulk_import, RedisBulkImport};
use super::writes;
use crate::model::{Merchant, Record};
use crate::store::roles::BulkImport;
use crate::store::types::{Imported, RecordsAdded, StoreResult};

#[async_trait]
impl BulkImport for RedisBulkImport {
    async fn upsert_merchants(&self, merchants: Vec<Merchant>) -> StoreResult<u64> {
        writes::upsert_merchants(&self.store, merchants, self.bulk.as_ref()).await
    }

    async fn add_records(&self, records: Vec<Record>) -> StoreResult<RecordsAdded> {
        writes::add_records(&self.store, records, self.bulk.as_ref()).await
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<Imported> {
        let Some(bulk) = self.bulk.take() else {
            return Ok(Imported::default());
        };
        let bulk = bulk.into_inner().unwrap_or_else(|p| p.into_inner());
        // `importing` stays set until `self` is dropped, after this.
        end_bulk_import(&self.store, bulk).await
    }
}
