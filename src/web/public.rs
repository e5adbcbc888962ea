//! Public, unauthenticated reads: keys, a merchant's public record, its code.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::{merchant_id, pages, public_projection, ApiError, AppState};
use crate::clock;
use crate::store::IssuedCode;

pub async fn keys(state: web::Data<AppState>) -> HttpResponse {
    let keys = state.scanner.keys().published(clock::today());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({ "keys": keys }))
}

pub async fn merchant(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id(&id)?;
    let view = state
        .scanner
        .view(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{id}`")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(public_projection(view.projection()?, clock::today())))
}

async fn active_code(state: &AppState, raw_id: &str) -> Result<IssuedCode, ApiError> {
    let id = merchant_id(raw_id)?;
    // The store down is a 503, like everywhere else.
    crate::issuing::active_code(state.scanner.store().as_ref(), &id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("merchant `{id}` has no active code")))
}

fn code_url(state: &AppState, code: &IssuedCode) -> Result<String, ApiError> {
    let token = yisaozhi_codes::Token::parse(&code.token).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored code {} is invalid: {e}",
            code.serial
        ))
    })?;
    Ok(yisaozhi_codes::url(&state.base_url, &token))
}

pub async fn code(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "url": code_url(&state, &code)?,
        "token": code.token,
        "serial": code.serial,
        "kid": code.kid,
        "printed_grade": code.printed_grade,
        "issued_at": code.issued_at,
        "expires_at": code.expires_at,
    })))
}

fn render_svg(url: &str, code: &IssuedCode) -> Result<String, ApiError> {
    let qr = yisaozhi_codes::Qr::encode(url).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("encoding QR for code {}: {e}", code.serial))
    })?;
    Ok(yisaozhi_codes::svg(&qr, code.printed_grade, None))
}

pub async fn code_svg(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let svg = render_svg(&code_url(&state, &code)?, &code)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(svg))
}

/// Pixels per module of `code.png`: the SVG's default size.
const PNG_MODULE_PX: u32 = 8;

pub async fn code_png(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let url = code_url(&state, &code)?;
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

pub async fn print(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = active_code(&state, &id).await?;
    let view = state
        .scanner
        .view(&code.merchant)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no merchant `{}`", code.merchant)))?;
    let url = code_url(&state, &code)?;
    let svg = render_svg(&url, &code)?;
    let page = pages::print_page(view.projection()?, code.printed_grade, &svg, &url);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.into_string()))
}
