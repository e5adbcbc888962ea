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
//!   rebuilt from `shop_reviews` on the first read ([`ensure_built`]).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::reviews::{Review, ReviewStatus, REVIEWS};
use crate::model::{MerchantId, RegionCode};
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

fn key(region: &RegionCode, id: &str) -> String {
    format!("{region}/{id}")
}

/// Notes `review` (of a merchant in `region`) as pending.
pub async fn add(
    store: &dyn Store,
    region: &RegionCode,
    review: &Review,
) -> Result<(), StoreError> {
    let entry = Entry {
        merchant: review.merchant.clone(),
        submitted_at: review.submitted_at,
    };
    documents::put(store, PENDING, &key(region, &review.id), &entry, None).await
}

/// Removes the entry of submission `id` of a merchant in `region`.
pub async fn remove(store: &dyn Store, region: &RegionCode, id: &str) -> Result<bool, StoreError> {
    documents::remove(store, PENDING, &key(region, id), None).await
}

/// Builds the index from every stored submission, once per store (again
/// if the mark is removed). Entries are inserted only where absent, so
/// concurrent builds agree; an entry written for a submission decided
/// meanwhile is dropped when read.
pub async fn ensure_built(store: &dyn Store) -> Result<(), StoreError> {
    if store.document(BUILT, BUILT_KEY).await?.is_some() {
        return Ok(());
    }
    let mut after: Option<String> = None;
    loop {
        let page = documents::page::<Review>(store, REVIEWS, after.as_deref(), PAGE).await?;
        let done = page.len() < PAGE;
        for (id, review) in page {
            after = Some(id);
            if review.status != ReviewStatus::Pending {
                continue;
            }
            let Ok(merchant) = MerchantId::parse(&review.merchant) else {
                continue;
            };
            if let Some(m) = store.merchant(&merchant).await? {
                let entry = Entry {
                    merchant: review.merchant.clone(),
                    submitted_at: review.submitted_at,
                };
                documents::insert(store, PENDING, &key(&m.region, &review.id), &entry, None)
                    .await?;
            }
        }
        if done {
            break;
        }
    }
    documents::put(store, BUILT, BUILT_KEY, &true, None).await
}

/// The index entries of regions starting with `prefix`, in key order, up
/// to [`MAX_PENDING_READ`], and whether that was all of them.
async fn entries(
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

/// The current region of `merchant` (`None`: gone), read once per call.
async fn region_of(
    store: &dyn Store,
    known: &mut HashMap<String, Option<RegionCode>>,
    merchant: &str,
) -> Result<Option<RegionCode>, StoreError> {
    if let Some(r) = known.get(merchant) {
        return Ok(r.clone());
    }
    let region = match MerchantId::parse(merchant) {
        Ok(id) => store.merchant(&id).await?.map(|m| m.region),
        Err(_) => None,
    };
    known.insert(merchant.to_owned(), region.clone());
    Ok(region)
}

/// The pending submissions of merchants in the regions starting with
/// `prefix`, oldest first, and whether the index was read in full: each
/// entry checked against its submission (stale entries dropped) and its
/// merchant's current region (a submission of a merchant that is gone is
/// left out).
pub async fn pending(
    store: &dyn Store,
    prefix: &str,
    now: Timestamp,
) -> Result<(Vec<Review>, bool), StoreError> {
    ensure_built(store).await?;
    let (entries, complete) = entries(store, prefix).await?;
    let mut regions: HashMap<String, Option<RegionCode>> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (stored_key, entry) in entries {
        let Some((region, id)) = stored_key.split_once('/') else {
            continue;
        };
        let review = match documents::get::<Review>(store, REVIEWS, id).await? {
            Some(r) if r.status == ReviewStatus::Pending => r,
            Some(_) => {
                // Decided, the entry's removal not done: drop it now.
                documents::remove(store, PENDING, &stored_key, None).await?;
                continue;
            }
            None => {
                let age = now.as_second() - entry.submitted_at.as_second();
                if age > ORPHAN_AFTER_SECS {
                    documents::remove(store, PENDING, &stored_key, None).await?;
                }
                continue;
            }
        };
        let Some(current) = region_of(store, &mut regions, &review.merchant).await? else {
            continue;
        };
        if current.as_str() != region {
            // The merchant moved: its entry follows it.
            documents::put(store, PENDING, &key(&current, id), &entry, None).await?;
            documents::remove(store, PENDING, &stored_key, None).await?;
            if !current.as_str().starts_with(prefix) {
                continue;
            }
        }
        out.push(review);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((out, complete))
}
