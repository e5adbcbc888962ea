//! The route table: every route declared once, in `api!`, so the router,
//! `/openapi.json` and the `Allow` header of a 405 cannot disagree.

use actix_web::{web, HttpResponse};

use super::scan::{SCAN_JSON, SCAN_PAGE, SCAN_PAGE_UPPER};
use super::{admin, ledger, openapi, ops, pages, public, scan};

/// The largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

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
    get "/api/v1/admin/merchants.csv" => ledger::merchants_csv, "regulator", "The ledger (台账): the merchants a search matches, as CSV (UTF-8 with BOM), within the token's regions", ["q", "grade", "region", "category", "kind"];
    post "/api/v1/admin/merchants" => admin::register, "regulator", "Register merchants (JSONL body); new ones get a code", [];
    post "/api/v1/admin/records" => admin::import_records, "regulator", "Import records (JSONL body), graded at once", [];
    get "/api/v1/admin/stats" => admin::stats, "regulator", "Counts by grade, region and category", ["region"];
    get "/api/v1/admin/reprint" => admin::reprint, "regulator", "Merchants whose printed code shows an outdated grade", [];
    get "/api/v1/admin/audit" => admin::audit, "regulator", "The audit log", ["target", "actor", "since", "limit"];
    get "/healthz" => ops::healthz, "operator", "Liveness", [];
    get "/readyz" => ops::readyz, "operator", "Readiness: keys loaded, and the store reachable or merchants cached", [];
    get "/metrics" => ops::metrics, "operator", "Prometheus metrics", [];
    get "/openapi.json" => openapi_document, "operator", "This OpenAPI description", [];
}

/// `/openapi.json`: the document of this very table.
async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().json(openapi::build(ROUTES))
}
