//! The shop's access from a merchant's workbench page (一书一卡): issuing a
//! one-time activation code, shown once on a printable letter, and
//! revoking the shop's access. Both are forms with the session's `csrf`,
//! for staff who may change the merchant, done by the JSON API's code
//! (`shop_admin::{issue_access_for, revoke_access_for}`), audited there.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::act::{back_to, merchant_of_empty_form};
use super::errors::PageError;
use super::layout::{csrf_field, page, Nav};
use super::staff::Staff;
use crate::clock;
use crate::model::Merchant;
use crate::shop::access::{PendingCode, CODE_VALID_DAYS};
use crate::web::error::ApiError;
use crate::web::extract::MerchantPath;
use crate::web::shop_admin::{issue_access_for, revoke_access_for};
use crate::web::state::AppState;

/// The section of the merchant's page (for staff who may change it).
pub fn section(staff: &Staff, m: &Merchant, pending: Option<&PendingCode>) -> Markup {
    html! {
        section.card #shop-access {
            h2 { "商户自助访问（一书一卡）" }
            p.muted { "激活码交给商户本人，商户用它在手机上登录自己的页面（查看等级和理由、提交自查记录、回应、信用修复申请）。激活码只能使用一次，" (CODE_VALID_DAYS) " 天内有效；签发新码后旧码失效。" }
            @match pending {
                Some(p) => p { "有一个尚未使用的激活码，有效至 " (p.expires_at.to_zoned(clock::zone()).strftime("%Y-%m-%d")) "（" (p.issued_by) " 签发）。" },
                None => p { "目前没有未使用的激活码。" },
            }
            div.row {
                form method="post" action={"/admin/merchants/" (m.id) "/access"} {
                    (csrf_field(staff))
                    button type="submit" { "签发激活码" }
                }
                form method="post" action={"/admin/merchants/" (m.id) "/access/revoke"} {
                    (csrf_field(staff))
                    button.danger type="submit" { "撤销商户访问" }
                }
            }
        }
    }
}

/// `POST /admin/merchants/{id}/access`: a new activation code, shown once
/// on a letter to print (the store keeps only its hash).
pub async fn issue(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let merchant = merchant_of_empty_form(&state, &staff, id, req, payload).await?;
    let code = issue_access_for(&state, &staff, &merchant.id).await?;
    let until = clock::today()
        .checked_add(jiff::Span::new().days(CODE_VALID_DAYS))
        .map_err(|e| PageError::internal(e.into()))?;
    let body = html! {
        p.done role="status" { "已签发激活码。它只显示这一次：请现在打印或抄下交给商户。" }
        section.card.letter {
            h1 { "一扫知 · 商户激活告知书" }
            dl.facts {
                dt { "商户" } dd { (merchant.name) }
                dt { "商户编号" } dd { (merchant.id) }
                dt { "激活码" } dd { strong #activation-code { (code) } }
                dt { "有效至" } dd { (until) "（仅可使用一次）" }
                dt { "登录地址" } dd { (state.base_url) "/shop/login" }
            }
            ol {
                li { "用手机打开上面的登录地址。" }
                li { "输入商户编号和激活码。" }
                li { "登录后可查看本店信用等级和理由，提交自查记录，签署质量承诺书，回应评定理由，申请信用修复。" }
            }
            p.muted { "激活码请勿转交他人。如遗失，请联系辖区市场监管所重新签发，旧码随之失效。" }
        }
        p { a href={"/admin/merchants/" (merchant.id)} { "返回商户页面" } }
    };
    Ok(page(&staff, Nav::Other, "商户激活码", body))
}

/// `POST /admin/merchants/{id}/access/revoke`: the shop's sessions and
/// tokens end, an unused code is dropped.
pub async fn revoke(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let merchant = merchant_of_empty_form(&state, &staff, id, req, payload).await?;
    revoke_access_for(&state, &staff, &merchant.id).await?;
    Ok(back_to(&merchant.id, "access_revoked"))
}
