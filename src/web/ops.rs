//! Operator endpoints: liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The store answers and a key is loaded to verify codes.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.scanner.store().ping().await;
    let keys = !state.scanner.keys().infos.is_empty();
    let body = json!({
        "store": if store.is_ok() { "ok" } else { "unreachable" },
        "keys": if keys { "ok" } else { "missing" },
    });
    if store.is_ok() && keys {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(Some(at)) = state.scanner.store().last_refresh().await {
        ::metrics::gauge!("ysz_last_refresh_timestamp_seconds").set(at.as_second() as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::handle().render())
}
