//! The published status list document (`GET /api/v1/status-list`,
//! `codes verify --status-list FILE`): the signed payload of
//! `yisaozhi_codes::StatusList` in a JSON envelope, `codes/SPEC.md` §8.2.
//!
//! Only `payload` and `signature` are trusted after verification; the other
//! fields are conveniences for people and scripts, and a verifier refuses a
//! document whose conveniences disagree with its signed payload (so a list
//! edited by hand is refused, not half-believed).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use yisaozhi_codes::{
    sign_status_list, verify_status_list, KeyId, ListedStatus, PublicKey, SigningKey, StatusList,
};

/// The `format` field of a status list document.
pub const FORMAT: &str = "ysz-status-list-v1";

/// The largest status list document `codes verify --status-list` reads.
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// The JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusDocument {
    pub format: String,
    pub kid: u16,
    /// When the list was made (RFC 3339, UTC).
    pub issued_at: jiff::Timestamp,
    /// Serials of revoked codes, ascending.
    pub revoked: Vec<u32>,
    /// Serials of superseded codes, ascending.
    pub superseded: Vec<u32>,
    /// The signed payload, base64url without padding.
    pub payload: String,
    /// Ed25519 signature over `YSZ-STATUS-v1\0 || payload`, base64url
    /// without padding.
    pub signature: String,
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn unb64(field: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("field `{field}`: not base64url without padding: {e}"))
}

/// Signs the list of `entries` (serial, why) made at `at`.
pub fn build(
    kid: KeyId,
    key: &SigningKey,
    at: jiff::Timestamp,
    entries: Vec<(u32, ListedStatus)>,
) -> anyhow::Result<StatusDocument> {
    let issued_at = u64::try_from(at.as_second()).context("status list time before 1970")?;
    let list = StatusList::new(kid, issued_at, entries)?;
    let signed = sign_status_list(&list, key);
    Ok(StatusDocument {
        format: FORMAT.into(),
        kid: kid.0,
        issued_at: jiff::Timestamp::from_second(issued_at as i64)?,
        revoked: list.serials(ListedStatus::Revoked).collect(),
        superseded: list.serials(ListedStatus::Superseded).collect(),
        payload: b64(&signed.payload),
        signature: b64(&signed.signature),
    })
}

/// Parses and verifies a document: the format, the signature under the
/// published key its `kid` names, and that every convenience field says
/// what the signed payload says.
pub fn verify(json: &str, keys: impl Fn(KeyId) -> Option<PublicKey>) -> anyhow::Result<StatusList> {
    let doc: StatusDocument = serde_json::from_str(json)
        .context("not a status list document (as served at /api/v1/status-list)")?;
    if doc.format != FORMAT {
        bail!(
            "format `{}`: expected `{FORMAT}`",
            crate::model::truncate(&doc.format)
        );
    }
    let payload = unb64("payload", &doc.payload)?;
    let signature: [u8; 64] = unb64("signature", &doc.signature)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("field `signature`: expected 64 bytes"))?;
    let list = verify_status_list(&payload, &signature, keys)?;
    if doc.kid != list.kid.0
        || doc.issued_at.as_second() != list.issued_at as i64
        || !doc
            .revoked
            .iter()
            .copied()
            .eq(list.serials(ListedStatus::Revoked))
        || !doc
            .superseded
            .iter()
            .copied()
            .eq(list.serials(ListedStatus::Superseded))
    {
        bail!("the document's kid, issued_at, revoked or superseded fields differ from its signed payload");
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[0x5A; 32])
    }

    fn doc() -> StatusDocument {
        let at = jiff::Timestamp::from_second(1_780_000_000).unwrap();
        build(
            KeyId(4),
            &key(),
            at,
            vec![
                (9, ListedStatus::Revoked),
                (3, ListedStatus::Superseded),
                (12, ListedStatus::Superseded),
            ],
        )
        .unwrap()
    }

    fn keys(kid: KeyId) -> Option<PublicKey> {
        (kid == KeyId(4)).then(|| key().public_key())
    }

    #[test]
    fn a_built_document_verifies_and_lists_by_reason() {
        let d = doc();
        assert_eq!(d.revoked, [9]);
        assert_eq!(d.superseded, [3, 12]);
        let list = verify(&serde_json::to_string(&d).unwrap(), keys).unwrap();
        assert_eq!(list.status(9), Some(ListedStatus::Revoked));
        assert_eq!(list.status(12), Some(ListedStatus::Superseded));
        assert_eq!(list.status(10), None);
    }

    #[test]
    fn an_edited_document_is_refused() {
        let text = serde_json::to_string(&doc()).unwrap();
        // A serial dropped from the convenience list, or one added.
        for (from, to) in [
            ("\"revoked\":[9]", "\"revoked\":[]"),
            ("\"superseded\":[3,12]", "\"superseded\":[3,12,13]"),
            ("\"kid\":4", "\"kid\":5"),
        ] {
            assert!(text.contains(from));
            let edited = text.replace(from, to);
            assert!(verify(&edited, keys).is_err(), "{to}");
        }
        // One character of the payload or signature changed.
        let d = doc();
        for field in ["payload", "signature"] {
            let value = if field == "payload" {
                &d.payload
            } else {
                &d.signature
            };
            let mut chars: Vec<char> = value.chars().collect();
            chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
            let edited = text.replace(value.as_str(), &chars.iter().collect::<String>());
            let err = verify(&edited, keys).unwrap_err();
            assert!(format!("{err:#}").contains("status list"), "{err:#}");
        }
        // Signed by a key the verifier does not know.
        let err = verify(&text, |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("unknown key id 4"), "{err:#}");
        // Not a document, or another format.
        assert!(verify("{}", keys).is_err());
        assert!(verify(&text.replace(FORMAT, "ysz-status-list-v2"), keys).is_err());
    }
}
