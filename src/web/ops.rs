//! Operator endpoints: liveness and readiness.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Longest a readiness check waits for the store: a hung store makes the
/// service unready, not the probe hang.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Ready when a key is loaded to verify codes and the replica can answer
/// scans: the store answers, or it does not but merchants are cached (a
/// warm replica whose store is down still answers their scans, and answers
/// the others 503 at once; deploy/README.md says why it stays in the load
/// balancer). While Redis is known to be down the store refuses at once, so
/// this never waits for a hung Redis more than once.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = matches!(
        tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let keys = !state.scanner.keys().infos.is_empty();
    let warm = state.scanner.has_cached_views().await;
    let mut body = json!({
        "store": if store { "ok" } else { "unreachable" },
        "keys": if keys { "ok" } else { "missing" },
        "cache": if warm { "warm" } else { "cold" },
    });
    if keys && (store || warm) {
        HttpResponse::Ok().json(body)
    } else {
        // The report is also the error envelope.
        body["error"] = json!("unavailable");
        body["message"] = json!(if store {
            "no signing key loaded: run `yisaozhi keys generate`"
        } else {
            "the data store is not reachable"
        });
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(Some(at)) = state.store.last_refresh().await {
        ::metrics::gauge!("ysz_last_refresh_timestamp_seconds").set(at.as_second() as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::handle().render())
}
