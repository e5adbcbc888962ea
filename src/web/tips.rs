//! Consumer tips (消费提示, CONTRACT §5): `POST /api/v1/admin/tips`,
//! `GET /api/v1/admin/tips`, `DELETE /api/v1/admin/tips/{id}`. Publishing
//! and deleting are scoped like every write (every region a tip covers must
//! be in the token's scope; a tip for every region needs a scope of every
//! region) and audited in the same write. What a tip covers and when is
//! `crate::tips`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::actions::{bad, json_body, read_body};
use super::error::ApiError;
use super::extract::Regulator;
use super::state::AppState;
use crate::auth::Principal;
use crate::clock;
use crate::model::{truncate, AuditEntry};
use crate::tips::{self, Draft, Tip, MAX_TIPS};

/// Largest body of a publication: a tip and its lists fit in a few KiB.
const MAX_TIP_BYTES: usize = 16 * 1024;

fn parse_draft(body: &[u8]) -> Result<Draft, ApiError> {
    let shape = r#"{"text", "regions": [..], "categories": [..], "from", "until"}"#;
    Draft::from_json(json_body(body, shape)?).map_err(|e| bad(e.to_string()))
}

fn out_of_scope(who: &Principal, tip: &Tip, doing: &str) -> ApiError {
    let regions = if tip.regions.is_empty() {
        "every region".to_owned()
    } else {
        tip.regions
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    ApiError::Forbidden(format!(
        "token `{}` (scope {}) may not {doing} a tip for {regions}",
        who.name,
        who.scope.as_string()
    ))
}

/// Publishes `draft` as `who`: checked, scoped, at most [`MAX_TIPS`]
/// stored, audited with the tip. The JSON API and the workbench's form.
pub async fn publish_tip(state: &AppState, who: &Principal, draft: Draft) -> Result<Tip, ApiError> {
    let tip = draft
        .into_tip(tips::new_id()?, &who.name, clock::today(), clock::now())
        .map_err(|e| bad(e.to_string()))?;
    if !tip.within(&who.scope) {
        return Err(out_of_scope(who, &tip, "publish"));
    }
    let store = &*state.store;
    let known = state.scanner.tips();
    // The count as stored now (other processes publish too).
    known.reload(store).await?;
    if known.current().all().len() >= MAX_TIPS {
        return Err(ApiError::Conflict(format!(
            "{MAX_TIPS} tips are stored, the most there may be; delete tips that have ended first"
        )));
    }
    let audit = AuditEntry {
        at: tip.at,
        actor: who.name.clone(),
        action: "tip.publish".into(),
        target: tip.id.clone(),
        before: serde_json::Value::Null,
        after: json!(tip),
        reason: None,
    };
    if !known.publish(store, &tip, audit).await? {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "new tip id {} is taken",
            tip.id
        )));
    }
    tracing::info!(tip.id = %tip.id, actor = %who.name, "tip published");
    Ok(tip)
}

/// `POST /api/v1/admin/tips` → `201 {"id"}`.
pub async fn publish(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_TIP_BYTES).await?;
    let draft = parse_draft(&body)?;
    let tip = publish_tip(&state, &who, draft).await?;
    Ok(HttpResponse::Created().json(json!({ "id": tip.id })))
}

/// Deletes tip `id` as `who` (scoped, audited); of two deletions at once,
/// one is audited, the other answered 404. The JSON API and the
/// workbench's withdraw form.
pub async fn delete_tip(state: &AppState, who: &Principal, id: &str) -> Result<Tip, ApiError> {
    let not_found = || ApiError::NotFound(format!("no tip `{}`", truncate(id)));
    if !tips::is_id(id) {
        return Err(not_found());
    }
    let store = &*state.store;
    let (tip, stored) = tips::stored(store, id).await?.ok_or_else(not_found)?;
    if !tip.within(&who.scope) {
        return Err(out_of_scope(who, &tip, "delete"));
    }
    let audit = AuditEntry {
        at: clock::now(),
        actor: who.name.clone(),
        action: "tip.delete".into(),
        target: tip.id.clone(),
        before: json!(tip),
        after: serde_json::Value::Null,
        reason: None,
    };
    if !state
        .scanner
        .tips()
        .delete(store, id, stored, audit)
        .await?
    {
        return Err(not_found());
    }
    tracing::info!(tip.id = %tip.id, actor = %who.name, "tip deleted");
    Ok(tip)
}

/// `DELETE /api/v1/admin/tips/{id}`.
pub async fn delete(
    state: web::Data<AppState>,
    who: Regulator,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tip = delete_tip(&state, &who, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": tip.id, "deleted": true })))
}

/// A tip as regulators list it: everything stored, and whether it is in
/// force today.
#[derive(serde::Serialize)]
struct ListedTip<'a> {
    #[serde(flatten)]
    tip: &'a Tip,
    in_force: bool,
}

/// `GET /api/v1/admin/tips`: every stored tip, the latest `from` first
/// (at most [`MAX_TIPS`]), for any regulator token.
pub async fn list(state: web::Data<AppState>, _who: Regulator) -> Result<HttpResponse, ApiError> {
    let all = tips::all(&*state.store).await?;
    let today = clock::today();
    let listed: Vec<ListedTip> = all
        .iter()
        .map(|tip| ListedTip {
            tip,
            in_force: tip.in_force(today),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tips": listed })))
}
