//! `/admin/reviews`: the shops' pending submissions (self-reports, replies,
//! credit repair applications) of the merchants the staff member sees,
//! oldest first, a page at a time; each accepted, or rejected with a
//! reason, by a form that runs the JSON API's decision
//! (`shop_admin::decide_as`): same scope check, same audit entry with the
//! token's name, same record and regrade for an accepted one.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::errors::PageError;
use super::forms::read_form;
use super::layout::{csrf_field, page, see_other, Nav};
use super::staff::Staff;
use super::timeline::describe;
use crate::clock;
use crate::model::{MerchantId, RecordBody};
use crate::shop::reviews::{self, Review, ReviewFilter, ReviewStatus, MAX_DECISION_CHARS};
use crate::shop::submissions::{Submission, REVIEW_KINDS};
use crate::web::filters::{non_empty, query};
use crate::web::shop_admin::decide_as;
use crate::web::state::AppState;

/// Submissions on one page of the queue.
pub const PER_PAGE: usize = 20;

#[derive(Debug, Deserialize)]
struct Shown {
    kind: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// A review kind in words.
fn kind_words(kind: &str) -> &'static str {
    match kind {
        "self_report" => "自查记录",
        "reply" => "回应说明",
        "repair" => "信用修复申请",
        _ => "提交",
    }
}

/// What the notice after a decision says (a fixed set: the page never
/// echoes the query string).
fn done_message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "accept" => "已通过，已记入商户记录并重新评定等级。",
        "reject" => "已驳回，商户可在其页面看到驳回理由。",
        _ => return None,
    })
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let shown: Shown = query(&req)?;
    let kind = non_empty(shown.kind).filter(|k| REVIEW_KINDS.contains(&k.as_str()));
    let after = non_empty(shown.after).filter(|a| reviews::is_review_id(a));
    let filter = ReviewFilter {
        kind: kind.clone(),
        status: Some(ReviewStatus::Pending),
        after: after.clone(),
        limit: PER_PAGE,
        region_prefix: staff.scope.visible_prefix().to_owned(),
    };
    let scope = staff.scope.clone();
    let store = state.store.as_ref();
    let (items, next) = reviews::list(store, &filter, &move |r| scope.may_see(r)).await?;
    let mut rows = Vec::with_capacity(items.len());
    for review in &items {
        let merchant = match MerchantId::parse(&review.merchant) {
            Ok(id) => store.merchant(&id).await?,
            Err(_) => None,
        };
        let writable = merchant
            .as_ref()
            .is_some_and(|m| staff.scope.may_write(&m.region));
        let name = merchant.map(|m| m.name).unwrap_or_default();
        let about = match answered_record(&review.submission) {
            Some(rid) => match MerchantId::parse(&review.merchant) {
                Ok(id) => store
                    .records(&id)
                    .await?
                    .into_iter()
                    .find(|rec| rec.id == rid)
                    .map(|rec| format!("{} {}", rec.date, describe(&rec.body))),
                Err(_) => None,
            },
            None => None,
        };
        rows.push(item(&staff, review, &name, about.as_deref(), writable));
    }
    let link = |k: Option<&str>| match k {
        Some(k) => format!("/admin/reviews?kind={k}"),
        None => "/admin/reviews".to_owned(),
    };
    let body = html! {
        @if let Some(msg) = done_message(shown.done.as_deref()) {
            p.done role="status" { (msg) }
        }
        section.card {
            h1 { "待审核" }
            p.muted { "商户提交的自查记录、对评定理由或记录的回应、信用修复申请。通过后记入商户记录并立即重新评定；驳回须写明理由，商户可以看到。" }
            nav.row aria-label="按类型筛选" {
                @for (k, label) in [(None, "全部"), (Some("self_report"), "自查记录"), (Some("reply"), "回应说明"), (Some("repair"), "信用修复")] {
                    @if kind.as_deref() == k {
                        a href=(link(k)) aria-current="page" { strong { (label) } }
                    } @else {
                        a href=(link(k)) { (label) }
                    }
                }
            }
        }
        @if rows.is_empty() {
            section.card { p.muted { (if after.is_some() { "没有更多待审核事项。" } else { "没有待审核事项。" }) } }
        }
        @for row in rows { (row) }
        @if after.is_some() || next.is_some() {
            nav.pager aria-label="翻页" {
                @if after.is_some() { a href=(link(kind.as_deref())) { "回到第一页" } } @else { span {} }
                @if let Some(n) = &next {
                    a href={ (link(kind.as_deref())) (if kind.is_some() { "&" } else { "?" }) "after=" (n) } { "下一页" }
                }
            }
        }
    };
    Ok(page(&staff, Nav::Reviews, "审核", body))
}

