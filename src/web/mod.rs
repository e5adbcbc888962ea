//! HTTP: one function lists every route; handlers are short and work on
//! parsed domain types; every JSON error is `{"error": CODE, "message": TEXT}`.

mod admin;
mod edge;
mod openapi;
mod ops;
mod pages;
mod public;
mod scan;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use crate::grading::Rules;
use crate::model::Projection;
use crate::scan::Scanner;
use crate::settings::Settings;

/// Shared state, built once before the server starts and cloned into workers.
#[derive(Clone)]
pub struct AppState {
    pub scanner: Scanner,
    pub rules: Arc<Rules>,
    pub settings: Arc<Settings>,
    /// Scheme and host printed in codes, without a trailing slash.
    pub base_url: Arc<str>,
    /// Failed authentications in the last minute, per client address and
    /// per token id.
    pub auth_failures: Arc<crate::auth::Failures>,
    /// The signed status list, made at most once a minute.
    pub status_list: public::StatusListCache,
}

/// Failed authentications a client, or one token id, may make per minute
/// before further failures get 429.
pub const MAX_AUTH_FAILURES_PER_MINUTE: u32 = crate::auth::MAX_FAILURES_PER_MINUTE;

/// The counts that rate-limit failed authentication.
pub fn auth_failure_cache() -> Arc<crate::auth::Failures> {
    Arc::default()
}

/// The largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub use edge::{envelope_and_headers, no_route, security_headers};

/// The route of each method `api!` declares. A `GET` route also answers
/// `HEAD` (actix matches methods exactly; the server sends no body for
/// `HEAD`).
mod method {
    use actix_web::{guard, web, Route};

    pub fn get() -> Route {
        web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    }
    pub use web::{delete, post, put};
}

/// Declares every route once: `routes()` registers them and `ROUTES` feeds
/// `/openapi.json` and the `Allow` header of a 405, so neither can drift
/// from the router.
macro_rules! api {
    ($( $method:ident $path:expr => $handler:path, $tag:literal, $summary:literal, [$($query:literal),*]; )*) => {
        /// Every route of the service.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            $( cfg.route($path, method::$method().to($handler)); )*
        }

        /// (method, path, tag, summary, query parameters) of every route.
        pub const ROUTES: &[openapi::RouteDoc] = &[
            $( openapi::RouteDoc {
                method: stringify!($method),
                path: $path,
                tag: $tag,
                summary: $summary,
                query: &[$($query),*],
            }, )*
        ];
    };
}

/// The scan routes, which `scan::serve_scans_first` also answers before
/// the router.
const SCAN_JSON: &str = "/api/v1/scan/{token}";
const SCAN_PAGE: &str = "/s/{token}";
const SCAN_PAGE_UPPER: &str = "/S/{token}";

pub use scan::{scan_pattern, serve_scans_first};

api! {
    // The scan routes first: actix tries routes in order, and scans are
    // nearly all the traffic.
    get SCAN_JSON => scan::json, "consumer", "Scan result as JSON", [];
    get SCAN_PAGE => scan::page, "consumer", "Scan page (HTML; JSON with Accept: application/json)", [];
    get SCAN_PAGE_UPPER => scan::page, "consumer", "Scan page, upper-case form printed in QR codes", [];
    get "/" => pages::home, "consumer", "Home page", [];
    get "/api/v1/keys" => public::keys, "public", "Published verification keys", [];
    get "/api/v1/status-list" => public::status_list, "public", "Signed list of revoked and superseded code serials (codes/SPEC.md §8)", [];
    get "/api/v1/merchants/{id}" => public::merchant, "public", "A merchant's public projection", [];
    get "/api/v1/merchants/{id}/code" => public::code, "public", "The merchant's active code", [];
    get "/api/v1/merchants/{id}/code.svg" => public::code_svg, "shop", "The active code as SVG, coloured by grade", [];
    get "/api/v1/merchants/{id}/code.png" => public::code_png, "shop", "The active code as PNG, coloured by grade", [];
    get "/merchants/{id}/print" => public::print, "shop", "Print page: A6 sticker and A5 poster", [];
    put "/api/v1/admin/merchants/{id}/override" => admin::set_override, "regulator", "Reclassify a merchant (body: grade, reason, expires_at?)", [];
    delete "/api/v1/admin/merchants/{id}/override" => admin::clear_override, "regulator", "Clear a merchant's override", [];
    post "/api/v1/admin/merchants/{id}/codes" => admin::issue_code, "regulator", "Issue a new code (supersedes the previous one)", [];
    post "/api/v1/admin/codes/{serial}/revoke" => admin::revoke_code, "regulator", "Revoke a code", [];
    get "/api/v1/admin/merchants" => admin::search, "regulator", "Search merchants", ["q", "grade", "region", "category", "kind", "page", "per_page"];
    post "/api/v1/admin/merchants" => admin::register, "regulator", "Register merchants (JSONL body); new ones get a code", [];
    post "/api/v1/admin/records" => admin::import_records, "regulator", "Import records (JSONL body), graded at once", [];
    get "/api/v1/admin/stats" => admin::stats, "regulator", "Counts by grade, region and category", ["region"];
    get "/api/v1/admin/reprint" => admin::reprint, "regulator", "Merchants whose printed code shows an outdated grade", [];
    get "/api/v1/admin/audit" => admin::audit, "regulator", "The audit log", ["target", "actor", "since", "limit"];
    get "/healthz" => ops::healthz, "operator", "Liveness", [];
    get "/readyz" => ops::readyz, "operator", "Readiness: keys loaded, and the store reachable or merchants cached", [];
    get "/metrics" => ops::metrics, "operator", "Prometheus metrics", [];
    get "/openapi.json" => openapi::document, "operator", "This OpenAPI description", [];
}

