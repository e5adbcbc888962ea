//! Regulator endpoints of the JSON API: authenticated with a bearer token,
//! scoped by region, every change audited in the same write as the change
//! itself. What each action does is in `actions` (shared with the
//! workbench); this file reads JSON and answers JSON.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::actions::{self, bad, json_body, read_body, MAX_IMPORT_BYTES};
use super::answers::{code_url, public_projection, CodeAnswer, ImportAnswer, RegisteredCode};
use super::error::ApiError;
use super::extract::{MerchantPath, Regulator};
use super::filters::{
    query, region_filter, region_within, AuditQuery, SearchQuery, MAX_AUDIT_LIMIT,
};
use super::state::AppState;
use super::workbench::audit::visible_entries;
use crate::auth::Principal;
use crate::clock;
use crate::model::{MerchantId, Override};
use crate::store::{Store, StoreResult};

/// Largest JSON body of an override.
const MAX_OVERRIDE_BYTES: usize = 64 * 1024;

/// Loads a merchant the authenticated caller may change: the path's id is
/// judged only after authentication, so a stranger learns nothing of it.
pub(super) async fn writable_merchant(
    state: &AppState,
    who: &Principal,
    id: Result<MerchantPath, ApiError>,
) -> Result<crate::model::Merchant, ApiError> {
    let id = id?;
    actions::writable_merchant(state, who, &id).await
}

#[derive(Debug, Deserialize)]
struct OverrideBody {
    grade: String,
    reason: String,
    expires_at: Option<String>,
}

fn parse_override(
    body: &[u8],
    actor: &str,
    today: jiff::civil::Date,
) -> Result<Override, ApiError> {
    let shape = r#"{"grade", "reason", "expires_at"?}"#;
    let body: OverrideBody = serde_json::from_value(json_body(body, shape)?)
        .map_err(|e| bad(format!("body: expected {shape}: {e}")))?;
    actions::new_override(
        &body.grade,
        &body.reason,
        body.expires_at.as_deref(),
        actor,
        today,
    )
}

/// The merchant's public projection after an override changed, as JSON.
async fn override_answer(
    state: &AppState,
    who: &Principal,
    merchant: &crate::model::Merchant,
    value: Option<Override>,
) -> Result<HttpResponse, ApiError> {
    let projection = actions::apply_override(state, who, merchant, value).await?;
    let body = serde_json::to_vec(&public_projection(&projection, clock::today()))
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

pub async fn set_override(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable_merchant(&state, &who, id).await?;
    let body = read_body(&req, payload, MAX_OVERRIDE_BYTES).await?;
    let value = parse_override(&body, &who.name, clock::today())?;
    override_answer(&state, &who, &merchant, Some(value)).await
}

pub async fn clear_override(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable_merchant(&state, &who, id).await?;
    override_answer(&state, &who, &merchant, None).await
}

pub async fn issue_code(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable_merchant(&state, &who, id).await?;
    let code = actions::issue_code(&state, &who, &merchant).await?;
    Ok(HttpResponse::Created().json(CodeAnswer::new(&code, &state.base_url)?))
}

pub async fn revoke_code(
    state: web::Data<AppState>,
    who: Regulator,
    serial: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let serial: u32 = serial.parse().map_err(|_| {
        ApiError::NotFound(format!("no code `{}`", crate::model::truncate(&serial)))
    })?;
    let code = actions::revoke_code(&state, &who, serial).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"serial": serial, "merchant_id": code.merchant, "status": "revoked"})))
}

/// Keeps the items about merchants `who` sees: all of them for a token of
/// every region; else each merchant's region is read once (lists of
/// submissions, grids and patrols).
pub(super) async fn retain_visible<T>(
    store: &dyn Store,
    who: &Principal,
    items: Vec<T>,
    merchant_of: impl Fn(&T) -> &str,
) -> StoreResult<Vec<T>> {
    if who.scope.visible_prefix().is_empty() {
        return Ok(items);
    }
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let id = merchant_of(&item);
        let visible = match known.get(id) {
            Some(v) => *v,
            None => {
                let v = match MerchantId::parse(id) {
                    Ok(m) => store
                        .merchant(&m)
                        .await?
                        .is_some_and(|m| who.scope.may_see(&m.region)),
                    Err(_) => false,
                };
                known.insert(id.to_owned(), v);
                v
            }
        };
        if visible {
            out.push(item);
        }
    }
    Ok(out)
}

