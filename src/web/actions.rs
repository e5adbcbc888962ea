//! Regulator actions, shared by the JSON API (`admin`) and the browser
//! workbench (`workbench`): each checks the caller's scope against the
//! merchant as stored (and as written), writes the change with its audit
//! entry, and drops the cached view so the next scan sees it. The two
//! front doors differ only in how they read input and render answers.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{Principal, Scope};
use crate::clock;
use crate::grading;
use crate::model::{
    check_text, parse_grade, AuditEntry, CodeStatus, IssuedCode, Merchant, MerchantId, Override,
    Projection, RegionCode, TextKind,
};
use crate::refresh::{ImportReport, MerchantChange};

/// Longest override reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Largest body of an import (JSONL or CSV).
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

pub fn bad(message: String) -> ApiError {
    ApiError::BadRequest("bad_request", message)
}

/// A request body as JSON, which `shape` describes for the error message.
/// A repeated key is refused, not resolved silently to its last value.
pub fn json_body(body: &[u8], shape: &str) -> Result<serde_json::Value, ApiError> {
    let expected = |e: &dyn std::fmt::Display| bad(format!("body: expected {shape}: {e}"));
    std::str::from_utf8(body)
        .map_err(|e| expected(&e))
        .and_then(|text| crate::records::json_without_repeated_keys(text).map_err(|e| expected(&e)))
}

/// The body's length as the request declares it (`Content-Length`).
pub fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a request body of at most `limit` bytes (decoded, if the client
/// compressed it). Called after authentication, so no one unauthenticated
/// makes the service read (or decompress) a body.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = || ApiError::PayloadTooLarge(super::error::body_too_large(limit));
    if declared_length(req).is_some_and(|n| n > limit as u64) {
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

/// Loads merchant `id`, or 404; 403 unless `allowed` says the caller's
/// scope covers its region (`what` the scope would need, for the message).
async fn merchant_in_scope(
    state: &AppState,
    who: &Principal,
    id: &MerchantId,
    allowed: fn(&Scope, &RegionCode) -> bool,
    what: &str,
) -> Result<Merchant, ApiError> {
    let merchant = state
        .store
        .merchant(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{id}`")))?;
    if !allowed(&who.scope, &merchant.region) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` (scope {}) {what} merchants in region {}",
            who.name,
            who.scope.as_string(),
            merchant.region
        )));
    }
    Ok(merchant)
}

/// Loads a merchant the caller may see, or 404 / 403.
pub async fn visible_merchant(
    state: &AppState,
    who: &Principal,
    id: &MerchantId,
) -> Result<Merchant, ApiError> {
    merchant_in_scope(state, who, id, Scope::may_see, "does not see").await
}

/// Loads a merchant the caller may change, or 404 / 403.
pub async fn writable_merchant(
    state: &AppState,
    who: &Principal,
    id: &MerchantId,
) -> Result<Merchant, ApiError> {
    merchant_in_scope(state, who, id, Scope::may_write, "may not change").await
}

/// An override from its fields as typed: a grade name, a reason of
/// 1-[`MAX_REASON_CHARS`] characters, and an expiry date (`YYYY-MM-DD`, not
/// before `today`) or none.
pub fn new_override(
    grade: &str,
    reason: &str,
    expires_at: Option<&str>,
    actor: &str,
    today: jiff::civil::Date,
) -> Result<Override, ApiError> {
    let grade = parse_grade(grade).map_err(|e| bad(e.to_string()))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(bad(format!(
            "field `reason`: expected 1-{MAX_REASON_CHARS} characters"
        )));
    }
    check_text(reason, MAX_REASON_CHARS, TextKind::Lines)
        .map_err(|e| bad(format!("field `reason`: {e}")))?;
    let expires_at = expires_at
        .map(|raw| {
            let d: jiff::civil::Date = raw.parse().map_err(|_| {
                bad(format!(
                    "field `expires_at`: expected YYYY-MM-DD, got `{}`",
                    crate::model::truncate(raw)
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

/// Re-grades `merchant` with `value` as its override (`None` clears it),
/// stores the result with its audit entry, and drops the cached view so
/// the next scan sees it. Returns the new projection.
pub async fn apply_override(
    state: &AppState,
    who: &Principal,
    merchant: &Merchant,
    value: Option<Override>,
) -> Result<Projection, ApiError> {
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
    store
        .set_override(id, value, projection.clone(), audit)
        .await?;
    state.scanner.invalidate(id).await;
    tracing::info!(merchant.id = %id, actor = %who.name, "override changed");
    Ok(projection)
}

/// Issues a new code for `merchant` (checked writable), superseding the
/// previous one; audited.
pub async fn issue_code(
    state: &AppState,
    who: &Principal,
    merchant: &Merchant,
) -> Result<IssuedCode, ApiError> {
    let code = crate::issuing::issue(
        state.store.as_ref(),
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
    Ok(code)
}

/// Revokes code `serial` if the caller may change its merchant; audited
/// once (a repeated revocation is 409). Returns the code as it was.
pub async fn revoke_code(
    state: &AppState,
    who: &Principal,
    serial: u32,
) -> Result<IssuedCode, ApiError> {
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
    Ok(code)
}

/// What a merchants import did: the report, the merchants it accepted, and
/// each one's active code (new merchants get one at once, so an itinerant
/// vendor leaves with a code).
pub struct Registered {
    pub report: ImportReport,
    pub ids: Vec<MerchantId>,
    pub codes: Vec<IssuedCode>,
}

/// Registers or updates merchants from a file's bytes (`name` ends in
/// `.csv`: CSV, else JSONL), each line judged against the caller's scope;
/// audited per merchant changed and once for the import.
pub async fn register_merchants(
    state: &AppState,
    who: &Principal,
    body: &[u8],
    name: &str,
) -> Result<Registered, ApiError> {
    let store = &state.store;
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_merchants_body(
        store.as_ref(),
        &state.rules,
        body,
        name,
        &move |r| scope.may_write(r),
        clock::today(),
    )
    .await?;
    audit_merchant_changes(state, who, &report.changes).await?;
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
        codes.push(code);
        state.scanner.invalidate(id).await;
    }
    audit_import(state, who, "merchants.import", &report, &ids).await?;
    Ok(Registered { report, ids, codes })
}

/// Imports records from a file's bytes (`name` ends in `.csv`: CSV, else
/// JSONL), each line judged against the caller's scope, and regrades the
/// merchants they concern at once; audited.
pub async fn import_records(
    state: &AppState,
    who: &Principal,
    body: &[u8],
    name: &str,
) -> Result<(ImportReport, Vec<MerchantId>), ApiError> {
    let scope = who.scope.clone();
    let (report, ids) = crate::refresh::import_records_body(
        state.store.as_ref(),
        &state.rules,
        body,
        name,
        &move |r| scope.may_write(r),
        clock::today(),
    )
    .await?;
    for id in &ids {
        state.scanner.invalidate(id).await;
    }
    audit_import(state, who, "records.import", &report, &ids).await?;
    Ok((report, ids))
}

/// One audit entry per merchant an import changed: before and after, with
/// personal data masked (the audit log is readable by every token).
async fn audit_merchant_changes(
    state: &AppState,
    who: &Principal,
    changes: &[MerchantChange],
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

async fn audit_import(
    state: &AppState,
    who: &Principal,
    action: &str,
    report: &ImportReport,
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
