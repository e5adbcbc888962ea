//! `/admin/merchants/{id}`: one merchant for staff who see its region:
//! identity (personal data unmasked only for staff whose scope may change
//! the merchant: the ones responsible for it), grade and reasons, records
//! as a timeline, grade history, codes, the override form, the audit trail.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::audit::entry;
use super::errors::PageError;
use super::layout::{csrf_field, grade_badge, page, Nav};
use super::staff::Staff;
use super::timeline;
use crate::clock;
use crate::model::{
    mask_name, mask_phone, CodeStatus, Grade, IssuedCode, Merchant, MerchantKind, Override,
    Projection,
};
use crate::store::AuditFilter;
use crate::web::actions::{visible_merchant, MAX_REASON_CHARS};
use crate::web::extract::MerchantPath;
use crate::web::filters::query;
use crate::web::state::AppState;

/// Audit entries shown on a merchant's page.
const AUDIT_SHOWN: usize = 50;

#[derive(Debug, Deserialize)]
struct Shown {
    done: Option<String>,
}

/// What the notice after an action says (a fixed set: the page never
/// echoes the query string).
fn done_message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "override" => "已改判，扫码结果已更新。",
        "cleared" => "已撤销改判，恢复按规则评定的等级。",
        "issued" => "已签发新码，旧码已作废。请打印新码并张贴。",
        "revoked" => "已注销该码。",
        "access_revoked" => "已撤销商户访问：商户的登录和令牌全部失效，未使用的激活码作废。",
        _ => return None,
    })
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, crate::web::error::ApiError>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let id = id?;
    let shown: Shown = query(&req)?;
    let merchant = visible_merchant(&state, &staff, &id).await?;
    let store = &state.store;
    let projection = store.projection(&id).await?;
    let stored_override = store.override_of(&id).await?;
    let records = store.records(&id).await?;
    let mut codes = store.codes_of(&id).await?;
    codes.sort_by_key(|c| std::cmp::Reverse(c.serial));
    let audit = store
        .audit(AuditFilter {
            target: Some(id.to_string()),
            limit: crate::web::filters::MAX_AUDIT_LIMIT as usize,
            ..AuditFilter::default()
        })
        .await?;
    let history = timeline::history(projection.as_ref(), &codes, &audit, clock::today());
    let writable = staff.scope.may_write(&merchant.region);
    let pending_access = if writable {
        crate::shop::access::pending_code(store.as_ref(), &id).await?
    } else {
        None
    };
    let body = html! {
        @if let Some(msg) = done_message(shown.done.as_deref()) {
            p.done role="status" { (msg) }
        }
        (identity(&merchant, writable))
        (grade(projection.as_ref()))
        @if writable {
            (override_form(&staff, &merchant, stored_override.as_ref()))
        } @else {
            p.notice { "您的令牌只能查看此商户，不能修改（需要覆盖辖区 " (merchant.region) " 的写权限）。" }
        }
        (codes_section(&staff, &merchant, &codes, writable))
        @if writable { (super::access::section(&staff, &merchant, pending_access.as_ref())) }
        section.card { h2 { "记录（" (records.len()) "）" } (timeline::records(&records)) }
        section.card { h2 { "等级历史" } (timeline::history_list(&history)) }
        section.card {
            h2 { "操作记录" }
            @if audit.is_empty() { p.muted { "没有操作记录。" } }
            @else { ul.rows { @for e in audit.iter().take(AUDIT_SHOWN) { (entry(e)) } } }
            @if audit.len() > AUDIT_SHOWN {
                p { a href={"/admin/audit?target=" (merchant.id) "&limit=1000"} { "查看全部 " (audit.len()) " 条" } }
            }
        }
    };
    Ok(page(&staff, Nav::Other, &merchant.name, body))
}

fn identity(m: &Merchant, personal: bool) -> Markup {
    let kind = match m.kind {
        MerchantKind::Shop => "商户",
        MerchantKind::Vendor => "流动摊贩",
    };
    html! {
        section.card {
            h1 { (m.name) }
            dl.facts {
                dt { "编号" } dd { (m.id) }
                dt { "类型" } dd { (kind) }
                dt { "统一社会信用代码" } dd { @match &m.uscc { Some(u) => (u), None => "—" } }
                dt { "地址" } dd { (m.address) }
                dt { "辖区" } dd { (m.region) }
                dt { "经营类别" } dd { (if m.categories.is_empty() { "—".to_owned() } else { m.categories.join("、") }) }
                @if personal {
                    dt { "联系人" } dd { (m.contact_name.as_deref().unwrap_or("—")) }
                    dt { "联系电话" } dd { (m.contact_phone.as_deref().unwrap_or("—")) }
                    dt { "身份证号" } dd { (m.id_number.as_deref().unwrap_or("—")) }
                } @else {
                    dt { "联系人" } dd { (m.contact_name.as_deref().map(mask_name).unwrap_or_else(|| "—".into())) }
                    dt { "联系电话" } dd { (m.contact_phone.as_deref().map(mask_phone).unwrap_or_else(|| "—".into())) }
                    dt { "身份证号" } dd { (if m.id_number.is_some() { "已登记（不在您的辖区，不显示）" } else { "—" }) }
                }
            }
            p.muted { a href={"/api/v1/merchants/" (m.id)} { "公开数据（JSON）" } }
        }
    }
}