/// The region a search or stats of `who` looks in: the one asked for
/// narrowed to the token's regions (`None`: every region); 403 when the
/// asked region lies outside them.
fn scoped_region(who: &Principal, asked: Option<String>) -> Result<Option<String>, ApiError> {
    let visible = who.scope.visible_prefix();
    match region_within(asked.as_deref(), visible) {
        Some(r) if r.is_empty() => Ok(None),
        Some(r) => Ok(Some(r)),
        None => Err(ApiError::Forbidden(format!(
            "token `{}` (scope {}) sees only regions starting with {visible}; region `{}` is outside them",
            who.name,
            who.scope.as_string(),
            asked.unwrap_or_default()
        ))),
    }
}

/// The audit log; a token limited to a region reads the entries about
/// merchants of its region and its own.
pub async fn audit(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut filter = query::<AuditQuery>(&req)?.parse(100)?;
    let limit = filter.limit;
    if !who.scope.visible_prefix().is_empty() {
        // Read more than answered: entries of other regions are left out.
        filter.limit = (limit * 5).min(MAX_AUDIT_LIMIT as usize);
    }
    let entries = state.store.audit(filter).await?;
    let mut entries = visible_entries(state.store.as_ref(), &who, entries).await?;
    entries.truncate(limit);
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

/// Search, within the token's regions.
pub async fn search(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut query = query::<SearchQuery>(&req)?.parse(20)?;
    query.region = scoped_region(&who, query.region.take())?;
    let page = state.store.search(&query).await?;
    let today = clock::today();
    let items: Vec<_> = page
        .items
        .iter()
        .map(|p| {
            json!({
                "id": p.merchant.id, "name": p.merchant.name, "kind": p.merchant.kind,
                "uscc": p.merchant.uscc, "address": p.merchant.address,
                "region": p.merchant.region, "categories": p.merchant.categories,
                "grade": p.effective(today).0, "computed_grade": p.computed_grade,
                "next_change_at": p.next_change_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "total": page.total, "page": page.page, "per_page": page.per_page, "items": items,
    })))
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    region: Option<String>,
}

/// Counts, within the token's regions.
pub async fn stats(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: StatsQuery = query(&req)?;
    let region = scoped_region(&who, region_filter(q.region)?)?;
    let stats = state.store.stats(region.as_deref()).await?;
    Ok(HttpResponse::Ok().json(stats))
}

/// The reprint list, within the token's regions.
pub async fn reprint(state: web::Data<AppState>, who: Regulator) -> Result<HttpResponse, ApiError> {
    let mut items = state.store.reprint().await?;
    let visible = who.scope.visible_prefix();
    items.retain(|r| r.region.starts_with(visible));
    Ok(HttpResponse::Ok().json(json!({"total": items.len(), "items": items})))
}

/// Registers merchants (JSONL body, the merchants file format); new ones are
/// graded and get a code at once, so an itinerant vendor leaves with a code.
pub async fn register(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_IMPORT_BYTES).await?;
    let done = actions::register_merchants(&state, &who, &body, "request body").await?;
    let codes = done
        .codes
        .iter()
        .map(|code| {
            Ok(RegisteredCode {
                merchant_id: &code.merchant,
                printed_grade: code.printed_grade,
                serial: code.serial,
                url: code_url(&state.base_url, code)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut answer = ImportAnswer::new(&done.report, &done.ids);
    answer.codes = Some(codes);
    Ok(import_response(&who, &done.report, &done.ids, answer))
}

/// The answer to an import: 200 if anything was accepted; if nothing was,
/// 403 when a line was outside the caller's scope (the JSON envelope, with
/// the rejects), else 400 when lines were rejected.
fn import_response(
    who: &Principal,
    report: &crate::refresh::ImportReport,
    ids: &[MerchantId],
    mut answer: ImportAnswer<'_>,
) -> HttpResponse {
    if !ids.is_empty() || report.summary.rejected == 0 {
        return HttpResponse::Ok().json(answer);
    }
    if report.out_of_scope == 0 {
        return HttpResponse::BadRequest().json(answer);
    }
    answer.error = Some("forbidden");
    answer.message = Some(format!(
        "nothing imported: {} line(s) concern merchants outside the regions token `{}` (scope {}) may change; see `rejects`",
        report.out_of_scope,
        who.name,
        who.scope.as_string()
    ));
    HttpResponse::Forbidden().json(answer)
}

/// Imports records (JSONL body, the records file format) and regrades the
/// merchants they concern at once.
pub async fn import_records(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_IMPORT_BYTES).await?;
    let (report, ids) = actions::import_records(&state, &who, &body, "request body").await?;
    let answer = ImportAnswer::new(&report, &ids);
    Ok(import_response(&who, &report, &ids, answer))
}
