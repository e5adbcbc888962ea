//! A shop's access: the one-time activation code a regulator hands out on
//! the letter (一书一卡), and the sessions (cookie `ysz_shop`) and API
//! tokens (`yszm_…`) that using it opens, each bound to one merchant.
//!
//! Stored in two collections of [`Documents`]: `shop_access`, one document
//! per merchant that was ever given access (keyed by merchant id, read by
//! key), holding the SHA-256 of the pending activation code and a
//! generation number; and `shop_sessions`, keyed by the SHA-256 of the
//! session's or token's secret. Using a code is a compare-and-swap of the
//! access document that clears the code, so of two logins with one code
//! exactly one wins. Revoking access bumps the generation: every session
//! and token carries the generation it was opened under and is void once
//! it differs, so revoking needs no listing of sessions.

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::{AuditEntry, MerchantId};
use crate::store::documents::{self, Collection};
use crate::store::{Store, StoreError};

/// One document per merchant given access, keyed by merchant id.
pub const ACCESS: Collection = Collection::new("shop_access");
/// Sessions and API tokens, keyed by the SHA-256 (hex) of their secret.
pub const SESSIONS: Collection = Collection::new("shop_sessions");

/// The activation code's alphabet: 32 symbols without look-alikes (no 0,
/// 1, I, O), so each symbol carries 5 bits.
pub const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols of an activation code: 10 × 5 = 50 bits.
pub const CODE_LEN: usize = 10;
/// How long an activation code may be used.
pub const CODE_VALID_DAYS: i64 = 30;
/// How long a session or an API token lasts.
pub const SESSION_DAYS: i64 = 90;
/// The prefix of a shop's API token.
pub const TOKEN_PREFIX: &str = "yszm_";

/// What is stored of a merchant's access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// Sessions and tokens opened under another generation are void.
    pub generation: u64,
    /// The activation code not yet used, if any.
    pub code: Option<PendingCode>,
}

/// An activation code handed out and not yet used: only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCode {
    /// SHA-256 (hex) of `merchant id ":" code`.
    pub sha256: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub issued_by: String,
}

/// Whether a secret opened a browser session or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Session,
    Token,
}

/// A session or token as stored (under the hash of its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub merchant: String,
    pub kind: SessionKind,
    pub generation: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The secret a form of this session posts in field `csrf`.
    pub csrf: String,
}

/// An authenticated shop: the merchant it is bound to.
#[derive(Debug, Clone)]
pub struct ShopSession {
    pub merchant: MerchantId,
    pub kind: SessionKind,
    pub csrf: String,
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong, used or expired activation code for this merchant")]
    Refused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hex_sha256(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Corrupt(format!("no system randomness: {e}")))?;
    Ok(buf)
}

/// A new activation code: [`CODE_LEN`] symbols of [`CODE_ALPHABET`].
fn new_code() -> Result<String, StoreError> {
    let bytes = random_bytes::<CODE_LEN>()?;
    // 32 divides 256: every symbol is equally likely.
    Ok(bytes
        .iter()
        .map(|b| CODE_ALPHABET[usize::from(b & 31)] as char)
        .collect())
}

/// A code as typed: case, spaces and dashes do not matter.
pub fn normalise_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{3000}'))
        .map(|c| c.to_ascii_uppercase())
        .take(CODE_LEN + 1)
        .collect();
    let ok = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    ok.then_some(code)
}

/// How a code is printed: two groups of five.
pub fn display_code(code: &str) -> String {
    format!("{}-{}", &code[..CODE_LEN / 2], &code[CODE_LEN / 2..])
}

fn code_hash(merchant: &MerchantId, code: &str) -> String {
    hex_sha256(format!("{merchant}:{code}").as_bytes())
}

async fn read_access(
    store: &dyn Store,
    merchant: &MerchantId,
) -> Result<(Option<String>, Access), StoreError> {
    let text = store.document(ACCESS, merchant.as_str()).await?;
    let access = match &text {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("shop access of {merchant}: {e}")))?,
        None => Access {
            generation: 0,
            code: None,
        },
    };
    Ok((text, access))
}

/// Issues a new activation code for `merchant`, replacing any unused one
/// (sessions already open stay open). Returns the code as printed; only
/// its hash is stored. Audited as `shop.access.issue`.
pub async fn issue_code(
    store: &dyn Store,
    merchant: &MerchantId,
    actor: &str,
    now: Timestamp,
) -> Result<String, StoreError> {
    let code = new_code()?;
    let (_, mut access) = read_access(store, merchant).await?;
    let expires_at = now
        .checked_add((CODE_VALID_DAYS * 24).hours())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let replaced = access.code.is_some();
    access.code = Some(PendingCode {
        sha256: code_hash(merchant, &code),
        issued_at: now,
        expires_at,
        issued_by: actor.to_owned(),
    });
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: "shop.access.issue".into(),
        target: merchant.to_string(),
        before: serde_json::json!({"unused_code": replaced}),
        after: serde_json::json!({"code_expires_at": expires_at}),
        reason: None,
    };
    documents::put(store, ACCESS, merchant.as_str(), &access, Some(audit)).await?;
    Ok(display_code(&code))
}

