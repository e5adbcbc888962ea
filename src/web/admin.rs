//! Regulator endpoints: authenticated with a bearer token, scoped by region,
//! every change audited in the same write as the change itself.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::answers::{code_url, public_projection, CodeAnswer, ImportAnswer, RegisteredCode};
use super::error::ApiError;
use super::extract::{MerchantPath, Regulator};
use super::state::AppState;
use crate::auth::Principal;
use crate::clock;
use crate::grading;
use crate::model::{
    check_text, parse_grade, AuditEntry, CodeStatus, Merchant, MerchantId, Override, TextKind,
};
use crate::records::json_without_repeated_keys;
use crate::store::AuditFilter;

const MAX_REASON_CHARS: usize = 500;

/// Largest JSONL body of an import.
const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;
/// Largest JSON body of an override.
const MAX_OVERRIDE_BYTES: usize = 64 * 1024;

/// Reads a request body of at most `limit` bytes (decoded, if the client
/// compressed it). Called after authentication, so no one unauthenticated
/// makes the service read (or decompress) a body.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = || ApiError::PayloadTooLarge(super::error::body_too_large(limit));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut stream = actix_web::dev::Decompress::from_headers(payload.into_inner(), req.headers());
    let mut body = web::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(format!("request body: cannot read it: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Loads a merchant the authenticated caller may change: the path's id is
/// judged only after authentication, so a stranger learns nothing of it.
async fn writable_merchant(
    state: &AppState,
    who: &Principal,
    id: Result<MerchantPath, ApiError>,
) -> Result<Merchant, ApiError> {
    let id = id?;
    let merchant = state
        .store
        .merchant(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{}`", *id)))?;
    if !who.scope.may_write(&merchant.region) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` (scope {}) may not change merchants in region {}",
            who.name,
            who.scope.as_string(),
            merchant.region
        )));
    }
    Ok(merchant)
}

#[derive(Debug, Deserialize)]
struct OverrideBody {
    grade: String,
    reason: String,
    expires_at: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("bad_request", message)
}

fn parse_override(
    body: &[u8],
    actor: &str,
    today: jiff::civil::Date,
) -> Result<Override, ApiError> {
    let expected = |e: &dyn std::fmt::Display| {
        bad(format!(
            "body: expected {{\"grade\", \"reason\", \"expires_at\"?}}: {e}"
        ))
    };
    // A repeated key is refused, not resolved silently to its last value.
    let body = std::str::from_utf8(body)
        .map_err(|e| expected(&e))
        .and_then(|text| json_without_repeated_keys(text).map_err(|e| expected(&e)))?;
    let body: OverrideBody = serde_json::from_value(body).map_err(|e| expected(&e))?;
    let grade = parse_grade(&body.grade).map_err(|e| bad(e.to_string()))?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(bad(format!(
            "field `reason`: expected 1-{MAX_REASON_CHARS} characters"
        )));
    }
    check_text(reason, MAX_REASON_CHARS, TextKind::Lines)
        .map_err(|e| bad(format!("field `reason`: {e}")))?;
    let expires_at = body
        .expires_at
        .map(|raw| {
            let d: jiff::civil::Date = raw.parse().map_err(|_| {
                bad(format!(
                    "field `expires_at`: expected YYYY-MM-DD, got `{}`",
                    crate::model::truncate(&raw)
                ))
            })?;
            if d < today {
                return Err(bad(format!("field `expires_at`: {d} is in the past")));
            }
            Ok(d)
        })
        .transpose()?;
    Ok(Override {
        grade,
        reason: reason.to_owned(),
        expires_at,
        actor: actor.to_owned(),
        at: clock::now(),
    })
}

