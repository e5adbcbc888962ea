//! The signed status list: the serials of codes that are no longer in
//! force (revoked, or superseded by a reissue), signed with the active key,
//! so a verifier with no network can tell a revoked or superseded code from
//! a valid one. `SPEC.md` §8 is the normative description.
//!
//! # Why it is built this way
//!
//! - **Binary payload, signed as bytes.** The signature covers exact bytes
//!   (`YSZ-STATUS-v1\0` followed by the payload), never a JSON rendering, so
//!   there is no canonicalisation to get wrong in another language. The JSON
//!   document the service publishes carries the payload and signature as
//!   base64url; its other fields are conveniences a verifier re-derives.
//! - **Domain separated** from the code's `YSZ-CODE-v1\0`: a signature over
//!   a status list can never pass as a code's, or the reverse.
//! - **Sorted, unique serials, fixed-size entries**: one list has one
//!   encoding, a lookup is a binary search, and the length is checked
//!   against the entry count before anything is allocated.

use crate::keys::{KeyId, PublicKey, SigningKey};
use ed25519_dalek::Signer as _;

/// Domain-separation prefix of the status list's signed bytes.
pub const STATUS_SIGNING_DOMAIN: &[u8] = b"YSZ-STATUS-v1\0";
/// Format version byte of the status list payload.
pub const STATUS_FORMAT_VERSION: u8 = 1;
/// Bytes before the entries: version, kid, issued_at, count.
const HEADER_LEN: usize = 1 + 2 + 8 + 4;
/// Bytes per entry: serial (`u32`) and status (`u8`).
const ENTRY_LEN: usize = 5;

/// Why a code is on the status list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListedStatus {
    /// Revoked by a regulator.
    Revoked,
    /// Replaced by a newer code of the same merchant.
    Superseded,
}

impl ListedStatus {
    /// `revoked` or `superseded`.
    pub fn name(self) -> &'static str {
        match self {
            ListedStatus::Revoked => "revoked",
            ListedStatus::Superseded => "superseded",
        }
    }

    fn byte(self) -> u8 {
        match self {
            ListedStatus::Revoked => 1,
            ListedStatus::Superseded => 2,
        }
    }

    fn from_byte(b: u8) -> Option<ListedStatus> {
        match b {
            1 => Some(ListedStatus::Revoked),
            2 => Some(ListedStatus::Superseded),
            _ => None,
        }
    }
}

/// What a status list says: which key signed it, when it was made and the
/// codes no longer in force, sorted by serial, each serial once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    /// The key that signs (or signed) the list.
    pub kid: KeyId,
    /// When the list was made, in seconds since 1970-01-01T00:00:00Z.
    pub issued_at: u64,
    entries: Vec<(u32, ListedStatus)>,
}

