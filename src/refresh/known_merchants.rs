//! Which record lines name a merchant that exists: the check an import
//! makes for every record, answered from memory after one store lookup
//! per merchant id.

use std::collections::HashSet;

use crate::model::MerchantId;
use crate::model::Record;
use crate::store::BatchStore;

/// At most this many unknown merchant ids are remembered (to ask once).
const MAX_UNKNOWN_REMEMBERED: usize = 1_000_000;

/// The merchants known to exist (from the merchants file or the store),
/// and the ids already found missing, so that each record's merchant is
/// looked up in the store at most once.
#[derive(Default)]
pub(super) struct KnownMerchants {
    existing: HashSet<IdKey, FastHash>,
    missing: HashSet<IdKey, FastHash>,
}

/// A merchant id as a fixed-size set key: the id's bytes, zero-padded (an
/// id has at most 32 bytes and never a NUL, so two ids never share a key).
/// A lookup then reads the table alone, not a string elsewhere in memory:
/// at a million merchants and ten million records, those extra cache
/// misses were a tenth of the import's time.
type IdKey = [u8; MerchantId::MAX_LEN];

fn id_key(id: &MerchantId) -> IdKey {
    let mut key = [0; MerchantId::MAX_LEN];
    let b = id.as_str().as_bytes();
    let n = b.len().min(key.len());
    key[..n].copy_from_slice(&b[..n]);
    key
}

/// The sets' hasher, looked up for every record: foldhash's fast variant.
/// A 32-byte key takes two chains of two folded multiplies side by side and
/// one to finish (three steps deep; SipHash takes many rounds, the FxHash
/// this replaced five multiplies in a row). Keys come from the regulator's
/// own files, so flooding resistance buys nothing here, and the `quality`
/// variant's extra final mixing buys nothing in a hash table. Seeded per
/// set, as foldhash recommends, so copying one set into another stays fast.
type FastHash = foldhash::fast::RandomState;

impl KnownMerchants {
    pub(super) fn insert(&mut self, id: &MerchantId) {
        self.existing.insert(id_key(id));
    }

    /// Forgets the ids found missing: a merchants file chunk may have
    /// brought them since.
    pub(super) fn clear_missing(&mut self) {
        self.missing.clear();
    }

    /// Whether the merchant of each of `records` exists; the ids not seen
    /// yet are looked up in one store call.
    pub(super) async fn check(
        &mut self,
        store: &dyn BatchStore,
        records: &[(Record, u64)],
    ) -> anyhow::Result<Vec<bool>> {
        let keys: Vec<IdKey> = records.iter().map(|(r, _)| id_key(&r.merchant)).collect();
        let known: Vec<bool> = keys.iter().map(|k| self.existing.contains(k)).collect();
        let mut asked: HashSet<IdKey, FastHash> = HashSet::default();
        let mut ask = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !known[i] && !self.missing.contains(k) && asked.insert(*k) {
                ask.push(records[i].0.merchant.clone());
            }
        }
        if ask.is_empty() {
            return Ok(known);
        }
        ask.sort();
        let found: HashSet<IdKey, FastHash> = store
            .known_merchants(ask)
            .await?
            .iter()
            .map(id_key)
            .collect();
        if self.missing.len() > MAX_UNKNOWN_REMEMBERED {
            self.missing.clear();
        }
        for k in asked {
            if found.contains(&k) {
                self.existing.insert(k);
            } else {
                self.missing.insert(k);
            }
        }
        Ok(keys
            .iter()
            .zip(known)
            .map(|(k, known)| known || found.contains(k))
            .collect())
    }
}
