//! Consumer scans: `/s/{token}`, `/S/{token}` (page, or JSON by `Accept`) and
//! `/api/v1/scan/{token}` (JSON).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{pages, public_projection, ApiError, AppState};
use crate::clock;
use crate::scan::{Scan, Status};

fn http_status(status: Status) -> StatusCode {
    match status {
        Status::Valid => StatusCode::OK,
        Status::Forged | Status::Malformed => StatusCode::BAD_REQUEST,
        Status::Revoked | Status::Superseded | Status::Expired => StatusCode::GONE,
    }
}

/// The scan answer as JSON (CONTRACT §2).
pub fn scan_json(scan: &Scan) -> serde_json::Value {
    let mut code = json!({"status": scan.status.name()});
    if let (Some(c), true) = (
        &scan.claims,
        !matches!(scan.status, Status::Forged | Status::Malformed),
    ) {
        code = json!({
            "status": scan.status.name(),
            "merchant_id": c.merchant,
            "serial": c.serial,
            "kid": c.kid.0,
            "issued_at": clock::from_day(c.issued),
            "expires_at": clock::from_day(c.expires),
            "printed_grade": c.grade,
        });
    }
    let mut body = json!({"code": code});
    if let Some(view) = &scan.view {
        let mut public = public_projection(&view.projection, scan.today);
        let live = public["grade"].clone();
        let printed = scan.claims.as_ref().map(|c| json!(c.grade));
        public["outdated"] = json!(printed.is_some_and(|p| p != live));
        if let (Some(obj), Some(extra)) = (body.as_object_mut(), public.as_object()) {
            obj.extend(extra.clone());
        }
    }
    if scan.status != Status::Valid {
        body["error"] = json!(scan.status.name());
        body["message"] = json!(pages::status_message(scan.status));
    }
    body
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

pub async fn json(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scan = state.scanner.scan(&token).await?;
    crate::metrics::scan(scan.status.name());
    Ok(HttpResponse::build(http_status(scan.status))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(scan_json(&scan)))
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if wants_json(&req) {
        return json(state, token).await;
    }
    let scan = match state.scanner.scan(&token).await {
        Ok(s) => s,
        Err(e) => {
            let err = ApiError::from(e);
            return Ok(
                HttpResponse::build(actix_web::ResponseError::status_code(&err))
                    .content_type("text/html; charset=utf-8")
                    .body(pages::unavailable().into_string()),
            );
        }
    };
    crate::metrics::scan(scan.status.name());
    Ok(HttpResponse::build(http_status(scan.status))
        .content_type("text/html; charset=utf-8")
        // The grade may change at any refresh or override: revalidate.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(pages::scan_page(&scan).into_string()))
}
