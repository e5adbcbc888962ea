//! Prometheus metrics. Names and labels are fixed here; label values are
//! bounded (route patterns, never raw paths; status codes; cache names).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `ysz_http_requests_total` | counter | `route`, `method`, `status` |
//! | `ysz_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `ysz_cache_requests_total` | counter | `cache`, `result` (`hit`/`miss`) |
//! | `ysz_store_read_duration_seconds` | histogram | — |
//! | `ysz_store_errors_total` | counter | — |
//! | `ysz_scans_total` | counter | `status` (code status) |
//! | `ysz_last_refresh_timestamp_seconds` | gauge | — (set when `/metrics` is read) |

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The process-wide recorder (one per process, shared by every server).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, e.g. by a test harness.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware: count and time every request by its route pattern.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    metrics::counter!("ysz_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("ysz_http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    Ok(res)
}

pub fn cache(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("ysz_cache_requests_total", "cache" => cache, "result" => result)
        .increment(1);
}

pub fn store_read(started: Instant, ok: bool) {
    metrics::histogram!("ysz_store_read_duration_seconds").record(started.elapsed().as_secs_f64());
    if !ok {
        metrics::counter!("ysz_store_errors_total").increment(1);
    }
}

pub fn scan(status: &'static str) {
    metrics::counter!("ysz_scans_total", "status" => status).increment(1);
}
