//! `/admin`: the dashboard of the staff member's regions. The numbers
//! come from `crate::dashboard` (live counts and the reprint count from
//! the search index, the trend from the refresh's daily counts) and, for
//! the work queues of other features, `dashboard_data` (bounded reads).

use actix_web::{web, HttpResponse};
use maud::{html, Markup};

use super::charts;
use super::dashboard_data::{overdue_patrols, pending_reviews, weeks, Bounded, Week};
use super::errors::PageError;
use super::layout::{grade_badge, page, Nav};
use super::staff::Staff;
use crate::clock;
use crate::dashboard::{dashboard, Dashboard};
use crate::model::Grade;
use crate::store::query::ReprintItem;
use crate::store::{Store, StoreResult};
use crate::web::state::AppState;

/// Reprint items listed on the page (the rest are counted).
const SHOWN: usize = 10;

/// The reprint queue of the regions starting with `prefix`, when it is
/// not empty (its length is that of the queue, not of the merchants).
async fn reprint_items(
    store: &dyn Store,
    prefix: &str,
    queued: u64,
) -> StoreResult<Vec<ReprintItem>> {
    if queued == 0 {
        return Ok(Vec::new());
    }
    let mut items = store.reprint().await?;
    items.retain(|r| r.region.starts_with(prefix));
    Ok(items)
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, PageError> {
    let store = state.store.as_ref();
    let prefix = staff.scope.visible_prefix();
    let today = clock::today();
    let (dash, reviews, patrols) = tokio::try_join!(
        dashboard(store, (!prefix.is_empty()).then_some(prefix), today),
        pending_reviews(store, prefix),
        overdue_patrols(store, prefix, today, state.rules.patrol()),
    )?;
    let reprint = reprint_items(store, prefix, dash.reprint_queue).await?;
    let weeks = weeks(&dash.trend, today);
    let body = html! {
        @if !prefix.is_empty() {
            p.muted { "只显示辖区 " (prefix) " 的数据。" }
        }
        (counts(&dash))
        (queues(&dash, &reprint, reviews, patrols))
        (regions(&dash))
        (changes(&dash, &weeks))
        (trend(&weeks))
    };
    Ok(page(&staff, Nav::Dashboard, "概览", body))
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        return "—".into();
    }
    format!("{:.1}%", n as f64 * 100.0 / total as f64)
}

fn counts(data: &Dashboard) -> Markup {
    html! {
        section.card {
            h1 { "信用等级概况" }
            div.counts {
                div { span.muted { "商户总数" } b { (data.total) } }
                @for g in Grade::ALL {
                    @let n = data.by_grade.get(&g).copied().unwrap_or(0);
                    div {
                        (grade_badge(g))
                        b { (n) }
                        span.muted { (percent(n, data.total)) }
                    }
                }
            }
        }
    }
}

fn regions(data: &Dashboard) -> Markup {
    let rows: Vec<(String, &_)> = data
        .by_region
        .iter()
        .take(charts::MAX_REGION_BARS)
        .map(|(r, c)| (r.clone(), c))
        .collect();
    html! {
        section.card {
            h2 { "各辖区等级分布" }
            @if rows.is_empty() {
                p.muted { "暂无已评定的商户。" }
            } @else {
                (charts::regions(&rows))
                @if data.by_region.len() > rows.len() {
                    p.muted { "只画出前 " (rows.len()) " 个辖区，共 " (data.by_region.len()) " 个；可在商户搜索中按辖区查看。" }
                }
            }
        }
    }
}

fn changes(dash: &Dashboard, weeks: &[Week]) -> Markup {
    let this_week = weeks.last().map_or(0, |w| w.changed);
    html! {
        section.card {
            h2 { "本周等级变化" }
            p {
                "近7天每日评定中等级发生变化的商户：" b { (dash.changes_this_week) } " 户次"
                @if this_week != dash.changes_this_week {
                    span.muted { "（本周一以来 " (this_week) " 户次）" }
                }
            }
            p.muted { "人工改判见" a href="/admin/audit" { "审计日志" } "。" }
        }
    }
}

fn trend(weeks: &[Week]) -> Markup {
    let known: Vec<&Week> = weeks.iter().filter(|w| w.counts.is_some()).collect();
    html! {
        section.card {
            h2 { "近12周趋势" }
            (charts::trend(weeks))
            @if known.is_empty() {
                p.muted { "还没有每日评定的统计；“—”表示那一周没有数据。" }
            } @else {
                p.muted { "每周取最后一次评定后的数量；“—”表示那一周没有评定。" }
                ul.rows {
                    @for w in known {
                        @if let Some(c) = &w.counts {
                            li.trend-week {
                                (w.starts) " 起一周："
                                @for g in Grade::ALL {
                                    " " (g.label_zh()) " " (c.get(&g).copied().unwrap_or(0))
                                }
                                "；等级变化 " (w.changed)
                            }
                        }
                    }
                }
            }
        }
    }
}

fn bounded(n: Bounded, unit: &str) -> Markup {
    html! {
        @if n.complete {
            (n.count) (unit)
        } @else {
            "至少 " (n.count) (unit) "（数量较多，只统计了一部分）"
        }
    }
}

fn queues(dash: &Dashboard, reprint: &[ReprintItem], reviews: Bounded, patrols: Bounded) -> Markup {
    html! {
        section.card {
            h2 { "待办" }
            h3 { "待重新打印的码（" (dash.reprint_queue) "）" }
            @if reprint.is_empty() {
                p.muted { "所有在用的码都与当前等级一致。" }
            } @else {
                ul.rows {
                    @for r in reprint.iter().take(SHOWN) {
                        li {
                            a href={"/admin/merchants/" (r.merchant_id)} { (r.name) }
                            " 码上 " (grade_badge(r.printed_grade)) "，当前 " (grade_badge(r.grade))
                            " · " a href={"/merchants/" (r.merchant_id) "/print"} { "打印" }
                        }
                    }
                }
                @if reprint.len() > SHOWN { p.muted { "另有 " (reprint.len() - SHOWN) " 个。" } }
            }
            h3 { "待审核" }
            p id="pending-reviews" { a href="/admin/reviews" { (bounded(reviews, " 件待审核")) } }
            h3 { "逾期巡查" }
            p id="overdue-patrols" { a href="/admin/patrols" { (bounded(patrols, " 户逾期未巡查")) } }
        }
    }
}