fn grade(p: Option<&Projection>) -> Markup {
    let today = clock::today();
    html! {
        section.card {
            h2 { "当前等级" }
            @match p {
                None => p.muted { "尚未评定（等待下一次 refresh）。" },
                Some(p) => {
                    @let (g, active) = p.effective(today);
                    p { (grade_badge(g)) " 评定日 " (p.as_of)
                        @if active.is_some() { "（人工改判；按规则为 " (p.computed_grade.label_zh()) "）" }
                    }
                    @if p.reasons.is_empty() {
                        p.muted { "近期没有影响信用的不良记录。" }
                    } @else {
                        ul {
                            @for r in &p.reasons {
                                @if active.is_some() || r.rule != crate::model::OVERRIDE_RULE {
                                    li {
                                        strong { (if r.rule == crate::model::OVERRIDE_RULE { "改判" } else { r.rule.as_str() }) }
                                        " " (r.text)
                                        span.muted {
                                            @if let Some(s) = r.since { "（自 " (s) }
                                            @if let Some(u) = r.until { "，至 " (u) " 解除" }
                                            @if r.since.is_some() { "）" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(next) = p.next_change_at { p.muted { "如无新记录，等级最早于 " (next) " 变化。" } }
                }
            }
        }
    }
}

fn override_form(staff: &Staff, m: &Merchant, current: Option<&Override>) -> Markup {
    html! {
        section.card {
            h2 { "改判" }
            @if let Some(o) = current {
                p {
                    "当前改判：" (grade_badge(o.grade)) " · " (o.actor) " · "
                    (o.at.to_zoned(clock::zone()).strftime("%Y-%m-%d"))
                    @match o.expires_at { Some(d) => { " · 至 " (d) }, None => { " · 长期" } }
                    br; "理由：" (o.reason)
                }
                form.inline method="post" action={"/admin/merchants/" (m.id) "/override/clear"} {
                    (csrf_field(staff))
                    button.quiet type="submit" { "撤销改判" }
                }
            }
            form.grid method="post" action={"/admin/merchants/" (m.id) "/override"} {
                (csrf_field(staff))
                div {
                    label for="ov-grade" { "改判为" }
                    select #ov-grade name="grade" required {
                        option value="" { "请选择" }
                        @for g in Grade::ALL { option value=(g.name()) { (g.label_zh()) } }
                    }
                }
                div {
                    label for="ov-expires" { "有效期至（可不填）" }
                    input #ov-expires type="date" name="expires_at" min=(clock::today());
                }
                div.wide {
                    label for="ov-reason" { "理由（必填，最多 " (MAX_REASON_CHARS) " 字）" }
                    textarea #ov-reason name="reason" required maxlength=(MAX_REASON_CHARS) {}
                }
                div { button type="submit" { "改判" } }
            }
        }
    }
}

fn status_words(s: CodeStatus) -> &'static str {
    match s {
        CodeStatus::Active => "在用",
        CodeStatus::Superseded => "已被新码取代",
        CodeStatus::Revoked => "已注销",
    }
}

fn codes_section(staff: &Staff, m: &Merchant, codes: &[IssuedCode], writable: bool) -> Markup {
    html! {
        section.card {
            h2 { "信用码" }
            @if codes.is_empty() { p.muted { "尚未签发。" } }
            ul.rows {
                @for c in codes {
                    li {
                        "第 " (c.serial) " 号 · " (status_words(c.status)) " · 印制等级 " (grade_badge(c.printed_grade))
                        br;
                        span.muted { "签发 " (c.issued_at) " · 有效至 " (c.expires_at) }
                        @if c.status == CodeStatus::Active {
                            " · " a href={"/merchants/" (m.id) "/print"} { "打印" }
                        }
                        @if writable && c.status != CodeStatus::Revoked {
                            form.row method="post" action={"/admin/codes/" (c.serial) "/revoke"} {
                                (csrf_field(staff))
                                label.row for={"confirm-" (c.serial)} {
                                    input #{"confirm-" (c.serial)} type="checkbox" name="confirm" value="yes" required;
                                    "确认注销第 " (c.serial) " 号码"
                                }
                                button.danger type="submit" { "注销" }
                            }
                        }
                    }
                }
            }
            @if writable {
                form method="post" action={"/admin/merchants/" (m.id) "/codes"} {
                    (csrf_field(staff))
                    button type="submit" { "签发新码（在用的码随之作废）" }
                }
            }
        }
    }
}
