//! The queue of pending submissions (`review_pending`): one small
//! document per pending submission under `<region>/<review id>`, so a
//! region prefix is a key range and the queue is read without reading
//! decided submissions (which stay in `shop_reviews`).
//!
//! The index is written beside the submission document, not with it, so
//! a step that fails half-way leaves an entry that is checked when read:
//! - submit writes the entry, then the submission: an entry whose
//!   submission is missing is skipped (and dropped after
//!   [`ORPHAN_AFTER_SECS`]); a failed insert removes its entry;
//! - decide swaps the submission to decided, then removes the entry: an
//!   entry whose submission is no longer pending is dropped when read;
//! - a merchant whose region changed: its entries are moved to the new
//!   region when a range holding the old one is read (until then its new
//!   region's staff do not see them; the whole queue, `""`, always does);
//! - a store from before the index (or one whose index was lost) gets it
//!   rebuilt from `shop_reviews` on the first read ([`built`]).
//!
//! This module is the index alone; `shop::reviews` reads the queue
//! (`reviews::pending`) and keeps it in step.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::RegionCode;
use crate::store::documents::{self, Collection};
use crate::store::{Store, StoreError};

/// Pending submissions by `<region>/<review id>`.
pub const PENDING: Collection = Collection::new("review_pending");
/// Whether [`PENDING`] was built from `shop_reviews` (key [`BUILT_KEY`]).
const BUILT: Collection = Collection::new("review_pending_built");
const BUILT_KEY: &str = "v1";
/// Most index entries one read of the queue takes; past that the queue
/// (and its count) is cut short.
pub const MAX_PENDING_READ: usize = 10_000;
/// An entry whose submission is still not stored this long after it was
/// made belongs to a submission that failed half-way: it is dropped.
pub const ORPHAN_AFTER_SECS: i64 = 3600;
const PAGE: usize = 1_000;

/// One pending submission in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub merchant: String,
    pub submitted_at: Timestamp,
}

/// The key of submission `id` of a merchant in `region`.
pub fn key(region: &RegionCode, id: &str) -> String {
    format!("{region}/{id}")
}

/// Notes submission `id` (of a merchant in `region`) as pending; with
/// `only_new`, only if it is not noted yet.
pub async fn add(
    store: &dyn Store,
    region: &RegionCode,
    id: &str,
    entry: &Entry,
    only_new: bool,
) -> Result<(), StoreError> {
    let key = key(region, id);
    if only_new {
        documents::insert(store, PENDING, &key, entry, None).await?;
    } else {
        documents::put(store, PENDING, &key, entry, None).await?;
    }
    Ok(())
}

/// Removes the entry under `key` (as [`entries`] lists it).
pub async fn drop_key(store: &dyn Store, key: &str) -> Result<bool, StoreError> {
    documents::remove(store, PENDING, key, None).await
}

/// Whether the index was built from the stored submissions.
pub async fn built(store: &dyn Store) -> Result<bool, StoreError> {
    Ok(store.document(BUILT, BUILT_KEY).await?.is_some())
}

/// Notes that the index was built.
pub async fn mark_built(store: &dyn Store) -> Result<(), StoreError> {
    documents::put(store, BUILT, BUILT_KEY, &true, None).await
}

/// Removes the entry of submission `id` of a merchant in `region`.
pub async fn remove(store: &dyn Store, region: &RegionCode, id: &str) -> Result<bool, StoreError> {
    documents::remove(store, PENDING, &key(region, id), None).await
}

/// The index entries of regions starting with `prefix`, in key order, up
/// to [`MAX_PENDING_READ`], and whether that was all of them.
pub async fn entries(
    store: &dyn Store,
    prefix: &str,
) -> Result<(Vec<(String, Entry)>, bool), StoreError> {
    let mut out: Vec<(String, Entry)> = Vec::new();
    // Keys are `<6 digits>/…`: every key of the range sorts after `prefix`.
    let mut after = (!prefix.is_empty()).then(|| prefix.to_owned());
    loop {
        let want = PAGE.min(MAX_PENDING_READ + 1 - out.len());
        let page = documents::page::<Entry>(store, PENDING, after.as_deref(), want).await?;
        let done = page.len() < want;
        for (key, entry) in page {
            if !key.starts_with(prefix) {
                return Ok((out, true));
            }
            after = Some(key.clone());
            if out.len() == MAX_PENDING_READ {
                return Ok((out, false));
            }
            out.push((key, entry));
        }
        if done {
            return Ok((out, true));
        }
    }
}
