//! Regulator endpoints: authenticated with a bearer token, scoped by region,
//! every change audited in the same write as the change itself.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{merchant_id, public_projection, ApiError, AppState};
use crate::auth::{self, AuthError, Principal};
use crate::clock;
use crate::domain::{check_text, parse_grade, MerchantId, TextKind};
use crate::grading::{self, Override};
use crate::records::{json_without_repeated_keys, Merchant};
use crate::store::{AuditEntry, AuditFilter};

const MAX_REASON_CHARS: usize = 500;

/// Authenticates the caller; failed attempts are counted per client address
/// and answered with 429 past the limit, before any token check.
async fn principal(state: &AppState, req: &HttpRequest) -> Result<Principal, ApiError> {
    use std::sync::atomic::Ordering;
    let client = req.peer_addr().map(|a| a.ip());
    let failures = client.map(|ip| state.auth_failures.get_with(ip, Default::default));
    if failures
        .as_ref()
        .is_some_and(|f| f.load(Ordering::Relaxed) >= super::MAX_AUTH_FAILURES_PER_MINUTE)
    {
        return Err(ApiError::TooManyAttempts);
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::authenticate(state.scanner.store().as_ref(), header)
        .await
        .map_err(|e| match e {
            AuthError::Store(e) => e.into(),
            other => {
                if let Some(f) = &failures {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(client = ?client, "regulator authentication failed");
                ApiError::Unauthorized(other.to_string())
            }
        })
}

/// Authenticates and loads a merchant the caller may change.
async fn writable_merchant(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
) -> Result<(Principal, Merchant), ApiError> {
    let who = principal(state, req).await?;
    let id = merchant_id(raw_id)?;
    let merchant = state
        .scanner
        .store()
        .merchant(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{id}`")))?;
    if !who.scope.may_write(&merchant.region) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` (scope {}) may not change merchants in region {}",
            who.name,
            who.scope.as_string(),
            merchant.region
        )));
    }
    Ok((who, merchant))
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
                    crate::domain::truncate(&raw)
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
    let store = state.scanner.store();
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
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (who, merchant) = writable_merchant(&state, &req, &id).await?;
    let value = parse_override(&body, &who.name, clock::today())?;
    apply_override(&state, &who, &merchant, Some(value)).await
}

pub async fn clear_override(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (who, merchant) = writable_merchant(&state, &req, &id).await?;
    apply_override(&state, &who, &merchant, None).await
}

pub async fn issue_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (who, merchant) = writable_merchant(&state, &req, &id).await?;
    let store = state.scanner.store();
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
    let token = yisaozhi_codes::Token::parse(&code.token)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(HttpResponse::Created().json(json!({
        "url": yisaozhi_codes::url(&state.base_url, &token),
        "token": code.token,
        "serial": code.serial,
        "kid": code.kid,
        "printed_grade": code.printed_grade,
        "issued_at": code.issued_at,
        "expires_at": code.expires_at,
    })))
}

pub async fn revoke_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    serial: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = principal(&state, &req).await?;
    let serial: u32 = serial.parse().map_err(|_| {
        ApiError::NotFound(format!("no code `{}`", crate::domain::truncate(&serial)))
    })?;
    let store = state.scanner.store();
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
    let audit = AuditEntry {
        at: clock::now(),
        actor: who.name.clone(),
        action: "code.revoke".into(),
        target: code.merchant.as_str().to_owned(),
        before: json!({"serial": serial, "status": code.status}),
        after: json!({"serial": serial, "status": "revoked"}),
        reason: None,
    };
    store.revoke_code(serial, audit).await?;
    state.scanner.invalidate(&code.merchant).await;
    Ok(HttpResponse::Ok()
        .json(json!({"serial": serial, "merchant_id": code.merchant, "status": "revoked"})))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    target: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