/// The one error type handlers return; rendered as the JSON envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed authentication attempts from your address or with this token id; wait a minute")]
    TooManyAttempts,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the data store is not reachable; try again in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _) => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooManyAttempts => "too_many_attempts",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::TooManyAttempts) {
            res.insert_header(("Retry-After", "60"));
        }
        res.json(json!({"error": self.code(), "message": self.to_string()}))
    }
}

/// Logs a request refused because the store is unreachable: at most one
/// line every few seconds, with how many were refused since the last one,
/// so an outage under load does not flood the log.
fn warn_unavailable(cause: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    const EVERY_SECS: u64 = 5;
    static LAST: AtomicU64 = AtomicU64::new(0);
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + EVERY_SECS
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        REFUSED.fetch_sub(refused, Ordering::Relaxed);
        tracing::warn!(error = %cause, refused, "store unavailable: answering 503");
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(cause) => {
                warn_unavailable(&cause);
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// An error from library code that may wrap a store error: the store down
/// is a 503 whatever the route, anything else is internal.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<crate::store::StoreError>() {
            Ok(store_error) => store_error.into(),
            Err(other) => ApiError::Internal(other),
        }
    }
}

impl From<Arc<crate::store::StoreError>> for ApiError {
    fn from(e: Arc<crate::store::StoreError>) -> Self {
        match &*e {
            crate::store::StoreError::Unavailable(cause) => {
                warn_unavailable(cause);
                ApiError::Unavailable
            }
            other => ApiError::Internal(anyhow::anyhow!("{other}")),
        }
    }
}

/// Parses a merchant id from the path, or answers 404.
fn merchant_id(raw: &str) -> Result<crate::domain::MerchantId, ApiError> {
    crate::domain::MerchantId::parse(raw)
        .map_err(|_| ApiError::NotFound(format!("no merchant `{}`", crate::domain::truncate(raw))))
}

/// The public projection (no personal data): the fields shared by the scan
/// JSON and `/api/v1/merchants/{id}`, with the override re-checked for today.
/// Serialized straight from the projection (no intermediate JSON value): it
/// is most of every cold scan's work.
fn public_projection(p: &Projection, today: jiff::civil::Date) -> PublicProjection<'_> {
    let (grade, active) = p.effective(today);
    PublicProjection {
        merchant: &p.merchant,
        grade,
        computed_grade: p.computed_grade,
        override_: active.map(|o| PublicOverride {
            grade: o.grade,
            reason: &o.reason,
            expires_at: o.expires_at,
            at: o.at,
        }),
        reasons: Reasons {
            all: &p.reasons,
            with_override: active.is_some(),
        },
        records: &p.records,
        as_of: p.as_of,
        updated_at: p.updated_at,
        next_change_at: p.next_change_at,
    }
}

#[derive(serde::Serialize)]
struct PublicProjection<'a> {
    merchant: &'a crate::grading::PublicMerchant,
    grade: crate::domain::Grade,
    computed_grade: crate::domain::Grade,
    #[serde(rename = "override")]
    override_: Option<PublicOverride<'a>>,
    reasons: Reasons<'a>,
    records: &'a crate::grading::RecordSummary,
    as_of: jiff::civil::Date,
    updated_at: jiff::Timestamp,
    next_change_at: Option<jiff::civil::Date>,
}

