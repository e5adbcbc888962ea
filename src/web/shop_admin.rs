//! Regulators' side of the shop (CONTRACT §6): activation codes for a
//! merchant's letter, revoking a shop's access, and the review queue with
//! its decisions. Authenticated and scoped like every regulator write;
//! every change audited (by `crate::shop`, in the write itself).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::read_body;
use super::admin::retain_visible;
use super::error::ApiError;
use super::extract::{MerchantPath, Regulator};
use super::state::AppState;
use crate::clock;
use crate::model::{check_text, TextKind};
use crate::shop::access::{self, CODE_VALID_DAYS};
use crate::shop::reviews::{self, ReviewFilter, ReviewStatus, MAX_DECISION_CHARS};
use crate::shop::submissions::REVIEW_KINDS;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest("bad_request", message.into())
}

/// The merchant of the path, if the caller's scope may change it.
async fn writable(
    state: &AppState,
    who: &Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<crate::model::MerchantId, ApiError> {
    Ok(super::admin::writable_merchant(state, who, id).await?.id)
}

/// `POST /api/v1/admin/merchants/{id}/access` → `201 {"activation_code"}`:
/// a new one-time code (it replaces an unused one).
pub async fn issue_access(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable(&state, &who, id).await?;
    let code = access::issue_code(state.store.as_ref(), &merchant, &who.name, clock::now()).await?;
    tracing::info!(merchant.id = %merchant, actor = %who.name, "shop activation code issued");
    Ok(HttpResponse::Created().json(json!({
        "activation_code": code, "merchant_id": merchant,
        "expires_in_days": CODE_VALID_DAYS, "login_url": format!("{}/shop/login", state.base_url),
    })))
}

/// `DELETE /api/v1/admin/merchants/{id}/access`: ends the shop's sessions
/// and tokens and drops an unused code.
pub async fn revoke_access(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable(&state, &who, id).await?;
    access::revoke(state.store.as_ref(), &merchant, &who.name, clock::now()).await?;
    tracing::info!(merchant.id = %merchant, actor = %who.name, "shop access revoked");
    Ok(HttpResponse::Ok().json(json!({"merchant_id": merchant, "access": "revoked"})))
}

#[derive(Debug, Deserialize)]
struct ReviewQuery {
    kind: Option<String>,
    status: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// Most submissions in one answer of the queue.
const MAX_REVIEWS_LISTED: usize = 500;

/// `GET /api/v1/admin/reviews?kind=&status=&after=&limit=`: oldest first;
/// `next` is the `after` of the following page.
pub async fn list_reviews(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<ReviewQuery>::from_query(req.query_string())
        .map_err(|e| bad(format!("query string: {e}")))?
        .into_inner();
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let kind = non_empty(q.kind)
        .map(|k| {
            REVIEW_KINDS
                .contains(&k.as_str())
                .then_some(k.clone())
                .ok_or_else(|| {
                    bad(format!(
                        "query parameter `kind`: expected self_report, reply or repair, got `{}`",
                        crate::model::truncate(&k)
                    ))
                })
        })
        .transpose()?;
    let status = non_empty(q.status)
        .map(|s| {
            ReviewStatus::parse(&s).ok_or_else(|| {
                bad(format!(
                    "query parameter `status`: expected pending, accepted or rejected, got `{}`",
                    crate::model::truncate(&s)
                ))
            })
        })
        .transpose()?;
    let after = non_empty(q.after);
    if after.as_deref().is_some_and(|a| !reviews::is_review_id(a)) {
        return Err(bad(
            "query parameter `after`: expected a submission id (a `next` of a previous answer)",
        ));
    }
    let limit = match non_empty(q.limit) {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_REVIEWS_LISTED).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "query parameter `limit`: expected 1 to {MAX_REVIEWS_LISTED}"
                ))
            })?,
    };
    let filter = ReviewFilter {
        kind,
        status,
        after,
        limit,
    };
    let (items, next) = reviews::list(state.store.as_ref(), &filter).await?;
    // A region's token: its merchants' submissions only (a page may hold fewer).
    let items = retain_visible(state.store.as_ref(), &who, items, |r| &r.merchant).await?;
    Ok(HttpResponse::Ok().json(json!({"reviews": items, "next": next})))
}

/// `POST /api/v1/admin/reviews/{id}` `{"decision": "accept"|"reject",
/// "reason"}` (a reason is required to reject). A decision is made once.
pub async fn decide_review(
    state: web::Data<AppState>,
    who: Regulator,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // Judged before the body is read: the submission, and the scope over
    // its merchant.
    let review = reviews::get(state.store.as_ref(), &id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no submission `{}`", crate::model::truncate(&id)))
        })?;
    let merchant = crate::model::MerchantId::parse(&review.merchant)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("submission {id}: {e}")))?;
    writable(&state, &who, Ok(MerchantPath(merchant))).await?;
    let body = read_body(&req, payload, 16 * 1024).await?;
    let text = std::str::from_utf8(&body).map_err(|e| bad(format!("body: not UTF-8: {e}")))?;
    let body = crate::records::json_without_repeated_keys(text)
        .map_err(|e| bad(format!("body: expected {{\"decision\", \"reason\"}}: {e}")))?;
    let accept = match body.get("decision").and_then(Value::as_str) {
        Some("accept") => true,
        Some("reject") => false,
        _ => return Err(bad("field `decision`: expected \"accept\" or \"reject\"")),
    };
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            check_text(s.trim(), MAX_DECISION_CHARS, TextKind::Lines)
                .map_err(|e| bad(format!("field `reason`: {e}")))?;
            Some(s.trim().to_owned())
        }
        Some(_) => return Err(bad("field `reason`: expected a string")),
    };
    if !accept && reason.is_none() {
        return Err(bad(format!(
            "field `reason`: required to reject (1-{MAX_DECISION_CHARS} characters): the shop reads it"
        )));
    }
    let scope = who.scope.clone();
    let decided = reviews::decide(
        state.store.as_ref(),
        &state.rules,
        &id,
        accept,
        reason,
        &who.name,
        &move |r| scope.may_write(r),
        clock::today(),
        clock::now(),
    )
    .await?;
    for m in &decided.regraded {
        state.scanner.invalidate(m).await;
    }
    tracing::info!(review.id = %id, actor = %who.name, accept, "submission decided");
    Ok(HttpResponse::Ok().json(decided.review))
}
