//! `/admin/audit`: the audit log with the JSON API's filters (target,
//! actor, since, limit). A staff member limited to a region sees the
//! entries about merchants of that region and their own.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::Value;

use super::errors::PageError;
use super::layout::{grade_badge, page, Nav};
use super::staff::Staff;
use crate::auth::Principal;
use crate::clock;
use crate::model::{AuditEntry, Grade, MerchantId};
use crate::store::{Store, StoreResult};
use crate::web::filters::{query, AuditQuery, MAX_AUDIT_LIMIT};
use crate::web::state::AppState;

/// Entries on the page unless `limit` says otherwise.
const DEFAULT_LIMIT: u64 = 100;

/// What an action is called on the page.
fn action_label(action: &str) -> &str {
    match action {
        "override.set" => "改判",
        "override.clear" => "撤销改判",
        "code.issue" => "签发新码",
        "code.revoke" => "注销码",
        "merchant.upsert" => "登记或更新商户",
        "merchants.import" => "导入商户",
        "records.import" => "导入记录",
        "session.login" => "登录工作台",
        "session.logout" => "退出工作台",
        other => other,
    }
}

fn grade_in(v: &Value) -> Option<Grade> {
    v.get("grade")
        .and_then(Value::as_str)
        .and_then(Grade::from_name)
}

/// One audit entry: when, who, what, to which target, why; the full
/// before and after on demand (a `details` element: no script).
pub fn entry(e: &AuditEntry) -> Markup {
    let target = MerchantId::parse(&e.target).ok();
    html! {
        li {
            strong { (action_label(&e.action)) }
            " · "
            @match &target {
                Some(id) => a href={"/admin/merchants/" (id)} { (id) },
                None => span { (e.target) },
            }
            @if let (Some(from), Some(to)) = (grade_in(&e.before), grade_in(&e.after)) {
                " " (grade_badge(from)) " → " (grade_badge(to))
            }
            @if let Some(serial) = e.after.get("serial").and_then(Value::as_u64) {
                " · 码 " (serial)
            }
            br;
            span.muted {
                (e.at.to_zoned(clock::zone()).strftime("%Y-%m-%d %H:%M:%S"))
                " · 操作人 " (e.actor)
            }
            @if let Some(reason) = &e.reason {
                br;
                "理由：" (reason)
            }
            details {
                summary { "详情" }
                pre { "之前：" (e.before) "\n之后：" (e.after) }
            }
        }
    }
}

/// Keeps the entries `who` may see: with a region limit, those about
/// merchants of that region, and the token's own (the JSON API's audit
/// log too).
pub async fn visible_entries(
    store: &dyn Store,
    who: &Principal,
    entries: Vec<AuditEntry>,
) -> StoreResult<Vec<AuditEntry>> {
    let prefix = who.scope.visible_prefix();
    if prefix.is_empty() {
        return Ok(entries);
    }
    let mut regions: BTreeMap<MerchantId, bool> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        let visible = match MerchantId::parse(&e.target) {
            Ok(id) => match regions.get(&id) {
                Some(v) => *v,
                None => {
                    let v = store
                        .merchant(&id)
                        .await?
                        .is_some_and(|m| m.region.as_str().starts_with(prefix));
                    regions.insert(id, v);
                    v
                }
            },
            Err(_) => false,
        };
        if visible || e.actor == who.name {
            out.push(e);
        }
    }
    Ok(out)
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let asked: AuditQuery = query(&req)?;
    let mut filter = asked.clone().parse(DEFAULT_LIMIT)?;
    let limit = filter.limit;
    if !staff.scope.visible_prefix().is_empty() {
        // Read more than shown: entries of other regions are left out.
        filter.limit = (limit * 5).min(MAX_AUDIT_LIMIT as usize);
    }
    let entries = state.store.audit(filter).await?;
    let mut entries = visible_entries(state.store.as_ref(), &staff, entries).await?;
    entries.truncate(limit);
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    let body = html! {
        section.card {
            h1 { "审计日志" }
            form.grid method="get" action="/admin/audit" {
                div {
                    label for="target" { "对象（商户编号）" }
                    input #target type="text" name="target" value=(v(&asked.target)) maxlength="200";
                }
                div {
                    label for="actor" { "操作人（令牌名称）" }
                    input #actor type="text" name="actor" value=(v(&asked.actor)) maxlength="200";
                }
                div {
                    label for="since" { "起始日期" }
                    input #since type="date" name="since" value=(v(&asked.since));
                }
                div {
                    label for="limit" { "条数" }
                    input #limit type="number" name="limit" min="1" max=(MAX_AUDIT_LIMIT) value=(asked.limit.clone().unwrap_or_else(|| DEFAULT_LIMIT.to_string()));
                }
                div { button type="submit" { "筛选" } }
            }
        }
        section.card {
            h2 { (entries.len()) " 条（最新的在前）" }
            @if entries.is_empty() {
                p.muted { "没有符合条件的记录。" }
            } @else {
                ul.rows { @for e in &entries { (entry(e)) } }
            }
        }
    };
    Ok(page(&staff, Nav::Audit, "审计日志", body))
}