/// An active override as the public sees it: not who made it.
#[derive(serde::Serialize)]
struct PublicOverride<'a> {
    grade: crate::domain::Grade,
    reason: &'a str,
    expires_at: Option<jiff::civil::Date>,
    at: jiff::Timestamp,
}

/// The reasons, without the override's once it is no longer active.
struct Reasons<'a> {
    all: &'a [crate::grading::Reason],
    with_override: bool,
}

impl serde::Serialize for Reasons<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.all
                .iter()
                .filter(|r| self.with_override || r.rule != crate::grading::OVERRIDE_RULE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::project;
    use crate::model::Override;
    use crate::records::{parse_merchant, parse_record};

    /// The demo's projections as of `as_of`, with `override_` on each.
    pub(super) fn demo_projections(
        as_of: jiff::civil::Date,
        override_: Option<&Override>,
    ) -> Vec<Projection> {
        let sample = crate::demo_data::sample(as_of);
        let records: Vec<_> = sample
            .records
            .iter()
            .map(|r| parse_record(&r.to_string()).unwrap())
            .collect();
        sample
            .merchants
            .iter()
            .map(|m| {
                let m = parse_merchant(&m.to_string()).unwrap();
                let own: Vec<_> = records
                    .iter()
                    .filter(|r| r.merchant == m.id)
                    .cloned()
                    .collect();
                let now = jiff::Timestamp::now();
                project(&m, &own, override_, &Rules::default(), as_of, now)
            })
            .collect()
    }

    /// The scan answer splices a projection's stored JSON as its public JSON
    /// when it has no override: that holds only while the two are the same
    /// bytes, which this pins for every demo merchant (every rule fires).
    #[test]
    fn without_an_override_the_stored_projection_is_its_public_json() {
        let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
        let projections = demo_projections(as_of, None);
        assert!(projections.len() > 50);
        for p in &projections {
            let stored = serde_json::to_string(p).unwrap();
            for today in [as_of, "2027-01-01".parse().unwrap()] {
                let public = serde_json::to_string(&public_projection(p, today)).unwrap();
                assert_eq!(stored, public, "{}", p.merchant.id);
            }
        }
        // With an override they differ (who made it is not public), which is
        // why the splice is only used without one.
        let o = Override {
            grade: crate::domain::Grade::Red,
            reason: "检查发现问题".into(),
            expires_at: None,
            actor: "inspector-7".into(),
            at: jiff::Timestamp::now(),
        };
        let p = &demo_projections(as_of, Some(&o))[0];
        let public = serde_json::to_string(&public_projection(p, as_of)).unwrap();
        assert_ne!(serde_json::to_string(p).unwrap(), public);
        assert!(!public.contains("inspector-7"));
    }

    /// A view made from stored JSON answers from its head without parsing
    /// the rest, and parses it on demand; both paths agree with the parsed
    /// projection, with and without an override.
    #[test]
    fn a_view_from_stored_json_agrees_with_the_parsed_projection() {
        use crate::scan::MerchantView;
        let as_of: jiff::civil::Date = "2026-06-30".parse().unwrap();
        let until: jiff::civil::Date = "2026-07-31".parse().unwrap();
        let o = Override {
            grade: crate::domain::Grade::Red,
            reason: "检查发现问题".into(),
            expires_at: Some(until),
            actor: "inspector-7".into(),
            at: jiff::Timestamp::now(),
        };
        let after: jiff::civil::Date = "2026-08-01".parse().unwrap();
        for override_ in [None, Some(&o)] {
            for p in demo_projections(as_of, override_).iter().take(20) {
                let json = serde_json::to_string(p).unwrap();
                let view = MerchantView::from_json(json.clone(), Default::default()).unwrap();
                for today in [as_of, until, after] {
                    assert_eq!(view.live_grade(today), p.effective(today).0);
                }
                assert_eq!(
                    view.public_json(),
                    override_.is_none().then_some(json.as_str())
                );
                assert_eq!(view.projection().unwrap(), p);
                let parsed = MerchantView::new(p.clone(), Default::default());
                assert_eq!(parsed.live_grade(after), view.live_grade(after));
                assert_eq!(parsed.public_json(), None, "no stored JSON to splice");
            }
        }
        // Not JSON: refused at once. A well-formed head over a broken body:
        // refused when the body is needed, as a store error, not a panic.
        assert!(MerchantView::from_json("{".into(), Default::default()).is_err());
        let head_only = r#"{"computed_grade":"green","override":null}"#;
        let view = MerchantView::from_json(head_only.into(), Default::default()).unwrap();
        assert!(view.projection().is_err());
    }
}
