//! The state every handler shares: built once by `startup` before the
//! server starts, and cloned into each worker.

use std::sync::Arc;

use crate::grading::Rules;
use crate::scan::Scanner;
use crate::settings::Settings;
use crate::store::SharedStore;

/// Shared state, built once before the server starts and cloned into workers.
#[derive(Clone)]
pub struct AppState {
    /// The store, for every request that is not a scan.
    pub store: SharedStore,
    pub scanner: Scanner,
    pub rules: Arc<Rules>,
    pub settings: Arc<Settings>,
    /// Scheme and host printed in codes, without a trailing slash.
    pub base_url: Arc<str>,
    /// Failed authentications in the last minute, per client address and
    /// per token id.
    pub auth_failures: Arc<crate::auth::Failures>,
    /// The signed status list, made at most once a minute.
    pub status_list: StatusListCache,
    /// Published plans with their results, read at most once a minute.
    pub plans: crate::plan::PlanCache,
}

/// Failed authentications a client, or one token id, may make per minute
/// before further failures get 429.
pub const MAX_AUTH_FAILURES_PER_MINUTE: u32 = crate::auth::MAX_FAILURES_PER_MINUTE;

/// The counts that rate-limit failed authentication.
pub fn auth_failure_cache() -> Arc<crate::auth::Failures> {
    Arc::default()
}

/// The signed status list, made at most once a minute per process (making
/// it reads every inactive code) and shared by concurrent requests.
#[derive(Clone)]
pub struct StatusListCache(pub(super) moka::future::Cache<(), bytes::Bytes>);

/// How long one signed status list is served before a new one is made.
pub const STATUS_LIST_MAX_AGE_SECS: u64 = 60;

impl StatusListCache {
    pub fn new() -> StatusListCache {
        StatusListCache(
            moka::future::Cache::builder()
                .name("status_list")
                .max_capacity(1)
                .time_to_live(std::time::Duration::from_secs(STATUS_LIST_MAX_AGE_SECS))
                .build(),
        )
    }
}

impl Default for StatusListCache {
    fn default() -> Self {
        Self::new()
    }
}
