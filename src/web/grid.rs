//! Regulator endpoints of the grid (CONTRACT §7): the roster's import and
//! listing, an assistant's merchants, the unassigned ones, and an
//! assistant's patrol list. Reads take any regulator token (a region's
//! token sees its merchants only); the import is scoped by region and
//! audited.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::actions::{bad, read_body, MAX_IMPORT_BYTES};
use super::admin::retain_visible;
use super::error::ApiError;
use super::extract::Regulator;
use super::filters::{non_empty, number, query};
use super::state::AppState;
use crate::clock;
use crate::roster::{self, Role, StaffId};

/// Imports roster lines (JSONL body); each member must be in the caller's
/// regions as written and as stored.
pub async fn import_inspectors(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_IMPORT_BYTES).await?;
    let (members, rejects) = roster::read_jsonl_roster(&body[..], "body");
    let scope = who.scope.clone();
    let report = roster::import_members(
        state.store.as_ref(),
        "body",
        members,
        rejects,
        &move |r| scope.may_write(r),
        &who.name,
    )
    .await?;
    tracing::info!(actor = %who.name, imported = report.imported, rejected = report.rejected, "roster imported");
    let accepted = report.imported + report.unchanged > 0;
    Ok(if accepted || report.rejected == 0 {
        HttpResponse::Ok().json(report)
    } else if report.out_of_scope > 0 {
        HttpResponse::Forbidden().json(json!({
            "error": "forbidden",
            "message": format!(
                "nothing imported: {} line(s) concern people outside the regions token `{}` (scope {}) may change; see `rejects`",
                report.out_of_scope, who.name, who.scope.as_string()
            ),
            "rejects": report.rejects,
        }))
    } else {
        HttpResponse::BadRequest().json(json!({
            "error": "bad_request",
            "message": format!("nothing imported: {} line(s) rejected; see `rejects`", report.rejected),
            "rejects": report.rejects,
        }))
    })
}

/// The roster, every member.
pub async fn list_inspectors(
    state: web::Data<AppState>,
    _: Regulator,
) -> Result<HttpResponse, ApiError> {
    let members = roster::load(state.store.as_ref()).await?;
    Ok(HttpResponse::Ok().json(json!({ "total": members.len(), "members": members })))
}

fn staff_id(name: &str, raw: &str) -> Result<StaffId, ApiError> {
    StaffId::parse(raw).map_err(|e| bad(format!("query parameter `{name}`: {e}")))
}

#[derive(Debug, Deserialize)]
struct GridQuery {
    assistant: Option<String>,
    page: Option<String>,
}

/// `?assistant=ID`: that assistant's merchants with their names and live
/// grades; without it: the latest run and a page of unassigned merchants.
pub async fn grid(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: GridQuery = query(&req)?;
    let store = state.store.as_ref();
    let Some(raw) = non_empty(q.assistant) else {
        let run = crate::grid::latest_run(store).await?;
        let pages = run.as_ref().map_or(0, |r| r.unassigned_pages);
        let page = number("page", q.page, 1, 1_000_000, 1)?;
        let ids = crate::grid::unassigned_page(store, page as usize - 1).await?;
        let ids = retain_visible(store, &who, ids, |m| m.as_str()).await?;
        return Ok(HttpResponse::Ok().json(json!({
            "run": run, "page": page, "pages": pages, "unassigned": ids,
        })));
    };
    let id = staff_id("assistant", &raw)?;
    let grid = crate::grid::assistant_grid(store, &id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no grid for assistant `{id}`: not an active assistant at the latest `yisaozhi grid assign`"
        ))
    })?;
    let member = roster::member(store, Role::Assistant, &id).await?;
    let today = clock::today();
    let mut merchants = Vec::with_capacity(grid.merchants.len());
    for m in &grid.merchants {
        let p = store.projection(m).await?;
        if !p
            .as_ref()
            .is_some_and(|p| who.scope.may_see(&p.merchant.region))
        {
            continue;
        }
        merchants.push(json!({
            "id": m,
            "name": p.as_ref().map(|p| &p.merchant.name),
            "address": p.as_ref().map(|p| &p.merchant.address),
            "region": p.as_ref().map(|p| &p.merchant.region),
            "grade": p.as_ref().map(|p| p.effective(today).0),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({
        "assistant": {
            "id": grid.assistant, "region": grid.region,
            "name": member.as_ref().map(|m| &m.name), "unit": member.as_ref().map(|m| &m.unit),
        },
        "total": merchants.len(),
        "merchants": merchants,
    })))
}

#[derive(Debug, Deserialize)]
struct PatrolQuery {
    assistant: Option<String>,
    as_of: Option<String>,
    within: Option<String>,
}

/// An assistant's merchants due for a patrol by `as_of` (+ `within` days).
pub async fn patrols(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: PatrolQuery = query(&req)?;
    let raw = non_empty(q.assistant)
        .ok_or_else(|| bad("query parameter `assistant`: required (an assistant's id)".into()))?;
    let id = staff_id("assistant", &raw)?;
    let as_of = match non_empty(q.as_of) {
        None => clock::today(),
        Some(s) => s.parse().map_err(|_| {
            bad(format!(
                "query parameter `as_of`: expected YYYY-MM-DD, got `{}`",
                crate::model::truncate(&s)
            ))
        })?,
    };
    let within = number("within", q.within, 0, 366, 0)? as u32;
    let due = crate::grid::due_list(
        state.store.as_ref(),
        &id,
        as_of,
        within,
        state.rules.patrol(),
    )
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no grid for assistant `{id}`")))?;
    let due = retain_visible(state.store.as_ref(), &who, due, |d| d.merchant_id.as_str()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "assistant": id, "as_of": as_of, "within": within, "due": due,
    })))
}
