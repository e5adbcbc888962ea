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
//! The request middleware that feeds [`request`] lives in the web layer
//! (`web::request_metrics`); this module knows no HTTP but method names.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

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

/// A bounded method label.
pub fn method_label(m: &Method) -> &'static str {
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

/// Counts and times one answered request under its route pattern.
pub fn request(route: Cow<'static, str>, method: &'static str, status: u16, elapsed: Duration) {
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
