//! The route table: every route declared once, in `api!`, so the router,
//! `/openapi.json` and the `Allow` header of a 405 cannot disagree.

use actix_web::{web, HttpResponse};

use super::scan::{SCAN_JSON, SCAN_PAGE, SCAN_PAGE_UPPER};
use super::workbench::{
    access, act, audit, dashboard, import, ledger as staff_ledger, login, merchant, patrols,
    plans as staff_plans, reviews, search, tips as staff_tips,
};
use super::{
    admin, changes, grid, ledger, open_data, openapi, ops, pages, plans, public, scan, shop,
    shop_admin, shop_pages, tips, verify,
};

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
    get "/verify" => verify::page, "consumer", "Offline verifier: checks a code with kept keys and status list, no network needed once opened", [];
    get "/verify/app.js" => verify::app_js, "consumer", "The offline verifier's script", [];
    get "/verify/style.css" => verify::style_css, "consumer", "The offline verifier's style sheet", [];
    get "/verify/sw.js" => verify::service_worker, "consumer", "The offline verifier's service worker", [];
    get "/api/v1/keys" => public::keys, "public", "Published verification keys", [];
    get "/api/v1/status-list" => public::status_list, "public", "Signed list of revoked and superseded code serials (codes/SPEC.md §8)", [];
    get "/api/v1/changes" => changes::changes, "public", "Every public change in one order, after a cursor (paged by `next`)", ["since", "limit"];
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
    post "/api/v1/admin/tips" => tips::publish, "regulator", "Publish a consumer tip (body: text, regions, categories, from, until; an empty list covers every region or category)", [];
    get "/api/v1/admin/tips" => tips::list, "regulator", "Every consumer tip, the latest first", [];
    delete "/api/v1/admin/tips/{id}" => tips::delete, "regulator", "Delete a consumer tip", [];
    get "/api/v1/admin/audit" => admin::audit, "regulator", "The audit log", ["target", "actor", "since", "limit"];
    post "/api/v1/admin/merchants/{id}/access" => shop_admin::issue_access, "regulator", "Issue a shop's one-time activation code (replaces an unused one)", [];
    delete "/api/v1/admin/merchants/{id}/access" => shop_admin::revoke_access, "regulator", "Revoke a shop's access: its sessions and tokens end", [];
    get "/api/v1/admin/reviews" => shop_admin::list_reviews, "regulator", "Shops' submissions for review, oldest first", ["kind", "status", "after", "limit"];
    post "/api/v1/admin/reviews/{review}" => shop_admin::decide_review, "regulator", "Accept or reject a submission, once (body: decision, reason)", [];
    get "/shop" => shop_pages::page, "shop", "The shop's own page (HTML)", ["done"];
    get "/shop/login" => shop_pages::login_form, "shop", "Shop sign-in page", [];
    post "/shop/login" => shop_pages::login, "shop", "Sign in with the activation code (form: merchant_id, activation_code)", [];
    post "/shop/logout" => shop_pages::logout, "shop", "Sign out (form: csrf)", [];
    post "/shop/self-reports" => shop_pages::post_self_report, "shop", "Self-report form (csrf)", [];
    post "/shop/replies" => shop_pages::post_reply, "shop", "Reply form (csrf)", [];
    post "/shop/repairs" => shop_pages::post_repair, "shop", "Credit repair form (csrf)", [];
    post "/shop/commitment" => shop_pages::post_commitment, "shop", "Commitment form (csrf)", [];
    post "/api/v1/shop/token" => shop::token, "shop", "An API token for a shop (merchant_id, activation_code)", [];
    get "/api/v1/shop/me" => shop::me, "shop", "The shop's own projection, code and submissions", [];
    post "/api/v1/shop/self-reports" => shop::self_report, "shop", "File a self-report for review", [];
    post "/api/v1/shop/replies" => shop::reply, "shop", "Reply to a reason or a record (300 characters)", [];
    post "/api/v1/shop/repairs" => shop::repair, "shop", "Apply for credit repair of a penalty or an abnormal-list entry", [];
    get "/api/v1/shop/commitment" => shop::commitment_text, "shop", "The quality commitment text", [];
    post "/api/v1/shop/commitment" => shop::sign_commitment, "shop", "Sign the quality commitment (body: accept: true)", [];
    get "/admin/login" => login::page, "workbench", "Workbench: the login form (a regulator token)", [];
    post "/admin/login" => login::submit, "workbench", "Workbench: log in (form field `token`); 303 to /admin with the session cookie", [];
    post "/admin/logout" => login::logout, "workbench", "Workbench: log out (form field `csrf`)", [];
    get "/admin" => dashboard::page_handler, "workbench", "Workbench: dashboard of the staff member's regions", [];
    get "/admin/merchants" => search::page_handler, "workbench", "Workbench: search merchants", ["q", "grade", "region", "category", "kind", "page"];
    get "/admin/merchants.csv" => staff_ledger::csv, "workbench", "Workbench: the ledger (台账) of the search filters as CSV (UTF-8 with BOM)", ["q", "grade", "region", "category", "kind"];
    get "/admin/merchants/{id}" => merchant::page_handler, "workbench", "Workbench: a merchant's page", [];
    post "/admin/merchants/{id}/override" => act::set_override, "workbench", "Workbench: reclassify (form: grade, reason, expires_at?, csrf)", [];
    post "/admin/merchants/{id}/override/clear" => act::clear_override, "workbench", "Workbench: clear the override (form: csrf)", [];
    post "/admin/merchants/{id}/access" => access::issue, "workbench", "Workbench: issue a shop's one-time activation code, shown once on a letter (form: csrf)", [];
    post "/admin/merchants/{id}/access/revoke" => access::revoke, "workbench", "Workbench: revoke a shop's access (form: csrf)", [];
    post "/admin/merchants/{id}/codes" => act::issue_code, "workbench", "Workbench: issue a new code (form: csrf)", [];
    post "/admin/codes/{serial}/revoke" => act::revoke_code, "workbench", "Workbench: revoke a code (form: confirm, csrf)", [];
    get "/admin/audit" => audit::page_handler, "workbench", "Workbench: the audit log", ["target", "actor", "since", "limit"];
    get "/admin/import" => import::page_handler, "workbench", "Workbench: upload a records or merchants file", [];
    post "/admin/import" => import::submit, "workbench", "Workbench: import an uploaded file (multipart: kind, file, csrf)", [];
    get "/admin/reviews" => reviews::page_handler, "workbench", "Workbench: the shops' pending submissions in the staff's regions", ["kind", "after"];
    post "/admin/reviews/{review}" => reviews::decide, "workbench", "Workbench: accept or reject a submission (form: decision, reason, csrf)", [];
    get "/admin/patrols" => patrols::page_handler, "workbench", "Workbench: an assistant's due and overdue patrols (a phone page)", ["assistant", "within"];
    post "/admin/patrols/{id}" => patrols::record, "workbench", "Workbench: record a patrol (form: assistant, result, hazards, deadline, note, csrf)", [];
    get "/admin/plans" => staff_plans::page_handler, "workbench", "Workbench: the random inspection plans and a form to draw one", [];
    post "/admin/plans" => staff_plans::draw, "workbench", "Workbench: draw and publish a plan (form: name, seed, size, region, weights, inspectors_per_check, as_of, csrf)", [];
    get "/admin/tips" => staff_tips::page_handler, "workbench", "Workbench: consumer tips in the staff member's regions, the publish form", [];
    post "/admin/tips" => staff_tips::publish, "workbench", "Workbench: publish a consumer tip (form: text, regions, categories, from, until, csrf)", [];
    post "/admin/tips/{id}/withdraw" => staff_tips::withdraw, "workbench", "Workbench: withdraw a consumer tip (form: csrf)", [];
    post "/api/v1/admin/inspectors" => grid::import_inspectors, "regulator", "Import inspectors and assistants (JSONL body)", [];
    get "/api/v1/admin/inspectors" => grid::list_inspectors, "regulator", "The roster of inspectors and assistants", [];
    get "/api/v1/admin/grid" => grid::grid, "regulator", "An assistant's merchants, or the unassigned ones", ["assistant", "page"];
    post "/api/v1/admin/patrols" => grid::create_patrol, "regulator", "Record a patrol at a shop's door: an inspection record with source patrol, graded at once (body: merchant_id, result, hazards?, deadline?, note?)", [];
    get "/api/v1/admin/patrols" => grid::patrols, "regulator", "An assistant's merchants due for a patrol", ["assistant", "as_of", "within"];
    post "/api/v1/admin/plans" => plans::create_plan, "regulator", "Draw and publish a random inspection plan", [];
    get "/api/v1/admin/plans" => plans::list_plans, "regulator", "Random inspection plans, newest first", [];
    get "/api/v1/admin/plans/{name}" => plans::admin_plan, "regulator", "A plan with its teams by name and its results", [];
    get "/api/v1/plans/{name}" => plans::public_plan, "public", "A published plan: seed, weights, merchants, teams by unit, results", [];
    get "/plans/{name}" => plans::public_plan_page, "public", "A published plan as a page", [];
    get "/open-data/index.json" => open_data::index, "public", "Open data: the files, each with sha256, bytes and rows (ETag, If-None-Match)", [];
    get "/open-data/{file}" => open_data::file, "public", "Open data file: merchants.jsonl.gz, merchants.csv or sampling.csv (ETag, If-None-Match)", [];
    get "/healthz" => ops::healthz, "operator", "Liveness", [];
    get "/readyz" => ops::readyz, "operator", "Readiness: keys loaded, and the store reachable or merchants cached", [];
    get "/metrics" => ops::metrics, "operator", "Prometheus metrics", [];
    get "/openapi.json" => openapi_document, "operator", "This OpenAPI description", [];
}

/// `/openapi.json`: the document of this very table.
async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().json(openapi::build(ROUTES))
}
