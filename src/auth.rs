//! Regulator authentication: bearer tokens stored only as SHA-256 hashes.
//!
//! A token reads `ysz_<id>_<secret>`: `id` (8 hex digits) finds the stored
//! token, and the SHA-256 of `secret` (64 hex digits, 256 random bits) is
//! compared with the stored hash in constant time. A fast hash is right here:
//! the secret is random, not a human password.

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::RegionCode;
use crate::store::{ApiToken, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Search, stats, audit log; no changes.
    Read,
    /// Read everything; change merchants whose region starts with the prefix
    /// (an empty prefix: every region).
    Write { region_prefix: String },
}

impl Scope {
    /// Parses `read`, `write` or `write:<region prefix>` (1–6 digits).
    pub fn parse(raw: &str) -> Result<Scope, String> {
        match raw {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write {
                region_prefix: String::new(),
            }),
            _ => match raw.strip_prefix("write:") {
                Some(p) if (1..=6).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Scope::Write {
                        region_prefix: p.to_owned(),
                    })
                }
                _ => Err(format!(
                    "scope `{}`: expected read, write or write:<region prefix of 1-6 digits>",
                    crate::domain::truncate(raw)
                )),
            },
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Scope::Read => "read".into(),
            Scope::Write { region_prefix } if region_prefix.is_empty() => "write".into(),
            Scope::Write { region_prefix } => format!("write:{region_prefix}"),
        }
    }

    /// Whether this scope may change a merchant in `region`.
    pub fn may_write(&self, region: &RegionCode) -> bool {
        match self {
            Scope::Read => false,
            Scope::Write { region_prefix } => region.as_str().starts_with(region_prefix.as_str()),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name; this is the actor in audit entries.
    pub name: String,
    pub scope: Scope,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed `Authorization: Bearer` header")]
    Missing,
    #[error("unknown, revoked or wrong token")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no system randomness: {e}"))?;
    Ok(data_encoding::HEXLOWER.encode(&buf))
}

/// Creates a token: the plaintext (shown once) and what is stored.
pub fn new_token(name: &str, scope: &Scope, now: Timestamp) -> Result<(String, ApiToken), String> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("token name: expected 1-64 printable characters".into());
    }
    let id = random_hex(4)?;
    let secret = random_hex(32)?;
    let plaintext = format!("ysz_{id}_{secret}");
    let stored = ApiToken {
        id,
        name: name.to_owned(),
        secret_sha256: sha256(secret.as_bytes()),
        scope: scope.as_string(),
        created_at: now,
        revoked: false,
    };
    Ok((plaintext, stored))
}

/// Splits a presented token into (id, secret) if it has the right shape.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("ysz_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 8) && hex(secret, 64)).then_some((id, secret))
}

/// The credentials of an `Authorization` header of the `Bearer` scheme,
/// whose name is case-insensitive (RFC 9110 §11.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Checks an `Authorization` header value against the store.
pub async fn authenticate(store: &dyn Store, header: Option<&str>) -> Result<Principal, AuthError> {
    let token = header.and_then(bearer).ok_or(AuthError::Missing)?;
    let (id, secret) = split(token).ok_or(AuthError::Invalid)?;
    let stored = store.token(id).await?.ok_or(AuthError::Invalid)?;
    let presented = sha256(secret.as_bytes());
    let matches: bool = presented.ct_eq(&stored.secret_sha256).into();
    if !matches || stored.revoked {
        return Err(AuthError::Invalid);
    }
    let scope = Scope::parse(&stored.scope).map_err(|_| AuthError::Invalid)?;
    Ok(Principal {
        name: stored.name,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_limit_regions() {
        let region = RegionCode::parse("511504").unwrap();
        assert!(Scope::parse("write").unwrap().may_write(&region));
        assert!(Scope::parse("write:5115").unwrap().may_write(&region));
        assert!(!Scope::parse("write:5116").unwrap().may_write(&region));
        assert!(!Scope::parse("read").unwrap().may_write(&region));
        for bad in ["", "admin", "write:", "write:5115041", "write:51a"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer t", "bearer t", "BEARER t", "bEaReR   t "] {
            assert_eq!(bearer(header), Some("t"), "{header}");
        }
        for header in ["Basic t", "Bearert", "Bearer", "Bear t", ""] {
            assert_eq!(bearer(header), None, "{header}");
        }
    }

    #[test]
    fn tokens_have_the_documented_shape_and_store_only_a_hash() {
        let (plain, stored) = new_token("county", &Scope::Read, Timestamp::UNIX_EPOCH).unwrap();
        let (id, secret) = split(&plain).unwrap();
        assert_eq!(id, stored.id);
        assert_eq!(stored.secret_sha256, sha256(secret.as_bytes()));
        assert!(!serde_json::to_string(&stored).unwrap().contains(secret));
        assert!(split("ysz_1234_abc").is_none());
        assert!(split(&plain.replace("ysz_", "xyz_")).is_none());
    }
}
