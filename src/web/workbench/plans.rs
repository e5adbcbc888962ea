//! `/admin/plans`: the stored random inspection plans (双随机) with links
//! to their public pages, and a form that draws one through the API's code
//! (`web::plans::{plan_request, draw_plan}`: same checks, same scope rule,
//! same audit entry). Bad input is answered on this page, the form filled
//! as typed, with the one-line reason.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::errors::PageError;
use super::forms::read_form;
use super::layout::{csrf_field, page, see_other, Nav};
use super::staff::Staff;
use crate::auth::Scope;
use crate::clock;
use crate::model::RegionCode;
use crate::plan::{PlanListItem, Weights, MAX_SIZE, MAX_TEAM};
use crate::web::actions::bad;
use crate::web::error::ApiError;
use crate::web::filters::{non_empty, query};
use crate::web::plans::{draw_plan, may_draw, plan_request, PlanFields};
use crate::web::state::AppState;

/// Plans listed on the page (newest first).
const LISTED: usize = 200;

/// The form's fields as typed (kept to fill the form again after an error).
#[derive(Debug, Default, Deserialize)]
struct DrawForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    seed: String,
    #[serde(default)]
    size: String,
    region: Option<String>,
    weights: Option<String>,
    inspectors_per_check: Option<String>,
    as_of: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Shown {
    done: Option<String>,
}

fn whole(field: &str, raw: Option<&str>, max: u32) -> Result<Option<u32>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<u32>().map(Some).map_err(|_| {
        bad(format!(
            "field `{field}`: expected a whole number from 1 to {max}, got `{}`",
            crate::model::truncate(raw)
        ))
    })
}

fn list(plans: &[PlanListItem]) -> Markup {
    html! {
        @if plans.is_empty() {
            p.muted { "还没有抽查计划。" }
        } @else {
            ul.rows {
                @for p in plans.iter().take(LISTED) {
                    li.plan {
                        a href={"/plans/" (p.name)} { strong { (p.name) } }
                        br;
                        span.muted {
                            "基准日 " (p.as_of) " · "
                            (p.region.as_ref().map_or("全部地区".to_owned(), |r| format!("辖区 {r}")))
                            " · 抽取 " (p.drawn) " 户 · 创建于 "
                            (p.created_at.to_zoned(clock::zone()).strftime("%Y-%m-%d %H:%M"))
                        }
                    }
                }
            }
            @if plans.len() > LISTED { p.muted { "只列出最近 " (LISTED) " 个，共 " (plans.len()) " 个。" } }
        }
    }
}

fn form(staff: &Staff, f: &DrawForm) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        form.grid method="post" action="/admin/plans" {
            (csrf_field(staff))
            div {
                label for="pl-name" { "计划名称（字母、数字、. _ -）" }
                input #pl-name name="name" required maxlength="64" value=(f.name);
            }
            div {
                label for="pl-seed" { "随机种子（公开，任何人可复核）" }
                input #pl-seed name="seed" required maxlength="128" value=(f.seed);
            }
            div {
                label for="pl-size" { "抽取户数（1–" (MAX_SIZE) "）" }
                input #pl-size name="size" type="number" min="1" max=(MAX_SIZE) required inputmode="numeric" value=(f.size);
            }
            div {
                label for="pl-region" { "辖区代码（可不填：全部）" }
                input #pl-region name="region" inputmode="numeric" maxlength="6" value=(v(&f.region));
            }
            div {
                label for="pl-weights" { "权重（可不填）" }
                input #pl-weights name="weights" placeholder=(Weights::default().to_text()) value=(v(&f.weights));
            }
            div {
                label for="pl-team" { "每组执法人员（1–" (MAX_TEAM) "，默认 2）" }
                input #pl-team name="inspectors_per_check" type="number" min="1" max=(MAX_TEAM) inputmode="numeric" value=(v(&f.inspectors_per_check));
            }
            div {
                label for="pl-asof" { "抽取基准日（可不填：今天）" }
                input #pl-asof name="as_of" type="date" value=(v(&f.as_of));
            }
            div { button type="submit" { "抽取并公开" } }
        }
    }
}

/// The page: a notice, the form (for staff who may draw) and the list.
async fn render(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<Markup>,
    typed: &DrawForm,
) -> Result<HttpResponse, PageError> {
    let plans = crate::plan::list(state.store.as_ref()).await?;
    let body = html! {
        @if let Some(n) = notice { (n) }
        section.card {
            h1 { "抽查计划" }
            p.muted { "“双随机、一公开”：按当前等级加权随机抽取商户（近一年有抽检不合格的品类权重加倍），再随机选派覆盖该辖区的执法人员（不派其协管员）。计划连同种子公开，任何人可按 docs/PLAN.md 重新抽取核对。" }
            @if matches!(staff.scope, Scope::Write { .. }) {
                (form(staff, typed))
            } @else {
                p.notice { "只读令牌不能抽取计划。" }
            }
        }
        section.card {
            h2 { "已公开的计划（" (plans.len()) "）" }
            (list(&plans))
        }
    };
    let mut res = page(staff, Nav::Plans, "抽查计划", body);
    *res.status_mut() = status;
    Ok(res)
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let shown: Shown = query(&req)?;
    let notice = (shown.done.as_deref() == Some("drawn")).then(|| {
        html! { p.done role="status" { "已抽取并公开，见下方列表中最新的一个。" } }
    });
    // A token of one region draws within it: its region, filled in.
    let region = match &staff.scope {
        Scope::Write { region_prefix } if !region_prefix.is_empty() => {
            let padded = format!("{region_prefix:0<6}");
            RegionCode::parse(&padded)
                .ok()
                .filter(|r| may_draw(&staff.scope, Some(r)))
                .map(|_| padded)
        }
        _ => None,
    };
    let typed = DrawForm {
        size: "10".into(),
        region,
        ..DrawForm::default()
    };
    render(&state, &staff, StatusCode::OK, notice, &typed).await
}

/// `POST /admin/plans` (form: name, seed, size, region, weights,
/// inspectors_per_check, as_of, csrf).
pub async fn draw(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let f: DrawForm = read_form(&staff, &req, payload).await?;
    let drawn = async {
        let size = whole("size", Some(&f.size), MAX_SIZE)?
            .ok_or_else(|| bad(format!("field `size`: required, 1 to {MAX_SIZE}")))?;
        let team = whole(
            "inspectors_per_check",
            f.inspectors_per_check.as_deref(),
            MAX_TEAM,
        )?;
        let (region, weights, as_of) = (
            non_empty(f.region.clone()),
            non_empty(f.weights.clone()),
            non_empty(f.as_of.clone()),
        );
        let req = plan_request(
            &staff,
            PlanFields {
                name: f.name.trim().to_owned(),
                seed: f.seed.clone(),
                size,
                region: region.as_deref(),
                weights: weights.as_deref(),
                inspectors_per_check: team,
                as_of: as_of.as_deref(),
            },
        )?;
        draw_plan(&state, &staff, &req).await
    }
    .await;
    match drawn {
        Ok(_) => Ok(see_other("/admin/plans?done=drawn")),
        Err(ApiError::Internal(e)) => Err(PageError::internal(e)),
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            let notice = html! {
                p.notice role="alert" { "未抽取：" (e.to_string()) }
            };
            render(&state, &staff, status, Some(notice), &f).await
        }
    }
}
