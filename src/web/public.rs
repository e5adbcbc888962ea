//! Public, unauthenticated reads: keys, a merchant's public record, its code.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::answers::{code_url, public_merchant, CodeAnswer};
use super::error::ApiError;
use super::extract::MerchantPath;
use super::pages;
use super::state::{AppState, STATUS_LIST_MAX_AGE_SECS};
use crate::clock;
use crate::model::MerchantId;
use anyhow::Context as _;
use yisaozhi_codes::ListedStatus;

use crate::model::{CodeStatus, IssuedCode};
use crate::store::StoreError;

pub async fn keys(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.scanner.keys().published(clock::today());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({ "keys": keys }))
}

async fn make_status_list(state: &AppState) -> anyhow::Result<bytes::Bytes> {
    let keys = state.scanner.keys();
    let (kid, key) = keys.active().context("no active signing key")?;
    let entries = state
        .store
        .inactive_codes()
        .await?
        .into_iter()
        .filter_map(|(serial, status)| {
            let listed = match status {
                CodeStatus::Revoked => ListedStatus::Revoked,
                CodeStatus::Superseded => ListedStatus::Superseded,
                CodeStatus::Active => return None,
            };
            Some((serial, listed))
        })
        .collect();
    let doc = crate::status_list::build(kid, key, clock::now(), entries)?;
    Ok(serde_json::to_vec(&doc)?.into())
}

/// `GET /api/v1/status-list`: the serials of revoked and superseded codes,
/// signed with the active key (`codes/SPEC.md` §8).
pub async fn status_list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state
        .status_list
        .0
        .try_get_with((), make_status_list(&state))
        .await
        .map_err(|e| match e.downcast_ref::<StoreError>() {
            Some(StoreError::Unavailable(_)) => ApiError::Unavailable,
            _ => ApiError::Internal(anyhow::anyhow!("making the status list: {e:#}")),
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={STATUS_LIST_MAX_AGE_SECS}"),
        ))
        .content_type("application/json")
        .body(body))
}

pub async fn merchant(
    state: web::Data<AppState>,
    id: MerchantPath,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .scanner
        .view(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{}`", *id)))?;
    let today = clock::today();
    let tips = state.scanner.tips().current();
    let body = public_merchant(&view, &tips.shown(view.audience(), today), today)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("application/json")
        .body(body))
}

async fn active_code(state: &AppState, id: &MerchantId) -> Result<IssuedCode, ApiError> {
    // The store down is a 503, like everywhere else.
    crate::issuing::active_code(state.store.as_ref(), id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("merchant `{id}` has no active code")))
}

pub async fn code(state: web::Data<AppState>, id: MerchantPath) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    Ok(HttpResponse::Ok().json(CodeAnswer::new(&code, &state.base_url)?))
}

fn render_svg(url: &str, code: &IssuedCode) -> Result<String, ApiError> {
    let qr = yisaozhi_codes::Qr::encode(url).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("encoding QR for code {}: {e}", code.serial))
    })?;
    Ok(yisaozhi_codes::svg(&qr, code.printed_grade, None))
}

pub async fn code_svg(
    state: web::Data<AppState>,
    id: MerchantPath,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let svg = render_svg(&code_url(&state.base_url, &code)?, &code)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(svg))
}

/// Pixels per module of `code.png`: the SVG's default size.
const PNG_MODULE_PX: u32 = 8;

pub async fn code_png(
    state: web::Data<AppState>,
    id: MerchantPath,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let url = code_url(&state.base_url, &code)?;
    let (serial, grade) = (code.serial, code.printed_grade);
    // QR encoding and deflate take milliseconds: keep them off the workers.
    let png = web::block(move || {
        yisaozhi_codes::Qr::encode(&url)
            .map(|qr| crate::render::png(&qr, grade, PNG_MODULE_PX))
            .map_err(|e| anyhow::anyhow!("encoding QR for code {serial}: {e}"))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering PNG for code {serial}: {e}")))?
    .map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(png))
}

pub async fn print(state: web::Data<AppState>, id: MerchantPath) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let view = state
        .scanner
        .view(&code.merchant)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{}`", code.merchant)))?;
    let url = code_url(&state.base_url, &code)?;
    let svg = render_svg(&url, &code)?;
    let page = pages::print_page(&*view.projection()?, code.printed_grade, &svg, &url);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.into_string()))
}
