//! Storage behind a few role traits.
//!
//! Records and merchants are facts from upstream; projections are derived from
//! them (and can be rebuilt); overrides, issued codes, API tokens and the audit
//! log are owned by this service and must never be lost. Every backend keeps
//! those guarantees and passes the same conformance suite
//! (`tests/it/store/`).
//!
//! The roles: [`ScanRead`] (the scan's read and the change stream),
//! [`ServiceWrites`] (codes, overrides, tokens, audit), [`BatchStore`]
//! (facts, bulk imports, grading inputs, projections) and
//! [`RegulatorQueries`], [`Documents`] (small collections: sessions,
//! tips, the roster, plans, reviews); [`Store`] is all of them, what a backend is.
//! Each caller asks for the role it uses and never knows which backend it
//! talks to.

pub mod changes;
pub mod documents;
pub mod embedded;
pub(crate) mod merge;
pub mod query;
pub mod redis;
pub mod roles;
pub(crate) mod sort;
pub mod types;

use std::sync::Arc;

pub use self::changes::{Change, ChangeKind, FeedPage, Note};
pub use self::documents::{Collection, Documents, Expect};
pub use self::roles::{
    BatchStore, BulkImport, RegulatorQueries, ScanRead, ServiceWrites, SharedStore, Store,
};
pub use self::types::{
    parse_projection_json, AuditFilter, GradingInput, Imported, RecordsAdded, ScanView, StoreError,
    StoreResult, StoredProjection, SCAN_STARTED,
};

/// Where the data lives, as given by `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Embedded(std::path::PathBuf),
    /// One Redis: the URL as given (`redis://HOST:PORT`).
    Redis(String),
    /// A Redis Cluster: its seed nodes as given, `[USER:PASSWORD@]HOST:PORT` each.
    RedisCluster(Vec<String>),
}

impl StoreSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(dir) = raw.strip_prefix("embedded:") {
            if dir.is_empty() {
                return Err("store `embedded:`: expected a directory, e.g. embedded:./data".into());
            }
            return Ok(StoreSpec::Embedded(dir.into()));
        }
        if let Some(rest) = raw.strip_prefix("redis+cluster://") {
            let nodes = rest
                .split(',')
                .map(|node| {
                    let node = node.trim();
                    let host_port = node.rsplit_once('@').map_or(node, |(_, h)| h);
                    parse_host_port(raw, host_port).map(|_| node.to_owned())
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(StoreSpec::RedisCluster(nodes));
        }
        if let Some(rest) = raw.strip_prefix("redis://") {
            // Optional `user:password@` and `/db` as in Redis URLs; the rest is HOST:PORT.
            let after_auth = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host_port = after_auth.split_once('/').map_or(after_auth, |(h, _)| h);
            parse_host_port(raw, host_port)?;
            ::redis::Client::open(raw).map_err(|e| {
                format!(
                    "store `{}`: not a Redis URL ({e}); expected redis://HOST:PORT",
                    crate::model::truncate(&crate::redact::redact_url(raw))
                )
            })?;
            return Ok(StoreSpec::Redis(raw.to_owned()));
        }
        if raw.starts_with("rediss://") || raw.starts_with("rediss+cluster://") {
            return Err(format!(
                "store `{}`: TLS to Redis is not supported in this build; use redis://HOST:PORT",
                crate::model::truncate(raw)
            ));
        }
        Err(format!(
            "store `{}`: expected embedded:DIR, redis://HOST:PORT or redis+cluster://HOST:PORT,...",
            crate::model::truncate(raw)
        ))
    }

    /// Opens the store with the default Redis options.
    pub async fn open(&self) -> anyhow::Result<SharedStore> {
        self.open_with(self::redis::RedisOptions::default()).await
    }

    /// Opens the store; `redis` applies to a Redis store only.
    pub async fn open_with(&self, redis: self::redis::RedisOptions) -> anyhow::Result<SharedStore> {
        match self {
            StoreSpec::Embedded(dir) => Ok(Arc::new(embedded::EmbeddedStore::open(dir)?)),
            StoreSpec::Redis(url) => {
                let store = self::redis::RedisStore::connect(url, redis).await?;
                store.build_search_index().await?;
                Ok(Arc::new(store))
            }
            StoreSpec::RedisCluster(nodes) => {
                let store = self::redis::RedisStore::connect_cluster(nodes, redis).await?;
                store.build_search_index().await?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// Checks one `HOST:PORT` of a Redis store spec.
fn parse_host_port<'a>(raw: &str, node: &'a str) -> Result<&'a str, String> {
    let shown = crate::model::truncate(&crate::redact::redact_url(raw));
    let example = if raw.starts_with("redis+cluster://") {
        "redis+cluster://HOST:PORT,HOST:PORT,..., e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    } else {
        "redis://HOST:PORT, e.g. redis://127.0.0.1:6379"
    };
    let Some((host, port)) = node.rsplit_once(':') else {
        return Err(format!(
            "store `{shown}`: `{}` has no port; expected {example}",
            crate::model::truncate(node)
        ));
    };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if !host_ok {
        return Err(format!(
            "store `{shown}`: bad host `{}`; expected {example}",
            crate::model::truncate(host)
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(node),
        _ => Err(format!(
            "store `{shown}`: bad port `{}`; expected {example}",
            crate::model::truncate(port)
        )),
    }
}