/// Revokes `merchant`'s access: the unused code is dropped and every
/// session and token ends. Audited as `shop.access.revoke`.
pub async fn revoke(
    store: &dyn Store,
    merchant: &MerchantId,
    actor: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (_, access) = read_access(store, merchant).await?;
    let next = Access {
        generation: access.generation + 1,
        code: None,
    };
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: "shop.access.revoke".into(),
        target: merchant.to_string(),
        before: serde_json::json!({"generation": access.generation, "unused_code": access.code.is_some()}),
        after: serde_json::json!({"generation": next.generation}),
        reason: None,
    };
    documents::put(store, ACCESS, merchant.as_str(), &next, Some(audit)).await
}

/// Uses `merchant`'s activation code once: opens a session or token and
/// returns its secret (the cookie value, or the token after `yszm_`).
/// The code is cleared by a compare-and-swap, so of concurrent logins with
/// one code exactly one succeeds. Audited as `shop.activate`.
pub async fn activate(
    store: &dyn Store,
    merchant: &MerchantId,
    raw_code: &str,
    kind: SessionKind,
    now: Timestamp,
) -> Result<String, LoginError> {
    let code = normalise_code(raw_code).ok_or(LoginError::Refused)?;
    let (text, access) = read_access(store, merchant).await?;
    let (Some(text), Some(pending)) = (text, access.code.as_ref()) else {
        return Err(LoginError::Refused);
    };
    let presented = code_hash(merchant, &code);
    let matches: bool = presented.as_bytes().ct_eq(pending.sha256.as_bytes()).into();
    if !matches || pending.expires_at <= now {
        return Err(LoginError::Refused);
    }
    let used = Access {
        generation: access.generation,
        code: None,
    };
    let audit = AuditEntry {
        at: now,
        actor: format!("shop:{merchant}"),
        action: "shop.activate".into(),
        target: merchant.to_string(),
        before: serde_json::json!({"unused_code": true}),
        after: serde_json::json!({"unused_code": false, "opened": kind}),
        reason: None,
    };
    if !documents::replace(
        store,
        ACCESS,
        merchant.as_str(),
        text,
        Some(&used),
        Some(audit),
    )
    .await?
    {
        return Err(LoginError::Refused);
    }
    open_session(store, merchant, kind, access.generation, now)
        .await
        .map_err(LoginError::from)
}

async fn open_session(
    store: &dyn Store,
    merchant: &MerchantId,
    kind: SessionKind,
    generation: u64,
    now: Timestamp,
) -> Result<String, StoreError> {
    let secret = data_encoding::HEXLOWER.encode(&random_bytes::<32>()?);
    let csrf = data_encoding::HEXLOWER.encode(&random_bytes::<16>()?);
    let session = Session {
        merchant: merchant.to_string(),
        kind,
        generation,
        created_at: now,
        expires_at: now
            .checked_add((SESSION_DAYS * 24).hours())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        csrf,
    };
    documents::put(
        store,
        SESSIONS,
        &hex_sha256(secret.as_bytes()),
        &session,
        None,
    )
    .await?;
    Ok(secret)
}

/// Whether `secret` has the shape of one this module hands out.
fn well_formed(secret: &str) -> bool {
    secret.len() == 64
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The shop a session cookie's or token's secret stands for, if it is
/// open: not expired, and access not revoked since it was opened.
pub async fn authenticate(
    store: &dyn Store,
    secret: &str,
    now: Timestamp,
) -> Result<Option<ShopSession>, StoreError> {
    if !well_formed(secret) {
        return Ok(None);
    }
    let key = hex_sha256(secret.as_bytes());
    let Some(session) = documents::get::<Session>(store, SESSIONS, &key).await? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        documents::remove(store, SESSIONS, &key, None).await?;
        return Ok(None);
    }
    let Ok(merchant) = MerchantId::parse(&session.merchant) else {
        return Ok(None);
    };
    let (_, access) = read_access(store, &merchant).await?;
    if access.generation != session.generation {
        return Ok(None);
    }
    Ok(Some(ShopSession {
        merchant,
        kind: session.kind,
        csrf: session.csrf,
    }))
}

/// Ends the session or token with this secret; whether there was one.
pub async fn close(store: &dyn Store, secret: &str) -> Result<bool, StoreError> {
    if !well_formed(secret) {
        return Ok(false);
    }
    documents::remove(store, SESSIONS, &hex_sha256(secret.as_bytes()), None).await
}

/// The unused activation code's expiry, if one is pending.
pub async fn pending_code(
    store: &dyn Store,
    merchant: &MerchantId,
) -> Result<Option<PendingCode>, StoreError> {
    Ok(read_access(store, merchant).await?.1.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_codes_carry_fifty_bits_without_look_alikes() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), CODE_LEN);
        let bits = (CODE_ALPHABET.len() as f64).log2() * CODE_LEN as f64;
        assert!(bits >= 40.0, "{bits}");
        for c in b"01IO" {
            assert!(!CODE_ALPHABET.contains(c));
        }
        let shown = display_code(&code);
        assert_eq!(normalise_code(&shown.to_lowercase()), Some(code.clone()));
        assert_eq!(normalise_code(&format!(" {} ", &shown)), Some(code));
        for bad in ["", "ABCDE", "ABCDE-FGHJK-2", "ABCDE-FGHJ0", "ABCDE-FGHJI"] {
            assert_eq!(normalise_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_differ_and_only_their_hash_is_kept() {
        let m = MerchantId::parse("M1").unwrap();
        let a = new_code().unwrap();
        let b = new_code().unwrap();
        assert_ne!(a, b);
        let h = code_hash(&m, &a);
        assert!(!h.contains(&a));
        assert_ne!(h, code_hash(&MerchantId::parse("M2").unwrap(), &a));
    }
}
