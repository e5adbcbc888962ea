//! The state every handler shares: built once by `startup` before the
//! server starts, and cloned into each worker.

use std::sync::Arc;

use super::public::StatusListCache;
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
}

/// Failed authentications a client, or one token id, may make per minute
/// before further failures get 429.
pub const MAX_AUTH_FAILURES_PER_MINUTE: u32 = crate::auth::MAX_FAILURES_PER_MINUTE;

/// The counts that rate-limit failed authentication.
pub fn auth_failure_cache() -> Arc<crate::auth::Failures> {
    Arc::default()
}
