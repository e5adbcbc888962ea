//! The request middleware, outermost around everything: gives every request
//! an id, counts and times it by its route pattern (never its path: see
//! `metrics`), and logs it: a line per request at DEBUG, and at INFO or
//! above only requests that failed on the server side (5xx) or were slow —
//! formatting a log line per successful scan would cost more than the scan
//! itself.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;

use super::scan::scan_pattern;
use crate::metrics;

/// Requests slower than this are logged at INFO even when they succeed.
pub const SLOW_REQUEST: Duration = Duration::from_millis(250);

/// A request id: a random per-process prefix and a counter, so ids from
/// several replicas do not collide. Formatted only when a line is logged.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(u64);

impl RequestId {
    /// Per thread, so worker threads do not contend for one counter: the
    /// thread's number in the top 16 bits, its own count below.
    fn next() -> Self {
        static THREADS: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static NEXT: std::cell::Cell<u64> =
                std::cell::Cell::new(THREADS.fetch_add(1, Ordering::Relaxed) << 48 | 1);
        }
        RequestId(NEXT.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        }))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        static PREFIX: OnceLock<u32> = OnceLock::new();
        let prefix = PREFIX.get_or_init(|| {
            let mut b = [0u8; 4];
            let _ = getrandom::fill(&mut b);
            u32::from_le_bytes(b)
        });
        write!(f, "{prefix:08x}-{:x}", self.0)
    }
}

/// Middleware: request id, count and time every request by its route
/// pattern, log failed and slow requests.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = RequestId::next();
    let method = metrics::method_label(req.method());
    // A scan's route is known from its path (and scans may be answered
    // before the router, see `scan::serve_scans_first`).
    let scan_route = scan_pattern(req.path());
    // DEBUG: at the default INFO level the span is disabled and costs a
    // branch; with YSZ_LOG=debug every line of the request carries its id.
    let span = tracing::debug_span!("request", request_id = %id, method);
    let res = next.call(req).instrument(span).await;
    let elapsed = start.elapsed();
    let res = match res {
        Ok(res) => res,
        Err(e) => {
            tracing::warn!(request_id = %id, method, error = %e, "request failed");
            return Err(e);
        }
    };
    let status = res.status().as_u16();
    // After routing, actix knows the matched resource: this does not
    // re-match the path against every route (which it does before routing).
    let route: Cow<'static, str> = match scan_route {
        Some(pattern) => Cow::Borrowed(pattern),
        None => res
            .request()
            .match_pattern()
            .map_or(Cow::Borrowed("unmatched"), Cow::Owned),
    };
    if status >= 500 {
        let error = res.response().error().map(|e| e.to_string());
        tracing::warn!(request_id = %id, method, route = &*route, status, ms = elapsed.as_secs_f64() * 1e3, error, "request failed");
    } else if elapsed >= SLOW_REQUEST {
        tracing::info!(request_id = %id, method, route = &*route, status, ms = elapsed.as_secs_f64() * 1e3, "slow request");
    } else {
        tracing::debug!(request_id = %id, method, route = &*route, status, us = elapsed.as_micros() as u64, "request");
    }
    metrics::request(route, method, status, elapsed);
    Ok(res)
}
