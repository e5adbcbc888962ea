//! Random inspection plans (CONTRACT §7): the public answer and page (the
//! seed, the weights, the merchants, teams by unit, results once they
//! arrive; never an inspector's name or id), and the regulators' endpoints
//! to draw a plan and read it whole.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::{bad, read_body};
use super::error::ApiError;
use super::extract::Regulator;
use super::pages::layout;
use super::state::AppState;
use crate::auth::{Principal, Scope};
use crate::clock;
use crate::model::{Grade, RegionCode};
use crate::plan::{milli_json, milli_text, Plan, PlanError, PlanRequest, PlanResult, Weights};
use crate::records::json_without_repeated_keys;
use crate::roster::cover_prefix;

/// Largest body of a plan request.
const MAX_PLAN_BODY_BYTES: usize = 16 * 1024;

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no plan `{}`", crate::model::truncate(name)))
}

fn weights_json(w: &Weights) -> Value {
    json!({"red": milli_json(w.red), "yellow": milli_json(w.yellow), "green": milli_json(w.green)})
}

fn results_json(results: &[PlanResult], merchant: &crate::model::MerchantId) -> Vec<Value> {
    results
        .iter()
        .filter(|r| &r.merchant_id == merchant)
        .map(|r| json!({"record_id": r.record_id, "date": r.date, "hazards": r.hazards, "rectified": r.rectified}))
        .collect()
}

/// Counts of the results: merchants inspected, of which with hazards, and
/// merchants still to inspect.
fn summary(plan: &Plan, results: &[PlanResult]) -> Value {
    let done = |f: &dyn Fn(&PlanResult) -> bool| {
        plan.entries
            .iter()
            .filter(|e| {
                results
                    .iter()
                    .any(|r| r.merchant_id == e.merchant_id && f(r))
            })
            .count()
    };
    let inspected = done(&|_| true);
    json!({
        "inspected": inspected,
        "with_hazards": done(&|r| r.hazards > 0),
        "pending": plan.entries.len() - inspected,
    })
}

/// The whole plan for regulators, weights as decimals as on the public
/// answer (the stored document keeps thousandths).
fn admin_json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
    v["weights"] = weights_json(&plan.weights);
    v["total_weight"] = milli_json(plan.total_weight);
    if let Some(entries) = v["entries"].as_array_mut() {
        for (e, stored) in entries.iter_mut().zip(&plan.entries) {
            e["weight"] = milli_json(stored.weight);
        }
    }
    v
}

/// The public form: teams by unit only.
fn public_json(plan: &Plan, results: &[PlanResult]) -> Value {
    let merchants: Vec<Value> = plan
        .entries
        .iter()
        .map(|e| {
            json!({
                "order": e.order, "merchant_id": e.merchant_id, "name": e.name,
                "address": e.address, "region": e.region, "grade": e.grade,
                "weight": milli_json(e.weight), "doubled": e.doubled,
                "team": e.team.as_ref().map(|t| t.iter().map(|m| json!({"unit": m.unit})).collect::<Vec<_>>()),
                "no_team": e.no_team,
                "results": results_json(results, &e.merchant_id),
            })
        })
        .collect();
    json!({
        "name": plan.name, "algorithm": format!("docs/PLAN.md version {}", plan.version),
        "seed": plan.seed, "as_of": plan.as_of, "region": plan.region,
        "weights": weights_json(&plan.weights), "inspectors_per_check": plan.inspectors_per_check,
        "size": plan.size, "drawn": plan.entries.len(), "candidates": plan.candidates,
        "total_weight": milli_json(plan.total_weight),
        "doubled_categories": plan.doubled_categories, "load_limit": plan.load_limit,
        "input_sha256": plan.input_sha256, "created_at": plan.created_at,
        "merchants": merchants, "results": summary(plan, results),
    })
}

/// `GET /api/v1/plans/{name}`.
pub async fn public_plan(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let found = state
        .plans
        .get(state.store.as_ref(), &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(HttpResponse::Ok().json(public_json(&found.plan, &found.results)))
}

/// Text that may wrap anywhere every 16 characters (a digest, a seed
/// without spaces), so that a phone never scrolls sideways for it.
fn breakable(text: &str) -> maud::Markup {
    let chars: Vec<char> = text.chars().collect();
    html! {
        @for (i, chunk) in chars.chunks(16).enumerate() {
            @if i > 0 { wbr; }
            (chunk.iter().collect::<String>())
        }
    }
}

fn grade_text(g: Grade) -> &'static str {
    match g {
        Grade::Green => "绿码",
        Grade::Yellow => "黄码",
        Grade::Red => "红码",
    }
}

