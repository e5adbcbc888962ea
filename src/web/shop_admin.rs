//! Regulators' side of the shop (CONTRACT §6): activation codes for a
//! merchant's letter, revoking a shop's access, and the review queue with
//! its decisions. Authenticated and scoped like every regulator write;
//! every change audited (by `crate::shop`, in the write itself).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::{read_body, writable_merchant};
use super::error::ApiError;
use super::extract::{MerchantPath, Regulator};
use super::state::AppState;
use crate::auth::Principal;
use crate::clock;
use crate::model::{Merchant, MerchantId};
use crate::shop::access::{self, CODE_VALID_DAYS};
use crate::shop::reviews::{self, Review, ReviewFilter, ReviewStatus};
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

/// Issues a new one-time activation code for `merchant` (whose scope the
/// caller was checked against), replacing an unused one; audited. Shared
/// by the JSON API, the command line's store call and the workbench.
pub async fn issue_access_for(
    state: &AppState,
    who: &Principal,
    merchant: &MerchantId,
) -> Result<String, ApiError> {
    let code = access::issue_code(state.store.as_ref(), merchant, &who.name, clock::now()).await?;
    tracing::info!(merchant.id = %merchant, actor = %who.name, "shop activation code issued");
    Ok(code)
}

/// Ends `merchant`'s shop sessions and tokens and drops an unused code;
/// audited.
pub async fn revoke_access_for(
    state: &AppState,
    who: &Principal,
    merchant: &MerchantId,
) -> Result<(), ApiError> {
    access::revoke(state.store.as_ref(), merchant, &who.name, clock::now()).await?;
    tracing::info!(merchant.id = %merchant, actor = %who.name, "shop access revoked");
    Ok(())
}

/// `POST /api/v1/admin/merchants/{id}/access` → `201 {"activation_code"}`:
/// a new one-time code (it replaces an unused one).
pub async fn issue_access(
    state: web::Data<AppState>,
    who: Regulator,
    id: Result<MerchantPath, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let merchant = writable(&state, &who, id).await?;
    let code = issue_access_for(&state, &who, &merchant).await?;
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
    revoke_access_for(&state, &who, &merchant).await?;
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
        region_prefix: who.scope.visible_prefix().to_owned(),
    };
    // A region's token: its merchants' submissions only.
    let scope = who.scope.clone();
    let (items, next) =
        reviews::list(state.store.as_ref(), &filter, &move |r| scope.may_see(r)).await?;
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
    decidable(&state, &who, &id).await?;
    let body = read_body(&req, payload, 16 * 1024).await?;
    let text = std::str::from_utf8(&body).map_err(|e| bad(format!("body: not UTF-8: {e}")))?;
    let body = crate::records::json_without_repeated_keys(text)
        .map_err(|e| bad(format!("body: expected {{\"decision\", \"reason\"}}: {e}")))?;
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(bad("field `reason`: expected a string")),
    };
    let decided = decide_as(
        &state,
        &who,
        &id,
        body.get("decision").and_then(Value::as_str),
        reason,
    )
    .await?;
    Ok(HttpResponse::Ok().json(decided))
}

/// The submission `id`, if it exists and the caller's scope may decide for
/// its merchant (404 / 403 otherwise).
pub async fn decidable(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<(Review, Merchant), ApiError> {
    let review = reviews::get(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no submission `{}`", crate::model::truncate(id)))
        })?;
    let merchant = MerchantId::parse(&review.merchant)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("submission {id}: {e}")))?;
    let merchant = writable_merchant(state, who, &merchant).await?;
    Ok((review, merchant))
}

/// Decides submission `id` once as `who` (`decision` and `reason` as
/// typed; see `reviews::parse_decision`): audited with the token's name,
/// an accepted one imported as a record and graded at once, the cached
/// views of the merchants it regraded dropped. The JSON API and the
/// workbench both decide through here.
pub async fn decide_as(
    state: &AppState,
    who: &Principal,
    id: &str,
    decision: Option<&str>,
    reason: Option<&str>,
) -> Result<Review, ApiError> {
    let (accept, reason) = reviews::parse_decision(decision, reason)?;
    let scope = who.scope.clone();
    let decided = reviews::decide(
        state.store.as_ref(),
        &state.rules,
        id,
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
    Ok(decided.review)
}
