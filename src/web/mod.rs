//! HTTP: one table lists every route (`routes`); handlers are short and work
//! on parsed domain types; every JSON error is `{"error": CODE, "message":
//! TEXT}` (`error`). This file only declares the modules and what the rest
//! of the crate uses of them: a handler imports its siblings, never this.

mod actions;
mod admin;
mod answers;
mod changes;
mod edge;
mod error;
mod extract;
mod filters;
mod grid;
mod ledger;
mod open_data;
mod openapi;
mod ops;
mod pages;
mod plans;
mod public;
mod request_metrics;
mod routes;
mod scan;
mod security_headers;
mod shop;
mod shop_admin;
mod shop_pages;
mod shop_style;
mod state;
mod tips;
mod verify;
mod workbench;

pub use edge::{envelope_and_headers, no_route};
pub use error::ApiError;
pub use ledger::{ledger, LedgerScope, COLUMNS as LEDGER_COLUMNS};
pub use request_metrics::track_requests;
pub use routes::{routes, MAX_BODY_BYTES, ROUTES};
pub use scan::{page_wording, serve_scans_first};
pub use security_headers::security_headers;
pub use state::{auth_failure_cache, AppState, MAX_AUTH_FAILURES_PER_MINUTE};
pub use workbench::dashboard_data as workbench_queues;
