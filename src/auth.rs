//! Regulator authentication: bearer tokens stored only as SHA-256 hashes.
//!
//! A token reads `ysz_<id>_<secret>`: `id` (8 hex digits) finds the stored
//! token, and the SHA-256 of `secret` (64 hex digits, 256 random bits) is
//! compared with the stored hash in constant time. A fast hash is right here:
//! the secret is random, not a human password.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::{ApiToken, RegionCode};
use crate::settings::IpNet;
use crate::store::{ServiceWrites, StoreError};

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
                    crate::model::truncate(raw)
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

    /// The region prefix this scope sees (`""`: every region): a token
    /// limited to a region (`write:<prefix>`) sees only it in the
    /// workbench (search, dashboard, merchant pages, audit); `read` and
    /// `write` see every region.
    pub fn visible_prefix(&self) -> &str {
        match self {
            Scope::Read => "",
            Scope::Write { region_prefix } => region_prefix,
        }
    }

    /// Whether this scope sees a merchant in `region`.
    pub fn may_see(&self, region: &RegionCode) -> bool {
        region.as_str().starts_with(self.visible_prefix())
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
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// The id (`ysz_<id>_`) of a well-formed presented token: what failed
/// attempts against one token are counted by.
pub fn presented_id(header: Option<&str>) -> Option<&str> {
    header.and_then(bearer).and_then(split).map(|(id, _)| id)
}

/// The id (`ysz_<id>_`) of a well-formed token as typed (e.g. into the
/// workbench's login form).
pub fn token_id(token: &str) -> Option<&str> {
    split(token.trim()).map(|(id, _)| id)
}

/// Checks an `Authorization` header value against the store.
pub async fn authenticate(
    store: &dyn ServiceWrites,
    header: Option<&str>,
) -> Result<Principal, AuthError> {
    let token = header.and_then(bearer).ok_or(AuthError::Missing)?;
    authenticate_token(store, token).await
}

/// Checks a token (`ysz_<id>_<secret>`) against the store.
pub async fn authenticate_token(
    store: &dyn ServiceWrites,
    token: &str,
) -> Result<Principal, AuthError> {
    let (id, secret) = split(token.trim()).ok_or(AuthError::Invalid)?;
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

/// Failed authentications a client address, or the holders of one token
/// id, may make per minute; past it, further failures are answered 429.
pub const MAX_FAILURES_PER_MINUTE: u32 = 10;

/// Failed authentications in the last minute, per client address (an IPv6
/// client per /64) and per presented token id.
///
/// A presented token is always checked, whatever the counts: a valid token
/// is never refused because of failures from its address (behind a proxy
/// that is everyone's) or against its id. The counts decide how a failure
/// is answered (429 past the limit, logged once rather than per attempt),
/// and a header that cannot be a token from an address past its limit is
/// refused without any work. Guessing a secret is not what they stop: it
/// has 256 random bits.
pub struct Failures {
    by_client: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    by_token: moka::sync::Cache<String, Arc<AtomicU32>>,
}

impl Default for Failures {
    fn default() -> Self {
        fn cache<K>(name: &str) -> moka::sync::Cache<K, Arc<AtomicU32>>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
        {
            moka::sync::Cache::builder()
                .name(name)
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build()
        }
        Failures {
            by_client: cache("auth_failures_by_client"),
            by_token: cache("auth_failures_by_token"),
        }
    }
}

/// The key a client's failures are counted under: its IPv4 address, or
/// the /64 of its IPv6 address (one subscriber's block: rotating addresses
/// inside it does not escape the count).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl Failures {
    /// Whether `client` is past its limit.
    pub fn client_limited(&self, client: Option<IpAddr>) -> bool {
        client
            .and_then(|ip| self.by_client.get(&client_key(ip)))
            .is_some_and(|n| n.load(Ordering::Relaxed) >= MAX_FAILURES_PER_MINUTE)
    }

    /// Whether the failures counted against `key` (a token id, or another
    /// secret's owner such as a shop's merchant id) are past the limit.
    pub fn key_limited(&self, key: &str) -> bool {
        self.by_token
            .get(key)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= MAX_FAILURES_PER_MINUTE)
    }

    /// Counts a failure of `client` against `token_id`; whether either was
    /// already past its limit (the failure is then answered 429).
    pub fn note(&self, client: Option<IpAddr>, token_id: Option<&str>) -> bool {
        let bump = |n: Arc<AtomicU32>| n.fetch_add(1, Ordering::Relaxed) >= MAX_FAILURES_PER_MINUTE;
        let by_client = client
            .is_some_and(|ip| bump(self.by_client.get_with(client_key(ip), Default::default)));
        let by_token = token_id
            .is_some_and(|id| bump(self.by_token.get_with(id.to_owned(), Default::default)));
        by_client || by_token
    }
}

