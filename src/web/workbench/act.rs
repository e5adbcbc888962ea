//! The workbench's actions on a merchant, each a form posted with the
//! session's `csrf` (checked before anything else is read) and done by the
//! same code as the JSON API (`actions`): same scope checks, same audit
//! entries with the token's name. Each answers 303 back to the merchant's
//! page, which shows the result.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::errors::PageError;
use super::forms::{read_empty_form, read_form};
use super::layout::see_other;
use super::staff::Staff;
use crate::clock;
use crate::model::{Merchant, MerchantId};
use crate::web::actions::{self, bad, writable_merchant};
use crate::web::error::ApiError;
use crate::web::extract::MerchantPath;
use crate::web::filters::non_empty;
use crate::web::state::AppState;

#[derive(Debug, Deserialize)]
struct OverrideForm {
    #[serde(default)]
    grade: String,
    #[serde(default)]
    reason: String,
    expires_at: Option<String>,
}

pub(super) fn back_to(id: &MerchantId, done: &str) -> HttpResponse {
    see_other(&format!("/admin/merchants/{id}?done={done}"))
}

pub async fn set_override(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let id = id?;
    let form: OverrideForm = read_form(&staff, &req, payload).await?;
    let merchant = writable_merchant(&state, &staff, &id).await?;
    let expires = non_empty(form.expires_at);
    let value = actions::new_override(
        &form.grade,
        &form.reason,
        expires.as_deref(),
        &staff.name,
        clock::today(),
    )?;
    actions::apply_override(&state, &staff, &merchant, Some(value)).await?;
    Ok(back_to(&id, "override"))
}

/// The merchant of a form that carries nothing but its `csrf`, once that
/// is checked, if the staff member may change it.
pub(super) async fn merchant_of_empty_form(
    state: &AppState,
    staff: &Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<Merchant, PageError> {
    let id = id?;
    read_empty_form(staff, &req, payload).await?;
    Ok(writable_merchant(state, staff, &id).await?)
}

pub async fn clear_override(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let merchant = merchant_of_empty_form(&state, &staff, id, req, payload).await?;
    actions::apply_override(&state, &staff, &merchant, None).await?;
    Ok(back_to(&merchant.id, "cleared"))
}

pub async fn issue_code(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let merchant = merchant_of_empty_form(&state, &staff, id, req, payload).await?;
    actions::issue_code(&state, &staff, &merchant).await?;
    Ok(back_to(&merchant.id, "issued"))
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    confirm: Option<String>,
}

pub async fn revoke_code(
    state: web::Data<AppState>,
    staff: Staff,
    serial: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: RevokeForm = read_form(&staff, &req, payload).await?;
    let serial: u32 = serial.parse().map_err(|_| {
        ApiError::NotFound(format!("no code `{}`", crate::model::truncate(&serial)))
    })?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(
            bad("tick the box that confirms the revocation (field `confirm`)".into()).into(),
        );
    }
    let code = actions::revoke_code(&state, &staff, serial).await?;
    Ok(back_to(&code.merchant, "revoked"))
}