fn plan_page(plan: &Plan, results: &[PlanResult]) -> maud::Markup {
    let w = &plan.weights;
    let done = results
        .iter()
        .map(|r| &r.merchant_id)
        .collect::<std::collections::HashSet<_>>()
        .len();
    layout(
        &format!("双随机抽查计划 {} - 一扫知", plan.name),
        html! {
            section {
                h1 { "双随机抽查计划：" (plan.name) }
                p.muted { "随机抽取检查对象、随机选派执法检查人员，抽查结果向社会公开。" }
                ul {
                    li { "随机种子：" code { (breakable(&plan.seed)) } }
                    li { "抽取基准日：" (plan.as_of) }
                    li { "抽查范围：" (plan.region.as_ref().map_or("全部地区".to_owned(), |r| format!("行政区划 {r}"))) }
                    li { "抽取权重：红码 " (milli_text(w.red)) "，黄码 " (milli_text(w.yellow)) "，绿码 " (milli_text(w.green))
                         "；近一年有抽检不合格的品类权重加倍" }
                    @if !plan.doubled_categories.is_empty() {
                        li { "加倍品类：" (plan.doubled_categories.join("、")) }
                    }
                    li { "每组执法人员：" (plan.inspectors_per_check) " 人，每人最多抽中 " (plan.load_limit) " 次" }
                    li { "候选商户 " (plan.candidates) " 户，抽取 " (plan.entries.len()) " 户，已检查 " (done) " 户" }
                }
                p.muted { "任何人可按公开的算法（docs/PLAN.md）用同一随机种子重新抽取核对；输入数据摘要 SHA-256："
                    br; code { (breakable(&plan.input_sha256)) } }
            }
            section {
                h3 { "抽查对象与检查组" }
                ol {
                    @for e in &plan.entries {
                        li {
                            strong { (e.name) } " (" (e.merchant_id) ") "
                            span { (grade_text(e.grade)) @if e.doubled { "·权重加倍" } }
                            br;
                            span.muted { (e.address) }
                            br;
                            @match &e.team {
                                Some(team) => { "检查组：" (team.iter().map(|m| m.unit.as_str()).collect::<Vec<_>>().join("、")) }
                                None => { (e.no_team.map_or("无法组队", |n| n.text())) }
                            }
                            br;
                            @let mine: Vec<&PlanResult> = results.iter().filter(|r| r.merchant_id == e.merchant_id).collect();
                            @if mine.is_empty() {
                                span.muted { "结果：待检查" }
                            } @else {
                                @for r in mine {
                                    span { "结果：" (r.date) " 检查，"
                                        @if r.hazards == 0 { "未发现问题" }
                                        @else { "发现隐患 " (r.hazards) " 处，" (if r.rectified { "已整改" } else { "整改中" }) } }
                                    br;
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /plans/{name}`: the public page.
pub async fn public_plan_page(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let html = |status: actix_web::http::StatusCode, page: maud::Markup| {
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(page.into_string())
    };
    Ok(match state.plans.get(state.store.as_ref(), &name).await? {
        Some(found) => html(
            actix_web::http::StatusCode::OK,
            plan_page(&found.plan, &found.results),
        ),
        None => html(
            actix_web::http::StatusCode::NOT_FOUND,
            layout(
                "未找到抽查计划 - 一扫知",
                html! { section { h1 { "未找到该抽查计划" } p { "请核对计划名称。" } } },
            ),
        ),
    })
}

/// `GET /api/v1/admin/plans`: every plan, newest first.
pub async fn list_plans(
    state: web::Data<AppState>,
    _: Regulator,
) -> Result<HttpResponse, ApiError> {
    let plans = crate::plan::list(state.store.as_ref()).await?;
    Ok(HttpResponse::Ok().json(json!({ "total": plans.len(), "plans": plans })))
}

/// `GET /api/v1/admin/plans/{name}`: the whole plan (inspectors by id and
/// name) and its results, read fresh.
pub async fn admin_plan(
    state: web::Data<AppState>,
    _: Regulator,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.as_ref();
    let plan = crate::plan::get(store, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let results = crate::plan::results(store, &plan).await?;
    let summary = summary(&plan, &results);
    Ok(HttpResponse::Ok()
        .json(json!({ "plan": admin_json(&plan), "results": results, "summary": summary })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    name: String,
    seed: String,
    size: u32,
    region: Option<String>,
    weights: Option<String>,
    inspectors_per_check: Option<u32>,
    as_of: Option<String>,
}

/// Whether `scope` may draw a plan over `region` (`None`: everywhere): a
/// scoped token only within its prefix, a read token never.
pub fn may_draw(scope: &Scope, region: Option<&RegionCode>) -> bool {
    match scope {
        Scope::Read => false,
        Scope::Write { region_prefix } => match region {
            None => region_prefix.is_empty(),
            Some(r) => cover_prefix(r).starts_with(region_prefix.as_str()),
        },
    }
}

/// A plan as asked for, its optional fields as typed (`None`: the
/// default), from a JSON body or a workbench form.
#[derive(Debug, Clone, Default)]
pub struct PlanFields<'a> {
    pub name: String,
    pub seed: String,
    pub size: u32,
    pub region: Option<&'a str>,
    pub weights: Option<&'a str>,
    pub inspectors_per_check: Option<u32>,
    pub as_of: Option<&'a str>,
}

/// Checks a plan's fields into a request `who` may draw: the region a
/// region code within the token's scope (every region only for an
/// unscoped write token), the weights as `red=4,yellow=2,green=1`, the
/// date as `YYYY-MM-DD` (default today); each error names its field.
pub fn plan_request(who: &Principal, f: PlanFields<'_>) -> Result<PlanRequest, ApiError> {
    let region = f
        .region
        .map(|r| RegionCode::parse(r).map_err(|e| bad(format!("field `region`: {e}"))))
        .transpose()?;
    if !may_draw(&who.scope, region.as_ref()) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` (scope {}) may not draw a plan over {}",
            who.name,
            who.scope.as_string(),
            region
                .as_ref()
                .map_or("every region".to_owned(), |r| format!("region {r}"))
        )));
    }
    let weights = match f.weights {
        None => Weights::default(),
        Some(w) => Weights::parse(w).map_err(|e| {
            bad(format!(
                "field `weights`{}",
                e.strip_prefix("weights").unwrap_or(&e)
            ))
        })?,
    };
    let as_of = match f.as_of {
        None => clock::today(),
        Some(d) => d.parse().map_err(|_| {
            bad(format!(
                "field `as_of`: expected YYYY-MM-DD, got `{}`",
                crate::model::truncate(d)
            ))
        })?,
    };
    Ok(PlanRequest {
        name: f.name,
        seed: f.seed,
        size: f.size,
        region,
        weights,
        team_size: f.inspectors_per_check.unwrap_or(2),
        as_of,
    })
}

/// Draws and stores the plan `req` as `who` (audited as `plan.create`):
/// the code behind `POST /api/v1/admin/plans` and the workbench's form.
pub async fn draw_plan(
    state: &AppState,
    who: &Principal,
    req: &PlanRequest,
) -> Result<Plan, ApiError> {
    let (plan, _) = crate::plan::create(state.store.as_ref(), req, &who.name)
        .await
        .map_err(|e| match e {
            PlanError::Store(e) => e.into(),
            PlanError::Exists(_) => ApiError::Conflict(e.to_string()),
            other => bad(other.to_string()),
        })?;
    tracing::info!(plan = %plan.name, actor = %who.name, drawn = plan.entries.len(), "plan drawn");
    Ok(plan)
}

/// `POST /api/v1/admin/plans`: draws and stores a plan (audited); `201`
/// with the whole plan.
pub async fn create_plan(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_PLAN_BODY_BYTES).await?;
    let expected = |e: &dyn std::fmt::Display| {
        bad(format!(
            "body: expected {{\"name\", \"seed\", \"size\", \"region\"?, \"weights\"?, \"inspectors_per_check\"?, \"as_of\"?}}: {e}"
        ))
    };
    let value = std::str::from_utf8(&body)
        .map_err(|e| expected(&e))
        .and_then(|t| json_without_repeated_keys(t).map_err(|e| expected(&e)))?;
    let b: PlanBody = serde_json::from_value(value).map_err(|e| expected(&e))?;
    let plan_req = plan_request(
        &who,
        PlanFields {
            name: b.name,
            seed: b.seed,
            size: b.size,
            region: b.region.as_deref(),
            weights: b.weights.as_deref(),
            inspectors_per_check: b.inspectors_per_check,
            as_of: b.as_of.as_deref(),
        },
    )?;
    let plan = draw_plan(&state, &who, &plan_req).await?;
    Ok(HttpResponse::Created()
        .json(json!({ "plan": admin_json(&plan), "results": [], "summary": summary(&plan, &[]) })))
}