impl StatusList {
    /// A list of `entries` in any order. Fails if a serial appears twice.
    pub fn new(
        kid: KeyId,
        issued_at: u64,
        mut entries: Vec<(u32, ListedStatus)>,
    ) -> Result<StatusList, StatusListError> {
        entries.sort_unstable();
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(StatusListError::Malformed(format!(
                "serial {} is listed twice",
                w[0].0
            )));
        }
        if u32::try_from(entries.len()).is_err() {
            return Err(StatusListError::Malformed(
                "more than 2^32 - 1 entries".into(),
            ));
        }
        Ok(StatusList {
            kid,
            issued_at,
            entries,
        })
    }

    /// The entries, ascending by serial.
    pub fn entries(&self) -> &[(u32, ListedStatus)] {
        &self.entries
    }

    /// The serials listed as `status`, ascending.
    pub fn serials(&self, status: ListedStatus) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.1 == status)
            .map(|e| e.0)
    }

    /// Whether the code with `serial` is listed, and why.
    pub fn status(&self, serial: u32) -> Option<ListedStatus> {
        self.entries
            .binary_search_by_key(&serial, |e| e.0)
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// The payload bytes (SPEC.md §8.1).
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.entries.len());
        out.push(STATUS_FORMAT_VERSION);
        out.extend_from_slice(&self.kid.0.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        let n = u32::try_from(self.entries.len()).expect("checked in new");
        out.extend_from_slice(&n.to_be_bytes());
        for (serial, status) in &self.entries {
            out.extend_from_slice(&serial.to_be_bytes());
            out.push(status.byte());
        }
        out
    }

    /// Parses payload bytes without checking a signature: for
    /// [`verify_status_list`], and for tools that show an untrusted list.
    pub fn parse(payload: &[u8]) -> Result<StatusList, StatusListError> {
        let malformed = |why: String| Err(StatusListError::Malformed(why));
        if payload.len() < HEADER_LEN {
            return malformed(format!(
                "payload of {} bytes is shorter than the {HEADER_LEN}-byte header",
                payload.len()
            ));
        }
        if payload[0] != STATUS_FORMAT_VERSION {
            return malformed(format!(
                "format version {} (expected {STATUS_FORMAT_VERSION})",
                payload[0]
            ));
        }
        let kid = KeyId(u16::from_be_bytes([payload[1], payload[2]]));
        let issued_at = u64::from_be_bytes(payload[3..11].try_into().expect("8 bytes"));
        let n = u32::from_be_bytes(payload[11..15].try_into().expect("4 bytes"));
        let expected = (n as usize)
            .checked_mul(ENTRY_LEN)
            .and_then(|b| b.checked_add(HEADER_LEN));
        if expected != Some(payload.len()) {
            return malformed(format!(
                "payload of {} bytes does not hold the {n} entries it announces",
                payload.len()
            ));
        }
        let mut entries = Vec::with_capacity(n as usize);
        for chunk in payload[HEADER_LEN..].chunks_exact(ENTRY_LEN) {
            let serial = u32::from_be_bytes(chunk[..4].try_into().expect("4 bytes"));
            let Some(status) = ListedStatus::from_byte(chunk[4]) else {
                return malformed(format!("serial {serial}: status byte {}", chunk[4]));
            };
            if let Some(&(last, _)) = entries.last() {
                if serial <= last {
                    return malformed(format!(
                        "serial {serial} after {last}: entries must ascend strictly"
                    ));
                }
            }
            entries.push((serial, status));
        }
        Ok(StatusList {
            kid,
            issued_at,
            entries,
        })
    }
}

/// A status list's payload and its Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedStatusList {
    /// The payload (SPEC.md §8.1).
    pub payload: Vec<u8>,
    /// Ed25519 signature over [`STATUS_SIGNING_DOMAIN`] followed by the
    /// payload.
    pub signature: [u8; 64],
}

/// Why a status list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    /// The bytes are not a status list of this format.
    #[error("malformed status list: {0}")]
    Malformed(String),
    /// Signed under a key id the verifier does not know.
    #[error("status list signed by unknown key id {0}")]
    UnknownKey(KeyId),
    /// The signature does not verify under the key id's public key.
    #[error("status list signature does not verify under key id {0}")]
    BadSignature(KeyId),
}

/// The bytes a status list's signature covers.
pub fn status_signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(STATUS_SIGNING_DOMAIN.len() + payload.len());
    signed.extend_from_slice(STATUS_SIGNING_DOMAIN);
    signed.extend_from_slice(payload);
    signed
}

/// Signs `list` with `key`, which must be the key `list.kid` names.
pub fn sign_status_list(list: &StatusList, key: &SigningKey) -> SignedStatusList {
    let payload = list.payload();
    let signature = key.0.sign(&status_signed_bytes(&payload)).to_bytes();
    SignedStatusList { payload, signature }
}