/// The record a reply or a repair is about, if it names one.
fn answered_record(s: &Submission) -> Option<&str> {
    match s {
        Submission::Reply { record_id, .. } => record_id.as_deref(),
        Submission::Repair { record_id, .. } => Some(record_id),
        Submission::SelfReport { .. } => None,
    }
}

/// The fields of a submission, as a list of facts; `about`: the record
/// it answers or would repair, in words.
fn fields(s: &Submission, about: Option<&str>) -> Markup {
    html! {
        dl.facts {
            @match s {
                Submission::SelfReport { report_type, date, supplier, product, batch, items, summary } => {
                    dt { "类型" } dd { (describe(&RecordBody::SelfReport { report_type: *report_type, summary: None })) }
                    dt { "日期" } dd { (date) }
                    @if let Some(v) = supplier { dt { "供货方" } dd { (v) } }
                    @if let Some(v) = product { dt { "产品" } dd { (v) } }
                    @if let Some(v) = batch { dt { "批次" } dd { (v) } }
                    @if !items.is_empty() {
                        dt { "查验项目" }
                        dd { ul { @for i in items { li { (i.item) "：" (if i.ok { "合格" } else { "不合格" }) } } } }
                    }
                    @if let Some(v) = summary { dt { "说明" } dd { (v) } }
                }
                Submission::Reply { record_id, rule, text } => {
                    dt { "回应" }
                    dd {
                        @if let Some(r) = rule { "评定理由 " (r) }
                        @if let Some(r) = record_id { "记录 " (r) }
                        @if let Some(a) = about { br; span.muted { (a) } }
                    }
                    dt { "内容" } dd { (text) }
                }
                Submission::Repair { record_id, commitment, statement } => {
                    dt { "修复的记录" } dd { (record_id) @if let Some(a) = about { br; span.muted { (a) } } }
                    dt { "信用承诺" } dd { (if *commitment { "已承诺" } else { "未承诺" }) }
                    dt { "申请说明" } dd { (statement) }
                }
            }
        }
    }
}

/// One submission with its two forms (for staff who may change the
/// merchant).
fn item(staff: &Staff, r: &Review, name: &str, about: Option<&str>, writable: bool) -> Markup {
    let submitted = r
        .submitted_at
        .to_zoned(clock::zone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    let reason_id = format!("reason-{}", r.id);
    html! {
        section.card.review id={"review-" (r.id)} {
            h2 { (kind_words(r.submission.kind())) }
            p {
                a href={"/admin/merchants/" (r.merchant)} { (if name.is_empty() { r.merchant.as_str() } else { name }) }
                " "
                span.muted { (r.merchant) " · 提交于 " (submitted) }
            }
            (fields(&r.submission, about))
            @if writable {
                form.row method="post" action={"/admin/reviews/" (r.id)} {
                    (csrf_field(staff))
                    input type="hidden" name="decision" value="accept";
                    button id={"accept-" (r.id)} type="submit" { "通过" }
                }
                form method="post" action={"/admin/reviews/" (r.id)} {
                    (csrf_field(staff))
                    input type="hidden" name="decision" value="reject";
                    label for=(reason_id) { "驳回理由（必填，最多 " (MAX_DECISION_CHARS) " 字）" }
                    textarea id=(reason_id) name="reason" required maxlength=(MAX_DECISION_CHARS) {}
                    button.danger type="submit" { "驳回" }
                }
            } @else {
                p.muted { "您的令牌只能查看，不能审核此商户的提交。" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: Option<String>,
    reason: Option<String>,
}

/// `POST /admin/reviews/{id}` (form: decision, reason, csrf).
pub async fn decide(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: DecisionForm = read_form(&staff, &req, payload).await?;
    let review = decide_as(
        &state,
        &staff,
        &id,
        form.decision.as_deref(),
        form.reason.as_deref(),
    )
    .await?;
    let done = if review.status == ReviewStatus::Accepted {
        "accept"
    } else {
        "reject"
    };
    Ok(see_other(&format!("/admin/reviews?done={done}")))
}
