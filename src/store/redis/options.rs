//! How to reach Redis and name the keys: [`RedisOptions`], its defaults and
//! the check of a key prefix.

use std::time::Duration;

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "ysz";
/// Items per script call (merchants, records or projections).
pub const CHUNK: usize = 200;
/// Above this many pending changes a reader is told to drop its whole cache.
pub const MAX_CHANGES_LISTED: u64 = 50_000;
/// Merchant changes kept (approximately) in the change stream for slow readers;
/// twice the default [`MAX_CHANGES_LISTED`], since a reader further behind
/// drops everything anyway.
pub const CHANGES_KEPT: u64 = 100_000;
/// Audit entries read per round trip when walking the log.
pub(super) const AUDIT_PAGE: isize = 256;
/// An import expected to add at least this many records runs in bulk mode.
pub const BULK_MIN_RECORDS: u64 = 100_000;

/// How to reach Redis and name the keys.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every key (`<prefix>:{tag}:...`). Letters, digits and
    /// `_ - . :` only; lets several stores (e.g. tests) share one server.
    pub prefix: String,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one reply; a request past it fails as unavailable.
    pub response_timeout: Duration,
    /// Reconnection attempts per failure before a request gives up.
    pub retries: u32,
    /// A reader more than this many changes behind is told to drop its whole
    /// cache ([`ScanRead::changes_since`] returns `None`).
    pub max_changes_listed: u64,
    /// About how many merchant changes the change stream keeps.
    pub changes_kept: u64,
    /// While Redis is unreachable, how often the background probe tries it
    /// (standalone; see the module documentation).
    pub probe_interval: Duration,
    /// The most a scan may wait for its store read, connecting included
    /// (see the module documentation). Default 2 s; the service's is its
    /// setting `store_budget_ms`, by default [`SCAN_BUDGET`].
    pub scan_budget: Duration,
    /// Redis Cluster: how long connecting keeps trying while the cluster
    /// settles (see the module documentation; default [`CONNECT_WAIT`]).
    pub connect_wait: Duration,
    /// An import expected to add at least this many records runs in bulk
    /// mode (see the module documentation; default [`BULK_MIN_RECORDS`],
    /// or `YSZ_REDIS_BULK_MIN`).
    pub bulk_min: u64,
    /// Memory a standalone bulk import may take to sort its records by
    /// merchant before storing them; beyond it sorted runs go to files under
    /// the system's temporary directory (default [`SORT_BYTES`], or
    /// `YSZ_REDIS_SORT_BYTES`).
    pub sort_bytes: usize,
}

/// Default [`RedisOptions::sort_bytes`].
pub const SORT_BYTES: usize = 256 << 20;
/// Default [`RedisOptions::connect_wait`].
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            retries: 3,
            max_changes_listed: MAX_CHANGES_LISTED,
            changes_kept: CHANGES_KEPT,
            probe_interval: Duration::from_millis(250),
            // The response timeout: a library caller (a test, the batch
            // job) has no scan to answer; the service sets its own.
            scan_budget: Duration::from_secs(2),
            connect_wait: CONNECT_WAIT,
            bulk_min: std::env::var("YSZ_REDIS_BULK_MIN")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(BULK_MIN_RECORDS),
            sort_bytes: std::env::var("YSZ_REDIS_SORT_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SORT_BYTES),
        }
    }
}

/// Checks a key prefix: letters, digits and `_ - . :`, 1–64 characters.
pub(super) fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("Redis key prefix `{prefix}`: expected 1–64 of A-Z a-z 0-9 _ - . :")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("ysz").is_ok());
        assert!(check_prefix("t-1:x").is_ok());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("a{b}").is_err());
        assert!(check_prefix("a b").is_err());
    }
}
