//! HTTP: one function lists every route; handlers are short and work on
//! parsed domain types; every JSON error is `{"error": CODE, "message": TEXT}`.

mod admin;
mod ops;
mod pages;
mod public;
mod scan;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use crate::grading::{Projection, Rules};
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
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, put};
    cfg.route("/", get().to(pages::home))
        .route("/healthz", get().to(ops::healthz))
        .route("/readyz", get().to(ops::readyz))
        // consumers
        .route("/s/{token}", get().to(scan::page))
        .route("/S/{token}", get().to(scan::page))
        .route("/api/v1/scan/{token}", get().to(scan::json))
        // public
        .route("/api/v1/keys", get().to(public::keys))
        .route("/api/v1/merchants/{id}", get().to(public::merchant))
        .route("/api/v1/merchants/{id}/code", get().to(public::code))
        .route("/api/v1/merchants/{id}/code.svg", get().to(public::code_svg))
        .route("/api/v1/merchants/{id}/code.png", get().to(public::code_png))
        .route("/merchants/{id}/print", get().to(public::print))
        // regulators
        .route(
            "/api/v1/admin/merchants/{id}/override",
            put().to(admin::set_override),
        )
        .route(
            "/api/v1/admin/merchants/{id}/override",
            delete().to(admin::clear_override),
        )
        .route(
            "/api/v1/admin/merchants/{id}/codes",
            post().to(admin::issue_code),
        )
        .route(
            "/api/v1/admin/codes/{serial}/revoke",
            post().to(admin::revoke_code),
        )
        .route("/api/v1/admin/audit", get().to(admin::audit))
        .route("/api/v1/admin/merchants", get().to(admin::search))
        .route("/api/v1/admin/merchants", post().to(admin::register))
        .route("/api/v1/admin/records", post().to(admin::import_records))
        .route("/api/v1/admin/stats", get().to(admin::stats))
        .route("/api/v1/admin/reprint", get().to(admin::reprint));
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
        res.json(json!({"error": self.code(), "message": self.to_string()}))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<Arc<crate::store::StoreError>> for ApiError {
    fn from(e: Arc<crate::store::StoreError>) -> Self {
        match &*e {
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
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
fn public_projection(p: &Projection, today: jiff::civil::Date) -> serde_json::Value {
    let (grade, active) = p.effective(today);
    let reasons: Vec<_> = p
        .reasons
        .iter()
        .filter(|r| active.is_some() || r.rule != "override")
        .collect();
    let override_json = active.map(|o| {
        json!({"grade": o.grade, "reason": o.reason, "expires_at": o.expires_at, "at": o.at})
    });
    json!({
        "merchant": p.merchant,
        "grade": grade,
        "computed_grade": p.computed_grade,
        "override": override_json,
        "reasons": reasons,
        "records": p.records,
        "as_of": p.as_of,
        "updated_at": p.updated_at,
        "next_change_at": p.next_change_at,
    })
}