pub async fn audit(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    principal(&state, &req).await?;
    let q = q.into_inner();
    let since = q
        .since
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .or_else(|_| {
                    s.parse::<jiff::civil::Date>()
                        .and_then(|d| d.to_zoned(clock::zone()).map(|z| z.timestamp()))
                })
                .map_err(|_| {
                    bad(format!(
                        "`since`: expected YYYY-MM-DD or an RFC 3339 time, got `{}`",
                        crate::domain::truncate(&s)
                    ))
                })
        })
        .transpose()?;
    let entries = state
        .scanner
        .store()
        .audit(AuditFilter {
            target: q.target,
            actor: q.actor,
            since,
            limit: q.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    grade: Option<String>,
    region: Option<String>,
    category: Option<String>,
    kind: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    principal(&state, &req).await?;
    let q = q.into_inner();
    let grade = non_empty(q.grade)
        .map(|g| parse_grade(&g).map_err(|e| bad(e.to_string())))
        .transpose()?;
    let kind = non_empty(q.kind)
        .map(|k| {
            crate::records::MerchantKind::from_name(&k).ok_or_else(|| {
                bad(format!(
                    "`kind`: expected shop or vendor, got `{}`",
                    crate::domain::truncate(&k)
                ))
            })
        })
        .transpose()?;
    let query = crate::store::query::MerchantQuery {
        q: non_empty(q.q).map(|s| s.chars().take(100).collect()),
        grade,
        region: non_empty(q.region),
        category: non_empty(q.category),
        kind,
        page: q.page.unwrap_or(1).max(1),
        per_page: q.per_page.unwrap_or(20).clamp(1, 500),
    };
    let page = state.scanner.store().search(&query).await?;
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
pub struct StatsQuery {
    region: Option<String>,
}

pub async fn stats(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    principal(&state, &req).await?;
    let region = non_empty(q.into_inner().region);
    if let Some(r) = &region {
        if r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                "`region`: expected 1-6 digits, got `{}`",
                crate::domain::truncate(r)
            )));
        }
    }
    let stats = state.scanner.store().stats(region.as_deref()).await?;
    Ok(HttpResponse::Ok().json(stats))
}

pub async fn reprint(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal(&state, &req).await?;
    let items = state.scanner.store().reprint().await?;
    Ok(HttpResponse::Ok().json(json!({"total": items.len(), "items": items})))
}

fn import_answer(report: &crate::refresh::ImportReport, ids: &[MerchantId]) -> serde_json::Value {
    let s = &report.summary;
    json!({
        "read": s.read, "imported": s.imported, "duplicate": s.duplicate, "rejected": s.rejected,
        "regraded": s.regraded,
        "rejects": report.rejects.iter().map(|r| json!({"line": r.line, "reason": r.reason})).collect::<Vec<_>>(),
        "merchants": ids,
    })
}

/// Registers merchants (JSONL body, the merchants file format); new ones are
/// graded and get a code at once, so an itinerant vendor leaves with a code.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = principal(&state, &req).await?;
    let store = state.scanner.store();
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_merchants_body(
        store.as_ref(),
        &state.rules,
        &body,
        &move |r| scope.may_write(r),
        clock::today(),
    )
    .await?;
    let mut codes = Vec::new();
    for id in &ids {
        let code = match crate::issuing::active_code(store.as_ref(), id)
            .await
            .map_err(ApiError::Internal)?
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
        let token =
            yisaozhi_codes::Token::parse(&code.token).map_err(|e| ApiError::Internal(e.into()))?;
        codes.push(json!({"merchant_id": id, "serial": code.serial, "url": yisaozhi_codes::url(&state.base_url, &token), "printed_grade": code.printed_grade}));
        state.scanner.invalidate(id).await;
    }
    audit_import(&state, &who, "merchants.import", &report, &ids).await?;
    let mut answer = import_answer(&report, &ids);
    answer["codes"] = json!(codes);
    let status = if report.summary.rejected > 0 && ids.is_empty() {
        400
    } else {
        200
    };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .json(answer),
    )
}

/// Imports records (JSONL body, the records file format) and regrades the
/// merchants they concern at once.
pub async fn import_records(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = principal(&state, &req).await?;
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_records_body(
        state.scanner.store().as_ref(),
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
    let status = if report.summary.rejected > 0 && ids.is_empty() {
        400
    } else {
        200
    };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .json(import_answer(&report, &ids)),
    )
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
        .scanner
        .store()
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