/// Most `X-Forwarded-For` hops looked at, from the right.
const MAX_FORWARDED_HOPS: usize = 32;

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then `X-Forwarded-For` (`values` in header order) is read from the right,
/// skipping trusted proxies, and the first address not trusted is the client.
/// Entries left of it were written by the client and are never believed; an
/// entry that is not an address ends the walk at the last proxy.
pub fn client_address<'a>(
    peer: Option<IpAddr>,
    values: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer?;
    if !is_trusted(client) {
        return Some(client);
    }
    let hops = values
        .rev()
        .flat_map(|v| v.rsplit(','))
        .take(MAX_FORWARDED_HOPS);
    for hop in hops {
        let hop = hop.trim();
        let Some(ip) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
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
        assert!(Scope::parse("read").unwrap().may_see(&region));
        assert!(Scope::parse("write:5115").unwrap().may_see(&region));
        assert!(!Scope::parse("write:5116").unwrap().may_see(&region));
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_address_believes_only_trusted_proxies() {
        let trusted = [
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("::1").unwrap(),
        ];
        let cases: &[(&str, &[&str], &[IpNet], &str)] = &[
            // No trusted proxies: the header is ignored.
            ("127.0.0.1", &["203.0.113.7"], &[], "127.0.0.1"),
            // An untrusted peer: ignored too.
            ("192.0.2.1", &["203.0.113.7"], &trusted, "192.0.2.1"),
            // A trusted proxy: its hop names the client.
            ("10.1.2.3", &["203.0.113.7"], &trusted, "203.0.113.7"),
            // What the client wrote left of it is not believed.
            (
                "10.1.2.3",
                &["1.1.1.1, 203.0.113.7"],
                &trusted,
                "203.0.113.7",
            ),
            (
                "10.1.2.3",
                &["1.1.1.1", "203.0.113.7"],
                &trusted,
                "203.0.113.7",
            ),
            // Chains of trusted proxies are skipped.
            (
                "10.1.2.3",
                &["203.0.113.7, 10.9.9.9"],
                &trusted,
                "203.0.113.7",
            ),
            ("::1", &["203.0.113.7, 10.9.9.9"], &trusted, "203.0.113.7"),
            // Junk ends the walk at the last proxy.
            ("10.1.2.3", &["203.0.113.7, junk"], &trusted, "10.1.2.3"),
            ("10.1.2.3", &[], &trusted, "10.1.2.3"),
            // Only proxies: the leftmost one.
            ("10.1.2.3", &["10.0.0.9"], &trusted, "10.0.0.9"),
            ("10.1.2.3", &["[2001:db8::1]:4711"], &trusted, "2001:db8::1"),
        ];
        for (peer, values, trusted, want) in cases {
            let got = client_address(Some(ip(peer)), values.iter().copied(), trusted);
            assert_eq!(got, Some(ip(want)), "{peer} {values:?}");
        }
        assert_eq!(
            client_address(None, ["1.1.1.1"].into_iter(), &trusted),
            None
        );
    }

    #[test]
    fn failures_are_limited_per_client_and_per_token_id() {
        let f = Failures::default();
        let (a, b) = (Some(ip("192.0.2.1")), Some(ip("192.0.2.2")));
        for _ in 0..MAX_FAILURES_PER_MINUTE {
            assert!(!f.note(a, None));
        }
        assert!(f.client_limited(a));
        assert!(!f.client_limited(b));
        assert!(f.note(a, None));
        // One token id, attempts from many addresses.
        for i in 0..MAX_FAILURES_PER_MINUTE {
            assert!(!f.note(Some(ip(&format!("198.51.100.{i}"))), Some("0badc0de")));
        }
        assert!(f.note(b, Some("0badc0de")), "the id is past its limit");
        assert!(!f.note(b, Some("12345678")), "another id is not");
        assert!(f.key_limited("0badc0de"));
        assert!(!f.key_limited("12345678"));
        // IPv6: counted per /64.
        for i in 0..MAX_FAILURES_PER_MINUTE {
            assert!(!f.note(Some(ip(&format!("2001:db8:1:2::{i:x}"))), None));
        }
        assert!(f.client_limited(Some(ip("2001:db8:1:2:ffff::1"))));
        assert!(!f.client_limited(Some(ip("2001:db8:1:3::1"))));
    }
}