/// Checks a status list: the payload parses (SPEC.md §8.1), its key id is
/// published (`keys`) and the signature verifies strictly. Only then are the
/// entries returned.
pub fn verify_status_list(
    payload: &[u8],
    signature: &[u8; 64],
    keys: impl Fn(KeyId) -> Option<PublicKey>,
) -> Result<StatusList, StatusListError> {
    let list = StatusList::parse(payload)?;
    let key = keys(list.kid).ok_or(StatusListError::UnknownKey(list.kid))?;
    if !key.verify_strict(&status_signed_bytes(payload), signature) {
        return Err(StatusListError::BadSignature(list.kid));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[0xA1; 32])
    }

    fn sample() -> StatusList {
        StatusList::new(
            KeyId(1),
            1_780_000_000,
            vec![
                (7, ListedStatus::Superseded),
                (2, ListedStatus::Revoked),
                (40, ListedStatus::Revoked),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_signed_list_verifies_and_answers_by_serial() {
        let signed = sign_status_list(&sample(), &key());
        let public = key().public_key();
        let list = verify_status_list(&signed.payload, &signed.signature, |k| {
            (k == KeyId(1)).then_some(public)
        })
        .unwrap();
        assert_eq!(list, sample());
        assert_eq!(list.status(2), Some(ListedStatus::Revoked));
        assert_eq!(list.status(7), Some(ListedStatus::Superseded));
        assert_eq!(list.status(8), None);
        assert_eq!(
            list.entries().iter().map(|e| e.0).collect::<Vec<_>>(),
            [2, 7, 40]
        );
    }

    #[test]
    fn every_single_byte_change_is_refused() {
        let signed = sign_status_list(&sample(), &key());
        let public = key().public_key();
        let keys = |k: KeyId| (k == KeyId(1)).then_some(public);
        for i in 0..signed.payload.len() {
            let mut altered = signed.payload.clone();
            altered[i] ^= 0x01;
            assert!(
                verify_status_list(&altered, &signed.signature, keys).is_err(),
                "byte {i}"
            );
        }
        for i in 0..64 {
            let mut sig = signed.signature;
            sig[i] ^= 0x01;
            assert!(
                verify_status_list(&signed.payload, &sig, keys).is_err(),
                "sig byte {i}"
            );
        }
    }

    #[test]
    fn unknown_and_wrong_keys_are_refused() {
        let signed = sign_status_list(&sample(), &key());
        let other = SigningKey::from_bytes(&[0xB2; 32]).public_key();
        assert_eq!(
            verify_status_list(&signed.payload, &signed.signature, |_| None),
            Err(StatusListError::UnknownKey(KeyId(1)))
        );
        assert_eq!(
            verify_status_list(&signed.payload, &signed.signature, |_| Some(other)),
            Err(StatusListError::BadSignature(KeyId(1)))
        );
        // The code's domain is not the list's: a code signature over the same
        // bytes does not pass.
        let mut code_signed = crate::SIGNING_DOMAIN.to_vec();
        code_signed.extend_from_slice(&signed.payload);
        let sig = key().0.sign(&code_signed).to_bytes();
        assert!(verify_status_list(&signed.payload, &sig, |_| Some(key().public_key())).is_err());
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        let good = sample().payload();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "shorter than"),
            (good[..good.len() - 1].to_vec(), "does not hold"),
            ([good.clone(), vec![0]].concat(), "does not hold"),
            (
                {
                    let mut p = good.clone();
                    p[0] = 2;
                    p
                },
                "format version",
            ),
            (
                {
                    let mut p = good.clone();
                    p[HEADER_LEN + 4] = 9;
                    p
                },
                "status byte",
            ),
            (
                {
                    let mut p = good.clone();
                    p[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
                    p
                },
                "does not hold",
            ),
        ];
        for (payload, why) in cases {
            let err = StatusList::parse(&payload).unwrap_err().to_string();
            assert!(err.contains(why), "{err} lacks {why}");
        }
        // Out of order or repeated serials: one list has one encoding.
        let mut p = good.clone();
        p[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&7u32.to_be_bytes());
        assert!(StatusList::parse(&p)
            .unwrap_err()
            .to_string()
            .contains("ascend"));
        assert!(StatusList::new(
            KeyId(1),
            0,
            vec![(3, ListedStatus::Revoked), (3, ListedStatus::Superseded)]
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(list) = StatusList::parse(&bytes) {
                prop_assert_eq!(list.payload(), bytes);
            }
        }

        #[test]
        fn any_list_round_trips(serials in proptest::collection::btree_map(any::<u32>(), any::<bool>(), 0..50), at in any::<u64>()) {
            let entries = serials.into_iter().map(|(s, r)| (s, if r { ListedStatus::Revoked } else { ListedStatus::Superseded })).collect();
            let list = StatusList::new(KeyId(3), at, entries).unwrap();
            prop_assert_eq!(StatusList::parse(&list.payload()).unwrap(), list);
        }
    }
}
