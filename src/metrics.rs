//! Prometheus metrics. Names and labels are fixed here; label values are
//! bounded (route patterns, never raw paths; status codes; cache names;
//! standard methods, anything else counted as `other`).
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
//!
//! The scan path runs at ~100k requests/s on two cores, so nothing here
//! builds a metric key per request: handles are looked up once per worker
//! thread and label set, then only incremented.
//!
//! The request middleware ([`track`]) also gives every request an id and
//! logs it: a line per request at DEBUG, and at INFO or above only requests
//! that failed on the server side (5xx) or were slow — formatting a log line
//! per successful scan would cost more than the scan itself.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Requests slower than this are logged at INFO even when they succeed.
pub const SLOW_REQUEST: Duration = Duration::from_millis(250);

/// How often recorded histogram samples are folded into their buckets. The
/// exporter keeps raw samples until then: without upkeep, a service nobody
/// scrapes would grow by 8 bytes per request.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

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
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        handle
    })
}

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

/// A bounded method label.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Handles of one (route, method, status) label set.
struct RouteHandles {
    requests: Counter,
    duration: Histogram,
}

/// (route pattern, method, status).
type RouteKey = (Cow<'static, str>, &'static str, u16);

thread_local! {
    /// Per worker thread: no lock, no key building once a label set was seen.
    /// Bounded by routes × methods × statuses the service answers with.
    static ROUTES: RefCell<HashMap<RouteKey, RouteHandles>> =
        RefCell::new(HashMap::new());
}

/// Middleware: request id, count and time every request by its route
/// pattern, log failed and slow requests.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = RequestId::next();
    let method = method_label(req.method());
    // A scan's route is known from its path (and scans may be answered
    // before the router, see `web::serve_scans_first`).
    let scan_route = crate::web::scan_pattern(req.path());
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
    ROUTES.with(|routes| {
        let mut routes = routes.borrow_mut();
        let handles = routes.entry((route, method, status)).or_insert_with_key(|(route, method, status)| {
            handle();
            RouteHandles {
                requests: metrics::counter!("ysz_http_requests_total", "route" => route.clone(), "method" => *method, "status" => status.to_string()),
                duration: metrics::histogram!("ysz_http_request_duration_seconds", "route" => route.clone(), "method" => *method),
            }
        });
        handles.requests.increment(1);
        handles.duration.record(elapsed.as_secs_f64());
    });
    Ok(res)
}

thread_local! {
    /// Counters with static labels, by (metric, first label value, second
    /// label value): a handful of entries.
    #[allow(clippy::type_complexity)]
    static STATIC: RefCell<Vec<(&'static str, &'static str, &'static str, Counter)>> =
        const { RefCell::new(Vec::new()) };
}

/// Increments the counter of a static label set, built once per thread.
fn increment_static(
    name: &'static str,
    a: &'static str,
    b: &'static str,
    build: impl FnOnce() -> Counter,
) {
    STATIC.with(|s| {
        let mut s = s.borrow_mut();
        // By address: the labels are string literals of a few call sites
        // (two copies of one literal at worst make a second handle to the
        // same counter), and comparing addresses is three instructions.
        let same = |p: &str, q: &str| std::ptr::eq(p, q);
        match s
            .iter()
            .find(|(n, x, y, _)| same(n, name) && same(x, a) && same(y, b))
        {
            Some((.., c)) => c.increment(1),
            None => {
                handle();
                let c = build();
                c.increment(1);
                s.push((name, a, b, c));
            }
        }
    })
}

pub fn cache(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    increment_static(
        "ysz_cache_requests_total",
        cache,
        result,
        || metrics::counter!("ysz_cache_requests_total", "cache" => cache, "result" => result),
    );
}

pub fn store_read(started: Instant, ok: bool) {
    thread_local! {
        /// Looked up once per thread, not per read.
        static READS: Histogram = {
            handle();
            metrics::histogram!("ysz_store_read_duration_seconds")
        };
    }
    READS.with(|h| h.record(started.elapsed().as_secs_f64()));
    if !ok {
        metrics::counter!("ysz_store_errors_total").increment(1);
    }
}

pub fn scan(status: &'static str) {
    increment_static(
        "ysz_scans_total",
        status,
        "",
        || metrics::counter!("ysz_scans_total", "status" => status),
    );
}