/// Re-grades `merchant` with `value` as its override, stores the result with
/// its audit entry, and drops the cached view so the next scan sees it.
async fn apply_override(
    state: &AppState,
    who: &Principal,
    merchant: &Merchant,
    value: Option<Override>,
) -> Result<HttpResponse, ApiError> {
    let store = &state.store;
    let id: &MerchantId = &merchant.id;
    let before = store.override_of(id).await?;
    if value.is_none() && before.is_none() {
        return Err(ApiError::NotFound(format!(
            "merchant `{id}` has no override"
        )));
    }
    let records = store.records(id).await?;
    let today = clock::today();
    let projection = grading::project(
        merchant,
        &records,
        value.as_ref(),
        &state.rules,
        today,
        clock::now(),
    );
    let audit = AuditEntry {
        at: clock::now(),
        actor: who.name.clone(),
        action: if value.is_some() {
            "override.set"
        } else {
            "override.clear"
        }
        .into(),
        target: id.as_str().to_owned(),
        before: json!({"override": before, "grade": store.projection(id).await?.map(|p| p.effective(today).0)}),
        after: json!({"override": value, "grade": projection.grade}),
        reason: value.as_ref().map(|o| o.reason.clone()),
    };
    let body = serde_json::to_vec(&public_projection(&projection, today))
        .map_err(|e| ApiError::Internal(e.into()))?;
    store.set_override(id, value, projection, audit).await?;
    state.scanner.invalidate(id).await;
    tracing::info!(merchant.id = %id, actor = %who.name, "override changed");
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
    apply_override(&state, &who, &merchant, Some(value)).await
}

pub async fn clear_override(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable_merchant(&state, &who, id).await?;
    apply_override(&state, &who, &merchant, None).await
}

