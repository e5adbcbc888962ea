//! `/admin`: the dashboard of the staff member's regions.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};

use super::charts;
use super::dashboard_data::{gather, DashboardData};
use super::errors::PageError;
use super::layout::{grade_badge, page, Nav};
use super::staff::Staff;
use crate::clock;
use crate::model::Grade;
use crate::web::state::AppState;

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, PageError> {
    let data = gather(
        state.store.as_ref(),
        staff.scope.visible_prefix(),
        clock::today(),
    )
    .await?;
    Ok(page(&staff, Nav::Dashboard, "概览", render(&staff, &data)))
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        return "—".into();
    }
    format!("{:.1}%", n as f64 * 100.0 / total as f64)
}

fn counts(data: &DashboardData) -> Markup {
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

fn regions(data: &DashboardData) -> Markup {
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

fn changes(data: &DashboardData) -> Markup {
    html! {
        section.card {
            h2 { "本周等级变化" }
            p.muted { "近7天人工调整（改判）带来的等级变化：" (data.changes.len()) " 次。" }
            @if !data.changes.is_empty() {
                ul.rows {
                    @for c in data.changes.iter().take(10) {
                        li {
                            a href={"/admin/merchants/" (c.merchant)} { (c.name) }
                            " "
                            @if let Some(from) = c.from { (grade_badge(from)) " → " }
                            (grade_badge(c.to))
                            br;
                            span.muted { (c.at.to_zoned(clock::zone()).strftime("%Y-%m-%d %H:%M")) " · " (c.actor) }
                        }
                    }
                }
            }
        }
    }
}

fn trend(data: &DashboardData) -> Markup {
    let known = data.trend.iter().filter(|w| w.counts.is_some()).count();
    html! {
        section.card {
            h2 { "近12周趋势" }
            (charts::trend(&data.trend))
            @if known < 2 {
                p.muted { "每周的等级分布从每日统计开始累积；目前只有本周（当前）的数据，“—”表示那一周没有数据。" }
            }
        }
    }
}

fn queues(data: &DashboardData) -> Markup {
    html! {
        section.card {
            h2 { "待办" }
            h3 { "待重新打印的码（" (data.reprint.len()) "）" }
            @if data.reprint.is_empty() {
                p.muted { "所有在用的码都与当前等级一致。" }
            } @else {
                ul.rows {
                    @for r in data.reprint.iter().take(10) {
                        li {
                            a href={"/admin/merchants/" (r.merchant_id)} { (r.name) }
                            " 码上 " (grade_badge(r.printed_grade)) "，当前 " (grade_badge(r.grade))
                            " · " a href={"/merchants/" (r.merchant_id) "/print"} { "打印" }
                        }
                    }
                }
                @if data.reprint.len() > 10 { p.muted { "另有 " (data.reprint.len() - 10) " 个。" } }
            }
            h3 { "待审核" }
            @match data.pending_reviews {
                Some(n) => p { a href="/admin/reviews" { (n) " 件待审核" } },
                None => p.muted { "商户自查、回应和信用修复的审核尚未启用。" a href="/admin/reviews" { "查看" } },
            }
            h3 { "逾期巡查" }
            @match data.overdue_patrols {
                Some(n) => p { a href="/admin/patrols" { (n) " 户逾期未巡查" } },
                None => p.muted { "网格巡查尚未启用。" a href="/admin/patrols" { "查看" } },
            }
        }
    }
}

fn render(staff: &Staff, data: &DashboardData) -> Markup {
    html! {
        @if !staff.scope.visible_prefix().is_empty() {
            p.muted { "只显示辖区 " (staff.scope.visible_prefix()) " 的数据。" }
        }
        (counts(data))
        (queues(data))
        (regions(data))
        (changes(data))
        (trend(data))
    }
}
