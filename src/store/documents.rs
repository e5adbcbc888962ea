//! Small collections the service owns beside merchants and codes: sessions,
//! consumer tips, the roster, plans, reviews, shop access. A document is a
//! JSON text under a key in a named [`Collection`]; its module gives it a
//! type ([`get`], [`put`], [`page`] (de)serialise). A collection holds what
//! fits a listing (thousands to tens of thousands of documents), never one
//! document per merchant and record.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::{StoreError, StoreResult};
use crate::model::AuditEntry;

/// A collection's name: lowercase ASCII letters and `_`, fixed in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collection(&'static str);

impl Collection {
    /// Panics (at compile time in a `const`) on a name that is not
    /// 1–32 lowercase ASCII letters or `_`.
    pub const fn new(name: &'static str) -> Collection {
        let b = name.as_bytes();
        assert!(!b.is_empty() && b.len() <= 32, "collection name length");
        let mut i = 0;
        while i < b.len() {
            assert!(
                b[i].is_ascii_lowercase() || b[i] == b'_',
                "collection names are lowercase ASCII letters and `_`"
            );
            i += 1;
        }
        Collection(name)
    }

    pub fn name(&self) -> &'static str {
        self.0
    }
}

/// What [`Documents::swap_document`] expects to find under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there, or nothing.
    Any,
    /// Nothing: the write is an insert.
    Absent,
    /// Exactly this text: a compare-and-swap, for one-time transitions
    /// (a pending review decided once, an activation code used once).
    Equals(String),
}

/// The largest key a document may have, in bytes.
pub const MAX_KEY_BYTES: usize = 200;

/// Named collections of JSON documents, on every backend.
#[async_trait]
pub trait Documents: Send + Sync + 'static {
    /// Writes `new` under `key` (`None` removes it) when what is there is
    /// what `expect` says, and then appends `audit`; returns whether it
    /// wrote. Of concurrent swaps expecting one text, one wins. On the
    /// embedded store the document and its audit entry are one
    /// transaction; on Redis the entry is appended right after the
    /// document (a crash in between loses the entry, never the document).
    /// `Expect::Any` with `None` returns whether there was a document.
    async fn swap_document(
        &self,
        collection: Collection,
        key: &str,
        expect: Expect,
        new: Option<String>,
        audit: Option<AuditEntry>,
    ) -> StoreResult<bool>;

    async fn document(&self, collection: Collection, key: &str) -> StoreResult<Option<String>>;

    /// Up to `limit` documents as (key, JSON) in ascending key order
    /// (bytewise), after `after`.
    async fn documents(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>>;
}

/// Refuses an empty key, one over [`MAX_KEY_BYTES`] or with a control
/// character: keys come from ids the edge has already checked, so this is
/// a programming error reported as such.
pub(crate) fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(StoreError::Corrupt(format!(
            "document key {:?}: expected 1..={MAX_KEY_BYTES} bytes without control characters",
            crate::model::truncate(key)
        )));
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("document: {e}")))
}

fn decode<T: DeserializeOwned>(collection: Collection, key: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "document {}/{}: {e}",
            collection.name(),
            crate::model::truncate(key)
        ))
    })
}

/// The document under `key`, typed.
pub async fn get<T: DeserializeOwned>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    key: &str,
) -> StoreResult<Option<T>> {
    match store.document(collection, key).await? {
        Some(json) => decode(collection, key, &json).map(Some),
        None => Ok(None),
    }
}

/// Writes `value` under `key`, replacing what was there.
pub async fn put<T: Serialize + Sync>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    key: &str,
    value: &T,
    audit: Option<AuditEntry>,
) -> StoreResult<()> {
    let json = encode(value)?;
    store
        .swap_document(collection, key, Expect::Any, Some(json), audit)
        .await
        .map(|_| ())
}

/// Writes `value` under `key` only if nothing is there; whether it wrote.
pub async fn insert<T: Serialize + Sync>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    key: &str,
    value: &T,
    audit: Option<AuditEntry>,
) -> StoreResult<bool> {
    let json = encode(value)?;
    store
        .swap_document(collection, key, Expect::Absent, Some(json), audit)
        .await
}

/// Removes the document under `key`; whether there was one.
pub async fn remove(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    key: &str,
    audit: Option<AuditEntry>,
) -> StoreResult<bool> {
    store
        .swap_document(collection, key, Expect::Any, None, audit)
        .await
}

/// Replaces `old` (as read, typed) by `new` (`None` removes) only if the
/// stored document is still the one read: whether it did.
pub async fn replace<T: Serialize + Sync>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    key: &str,
    old_json: String,
    new: Option<&T>,
    audit: Option<AuditEntry>,
) -> StoreResult<bool> {
    let new = new.map(encode).transpose()?;
    store
        .swap_document(collection, key, Expect::Equals(old_json), new, audit)
        .await
}

/// Up to `limit` documents after `after`, typed, as (key, value).
pub async fn page<T: DeserializeOwned>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<(String, T)>> {
    store
        .documents(collection, after, limit)
        .await?
        .into_iter()
        .map(|(k, json)| {
            let v = decode(collection, &k, &json)?;
            Ok((k, v))
        })
        .collect()
}

/// Every document of a collection, typed, read in pages of 1,000.
pub async fn all<T: DeserializeOwned>(
    store: &(impl Documents + ?Sized),
    collection: Collection,
) -> StoreResult<Vec<(String, T)>> {
    let mut out: Vec<(String, T)> = Vec::new();
    loop {
        let after = out.last().map(|(k, _)| k.clone());
        let got = page(store, collection, after.as_deref(), 1000).await?;
        let done = got.len() < 1000;
        out.extend(got);
        if done {
            return Ok(out);
        }
    }
}