pub async fn issue_code(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable_merchant(&state, &who, id).await?;
    let store = &state.store;
    let code = crate::issuing::issue(
        store.as_ref(),
        state.scanner.keys(),
        &merchant.id,
        state.settings.code_validity_days,
        Some(&who.name),
    )
    .await
    .map_err(|e| match e {
        crate::issuing::IssueError::NotGraded(_) => {
            ApiError::BadRequest("not_graded", e.to_string())
        }
        crate::issuing::IssueError::Other(e) => e.into(),
        other => ApiError::Internal(other.into()),
    })?;
    state.scanner.invalidate(&merchant.id).await;
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
    let store = &state.store;
    let code = store
        .code(serial)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no code {serial}")))?;
    let merchant = store.merchant(&code.merchant).await?;
    if !merchant.is_some_and(|m| who.scope.may_write(&m.region)) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` may not revoke codes of merchant `{}`",
            who.name, code.merchant
        )));
    }
    let already = || {
        ApiError::Conflict(format!(
            "code {serial} of merchant `{}` is already revoked; nothing changed",
            code.merchant
        ))
    };
    if code.status == CodeStatus::Revoked {
        return Err(already());
    }
    let audit = AuditEntry {
        at: clock::now(),
        actor: who.name.clone(),
        action: "code.revoke".into(),
        target: code.merchant.as_str().to_owned(),
        before: json!({"serial": serial, "status": code.status}),
        after: json!({"serial": serial, "status": "revoked"}),
        reason: None,
    };
    // Checked again by the store, atomically: of two revocations at once,
    // one is audited and the other answered 409.
    match store.revoke_code(serial, audit).await? {
        None => return Err(ApiError::NotFound(format!("no code {serial}"))),
        Some(before) if before.status == CodeStatus::Revoked => return Err(already()),
        Some(_) => {}
    }
    state.scanner.invalidate(&code.merchant).await;
    Ok(HttpResponse::Ok()
        .json(json!({"serial": serial, "merchant_id": code.merchant, "status": "revoked"})))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    target: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

/// Most audit entries in one answer.
const MAX_AUDIT_LIMIT: u64 = 1000;
/// Most merchants on one page of a search.
const MAX_PER_PAGE: u64 = 500;
/// Highest page number of a search (far past any real result set; it keeps
/// the offset computed from it small).
const MAX_PAGE: u64 = 1_000_000;
/// Longest text filter (`q`, `category`, `target`, `actor`), in characters.
const MAX_FILTER_CHARS: usize = 200;

/// Reads the query string into `T` (whose fields are all optional strings,
/// checked by the handler), answering 400 in the envelope if it does not
/// parse (e.g. a repeated parameter).
fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad(format!("query string: {e}")))
}

/// A whole number parameter in `min..=max`, or 400 naming the bounds.
fn number(
    name: &str,
    raw: Option<String>,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, ApiError> {
    let Some(raw) = non_empty(raw) else {
        return Ok(default);
    };
    raw.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            bad(format!(
                "query parameter `{name}`: expected a whole number from {min} to {max}, got `{}`",
                crate::model::truncate(&raw)
            ))
        })
}

/// A text filter of at most [`MAX_FILTER_CHARS`] characters.
fn text_filter(name: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    let v = non_empty(raw);
    if v.as_ref()
        .is_some_and(|s| s.chars().count() > MAX_FILTER_CHARS)
    {
        return Err(bad(format!(
            "query parameter `{name}`: expected at most {MAX_FILTER_CHARS} characters"
        )));
    }
    Ok(v)
}

/// A region code prefix: 1-6 digits.
fn region_filter(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let region = non_empty(raw);
    if let Some(r) = &region {
        if r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                "query parameter `region`: expected a region code or its prefix (1-6 digits), got `{}`",
                crate::model::truncate(r)
            )));
        }
    }
    Ok(region)
}

pub async fn audit(
    state: web::Data<AppState>,
    _: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: AuditQuery = query(&req)?;
    let since = non_empty(q.since)
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .or_else(|_| {
                    s.parse::<jiff::civil::Date>()
                        .and_then(|d| d.to_zoned(clock::zone()).map(|z| z.timestamp()))
                })
                .map_err(|_| {
                    bad(format!(
                        "query parameter `since`: expected YYYY-MM-DD or an RFC 3339 time, got `{}`",
                        crate::model::truncate(&s)
                    ))
                })
        })
        .transpose()?;
    let limit = number("limit", q.limit, 1, MAX_AUDIT_LIMIT, 100)?;
    let entries = state
        .store
        .audit(AuditFilter {
            target: text_filter("target", q.target)?,
            actor: text_filter("actor", q.actor)?,
            since,
            limit: limit as usize,
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    grade: Option<String>,
    region: Option<String>,
    category: Option<String>,
    kind: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The search filters of a request's query string (`q`, `grade`,
/// `region`, `category`, `kind`, `page`, `per_page`), checked: the search,
/// the ledger and the workbench's pages read them alike.
pub(crate) fn merchant_query(
    req: &HttpRequest,
) -> Result<crate::store::query::MerchantQuery, ApiError> {
    let q: SearchQuery = query(req)?;
    let grade = non_empty(q.grade)
        .map(|g| parse_grade(&g).map_err(|e| bad(e.to_string())))
        .transpose()?;
    let kind = non_empty(q.kind)
        .map(|k| {
            crate::model::MerchantKind::from_name(&k).ok_or_else(|| {
                bad(format!(
                    "query parameter `kind`: expected shop or vendor, got `{}`",
                    crate::model::truncate(&k)
                ))
            })
        })
        .transpose()?;
    let query = crate::store::query::MerchantQuery {
        q: non_empty(q.q).map(|s| s.chars().take(100).collect()),
        grade,
        region: region_filter(q.region)?,
        category: text_filter("category", q.category)?,
        kind,
        page: number("page", q.page, 1, MAX_PAGE, 1)? as usize,
        per_page: number("per_page", q.per_page, 1, MAX_PER_PAGE, 20)? as usize,
    };
    Ok(query)
}

pub async fn search(
    state: web::Data<AppState>,
    _: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = merchant_query(&req)?;
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

pub async fn stats(
    state: web::Data<AppState>,
    _: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: StatsQuery = query(&req)?;
    let region = region_filter(q.region)?;
    let stats = state.store.stats(region.as_deref()).await?;
    Ok(HttpResponse::Ok().json(stats))
}

pub async fn reprint(state: web::Data<AppState>, _: Regulator) -> Result<HttpResponse, ApiError> {
    let items = state.store.reprint().await?;
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
    let store = &state.store;
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_merchants_body(
        store.as_ref(),
        &state.rules,
        &body,
        &move |r| scope.may_write(r),
        clock::today(),
    )
    .await?;
    audit_merchant_changes(&state, &who, &report.changes).await?;
    let mut codes = Vec::new();
    for id in &ids {
        let code = match crate::issuing::active_code(store.as_ref(), id)
            .await
            .map_err(ApiError::from)?
        {
            Some(code) => code,
            None => crate::issuing::issue(
                store.as_ref(),
                state.scanner.keys(),
                id,
                state.settings.code_validity_days,
                Some(&who.name),
            )
            .await
            .map_err(|e| ApiError::Internal(e.into()))?,
        };
        codes.push(RegisteredCode {
            merchant_id: id,
            printed_grade: code.printed_grade,
            serial: code.serial,
            url: code_url(&state.base_url, &code)?,
        });
        state.scanner.invalidate(id).await;
    }
    audit_import(&state, &who, "merchants.import", &report, &ids).await?;
    let mut answer = ImportAnswer::new(&report, &ids);
    answer.codes = Some(codes);
    Ok(import_response(&who, &report, &ids, answer))
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

/// One audit entry per merchant an import changed: before and after, with
/// personal data masked (the audit log is readable by every token).
async fn audit_merchant_changes(
    state: &AppState,
    who: &Principal,
    changes: &[crate::refresh::MerchantChange],
) -> Result<(), ApiError> {
    let store = &state.store;
    for change in changes {
        store
            .append_audit(AuditEntry {
                at: clock::now(),
                actor: who.name.clone(),
                action: "merchant.upsert".into(),
                target: change.after.id.as_str().to_owned(),
                before: json!({"merchant": change.before.as_ref().map(audited_merchant)}),
                after: json!({
                    "merchant": audited_merchant(&change.after),
                    "changed": changed_fields(change.before.as_ref(), &change.after),
                }),
                reason: None,
            })
            .await?;
    }
    Ok(())
}

/// A merchant as the audit log shows it: contact name and phone masked as
/// on the public page, the id number only as present or not.
fn audited_merchant(m: &Merchant) -> serde_json::Value {
    json!({
        "id": m.id, "name": m.name, "kind": m.kind, "uscc": m.uscc, "address": m.address,
        "region": m.region, "categories": m.categories,
        "contact_name": m.contact_name.as_deref().map(crate::model::mask_name),
        "contact_phone": m.contact_phone.as_deref().map(crate::model::mask_phone),
        "id_number": m.id_number.as_ref().map(|_| "(set)"),
    })
}

/// The fields that differ (every one for a new merchant), so a change
/// hidden by masking still shows.
fn changed_fields(before: Option<&Merchant>, after: &Merchant) -> Vec<&'static str> {
    let a = after;
    let Some(b) = before else {
        return vec![
            "name",
            "kind",
            "uscc",
            "address",
            "region",
            "categories",
            "contact_name",
            "contact_phone",
            "id_number",
        ];
    };
    [
        ("name", b.name != a.name),
        ("kind", b.kind != a.kind),
        ("uscc", b.uscc != a.uscc),
        ("address", b.address != a.address),
        ("region", b.region != a.region),
        ("categories", b.categories != a.categories),
        ("contact_name", b.contact_name != a.contact_name),
        ("contact_phone", b.contact_phone != a.contact_phone),
        ("id_number", b.id_number != a.id_number),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
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
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_records_body(
        state.store.as_ref(),
        &state.rules,
        &body,
        &move |r| scope.may_write(r),
        clock::today(),
    )
    .await?;
    for id in &ids {
        state.scanner.invalidate(id).await;
    }
    audit_import(&state, &who, "records.import", &report, &ids).await?;
    let answer = ImportAnswer::new(&report, &ids);
    Ok(import_response(&who, &report, &ids, answer))
}

async fn audit_import(
    state: &AppState,
    who: &Principal,
    action: &str,
    report: &crate::refresh::ImportReport,
    ids: &[MerchantId],
) -> Result<(), ApiError> {
    if report.summary.imported == 0 {
        return Ok(());
    }
    let s = &report.summary;
    state
        .store
        .append_audit(AuditEntry {
            at: clock::now(),
            actor: who.name.clone(),
            action: action.into(),
            target: if ids.len() == 1 { ids[0].to_string() } else { format!("{} merchants", ids.len()) },
            before: serde_json::Value::Null,
            after: json!({"imported": s.imported, "duplicate": s.duplicate, "rejected": s.rejected, "merchants": ids.iter().take(100).collect::<Vec<_>>()}),
            reason: None,
        })
        .await?;
    Ok(())
}
