//! `/admin/merchants`: search by name, credit code or id, with the filters
//! and paging of the JSON API (`filters::SearchQuery`), inside the staff
//! member's regions only.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::errors::PageError;
use super::layout::{grade_badge, page, Nav};
use super::staff::Staff;
use crate::clock;
use crate::model::{Grade, MerchantKind, Projection};
use crate::store::query::Page;
use crate::web::filters::{non_empty, query, region_within, SearchQuery};
use crate::web::state::AppState;

/// Merchants on one page of results.
const PER_PAGE: u64 = 20;

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let mut asked: SearchQuery = query(&req)?;
    asked.per_page = None;
    let mut q = asked.clone().parse(PER_PAGE)?;
    let results = match region_within(q.region.as_deref(), staff.scope.visible_prefix()) {
        Some(region) => {
            q.region = non_empty(Some(region));
            state.store.search(&q).await?
        }
        None => Page {
            total: 0,
            page: q.page,
            per_page: q.per_page,
            items: Vec::new(),
        },
    };
    let body = html! {
        (form(&staff, &asked))
        (list(&asked, &results))
    };
    Ok(page(&staff, Nav::Merchants, "商户搜索", body))
}

fn kind_words(k: MerchantKind) -> &'static str {
    match k {
        MerchantKind::Shop => "商户",
        MerchantKind::Vendor => "流动摊贩",
    }
}

fn form(staff: &Staff, asked: &SearchQuery) -> Markup {
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    let grade = v(&asked.grade);
    let kind = v(&asked.kind);
    html! {
        section.card {
            h1 { "商户搜索" }
            @if !staff.scope.visible_prefix().is_empty() {
                p.muted { "只在辖区 " (staff.scope.visible_prefix()) " 内搜索。" }
            }
            form.grid method="get" action="/admin/merchants" role="search" {
                div {
                    label for="q" { "名称、信用代码或编号" }
                    input #q type="search" name="q" value=(v(&asked.q)) maxlength="100" autofocus;
                }
                div {
                    label for="grade" { "等级" }
                    select #grade name="grade" {
                        option value="" selected[grade.is_empty()] { "全部" }
                        @for g in Grade::ALL {
                            option value=(g.name()) selected[grade == g.name()] { (g.label_zh()) }
                        }
                    }
                }
                div {
                    label for="region" { "辖区代码（前缀）" }
                    input #region type="text" name="region" value=(v(&asked.region))
                        inputmode="numeric" pattern="[0-9]{1,6}" maxlength="6";
                }
                div {
                    label for="category" { "经营类别" }
                    input #category type="text" name="category" value=(v(&asked.category)) maxlength="200";
                }
                div {
                    label for="kind" { "主体类型" }
                    select #kind name="kind" {
                        option value="" selected[kind.is_empty()] { "全部" }
                        @for k in MerchantKind::ALL {
                            option value=(k.name()) selected[kind == k.name()] { (kind_words(*k)) }
                        }
                    }
                }
                div { button type="submit" { "搜索" } }
            }
        }
    }
}

/// The link to page `n` of the same search.
fn page_link(asked: &SearchQuery, n: usize) -> String {
    let mut q = asked.clone();
    q.page = Some(n.to_string());
    let text = serde_urlencoded::to_string(&q).unwrap_or_default();
    format!("/admin/merchants?{text}")
}

fn row(p: &Projection, today: jiff::civil::Date) -> Markup {
    let m = &p.merchant;
    html! {
        li {
            a href={"/admin/merchants/" (m.id)} { (m.name) }
            " " (grade_badge(p.effective(today).0))
            br;
            span.muted {
                (m.id) " · " (kind_words(m.kind)) " · 辖区 " (m.region)
                @if !m.categories.is_empty() { " · " (m.categories.join("、")) }
            }
            br;
            span.muted { (m.address) }
        }
    }
}

fn list(asked: &SearchQuery, results: &Page<Projection>) -> Markup {
    let today = clock::today();
    let pages = results.total.div_ceil(results.per_page.max(1) as u64) as usize;
    html! {
        section.card aria-live="polite" {
            h2 { "结果：" (results.total) " 户" }
            @if results.items.is_empty() {
                p.muted { "没有符合条件的商户。" }
            } @else {
                ul.rows { @for p in &results.items { (row(p, today)) } }
            }
            @if pages > 1 {
                nav.pager aria-label="分页" {
                    @if results.page > 1 {
                        a href=(page_link(asked, results.page - 1)) rel="prev" { "上一页" }
                    } @else { span {} }
                    span.muted { "第 " (results.page) " / " (pages) " 页" }
                    @if results.page < pages {
                        a href=(page_link(asked, results.page + 1)) rel="next" { "下一页" }
                    } @else { span {} }
                }
            }
        }
    }
}
