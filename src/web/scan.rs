//! Consumer scans: `/s/{token}`, `/S/{token}` (page, or JSON by `Accept`) and
//! `/api/v1/scan/{token}` (JSON).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{pages, public_projection, ApiError, AppState};
use crate::clock;
use crate::scan::{RenderKey, Scan, Status};

fn http_status(status: Status) -> StatusCode {
    match status {
        Status::Valid => StatusCode::OK,
        Status::Forged | Status::Malformed => StatusCode::BAD_REQUEST,
        Status::Revoked | Status::Superseded | Status::Expired => StatusCode::GONE,
    }
}

/// The scan answer as JSON (CONTRACT §2). For a code whose merchant is
/// shown, the whole body is rendered once per view, day, status and code,
/// and served from the view afterwards.
pub fn scan_json(scan: &Scan) -> bytes::Bytes {
    match (&scan.view, &scan.claims) {
        (Some(view), Some(c)) => {
            let key = RenderKey::Json(scan.status, c.serial, c.grade);
            view.rendered(scan.today, key, || render_json(scan))
        }
        _ => render_json(scan).into(),
    }
}

fn render_json(scan: &Scan) -> String {
    let code = match (&scan.claims, scan.status) {
        (Some(c), status) if !matches!(status, Status::Forged | Status::Malformed) => json!({
            "status": status.name(),
            "merchant_id": c.merchant,
            "serial": c.serial,
            "kid": c.kid.0,
            "issued_at": clock::from_day(c.issued),
            "expires_at": clock::from_day(c.expires),
            "printed_grade": c.grade,
        }),
        _ => json!({"status": scan.status.name()}),
    };
    let mut out = String::with_capacity(4096);
    out.push_str("{\"code\":");
    out.push_str(&code.to_string());
    if scan.status != Status::Valid {
        out.push_str(",\"error\":");
        out.push_str(&json!(scan.status.name()).to_string());
        out.push_str(",\"message\":");
        out.push_str(&json!(pages::status_message(scan.status)).to_string());
    }
    if let Some(view) = &scan.view {
        let live = view.projection.effective(scan.today).0;
        let outdated = scan.claims.as_ref().is_some_and(|c| c.grade != live);
        out.push_str(if outdated {
            ",\"outdated\":true,"
        } else {
            ",\"outdated\":false,"
        });
        let public = public_projection(&view.projection, scan.today).to_string();
        // `public` is a JSON object: splice its members into this one.
        out.push_str(&public[1..public.len() - 1]);
    }
    out.push('}');
    out
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
        .content_type("application/json")
        .body(scan_json(&scan)))
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
        .body(page_html(&scan)))
}

/// The scan page, rendered once per view, day, status and printed grade.
fn page_html(scan: &Scan) -> bytes::Bytes {
    match &scan.view {
        Some(view) => {
            let key = RenderKey::Page(scan.status, scan.claims.as_ref().map(|c| c.grade));
            view.rendered(scan.today, key, || pages::scan_page(scan).into_string())
        }
        None => pages::scan_page(scan).into_string().into(),
    }
}
