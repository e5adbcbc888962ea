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

/// Longest note of a patrol, in characters.
pub const MAX_PATROL_NOTE_CHARS: usize = 200;
/// Most hazards one patrol may record.
pub const MAX_PATROL_HAZARDS: u32 = 99;

/// What a patrol found at the shop's door: nothing (`ok`), hazards put
/// right on the spot (`fixed`), or hazards to put right by a deadline
/// (`deadline`); and a note for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatrolReport {
    pub hazards: u32,
    pub rectified: bool,
    pub deadline: Option<jiff::civil::Date>,
    pub note: Option<String>,
}

impl PatrolReport {
    /// The fields as typed (form or JSON): `result` one of `ok`, `fixed`,
    /// `deadline`; `hazards` 1-99 (default 1) unless `ok`; `deadline` a
    /// date from `today` on, required for `deadline`; `note` optional.
    pub fn parse(
        result: Option<&str>,
        hazards: Option<&str>,
        deadline: Option<&str>,
        note: Option<&str>,
        today: jiff::civil::Date,
    ) -> Result<PatrolReport, ApiError> {
        let count = || -> Result<u32, ApiError> {
            match blank(hazards) {
                None => Ok(1),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PATROL_HAZARDS).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "field `hazards`: expected 1 to {MAX_PATROL_HAZARDS} when the patrol found hazards, got `{}`",
                            crate::model::truncate(raw)
                        ))
                    }),
            }
        };
        let (hazards, rectified, deadline) = match blank(result) {
            Some("ok") => (0, true, None),
            Some("fixed") => (count()?, true, None),
            Some("deadline") => {
                let raw = blank(deadline).ok_or_else(|| {
                    bad("field `deadline`: required when hazards are to be put right by a date".into())
                })?;
                let d: jiff::civil::Date = raw.parse().map_err(|_| {
                    bad(format!(
                        "field `deadline`: expected YYYY-MM-DD, got `{}`",
                        crate::model::truncate(raw)
                    ))
                })?;
                if d < today {
                    return Err(bad(format!("field `deadline`: {d} is in the past")));
                }
                (count()?, false, Some(d))
            }
            _ => {
                return Err(bad(
                    "field `result`: expected ok (no hazards), fixed (put right on the spot) or deadline (to put right by a date)".into(),
                ))
            }
        };
        let note = match blank(note) {
            None => None,
            Some(n) => {
                crate::model::check_text(n, MAX_PATROL_NOTE_CHARS, crate::model::TextKind::Lines)
                    .map_err(|e| bad(format!("field `note`: {e}")))?;
                Some(n.to_owned())
            }
        };
        Ok(PatrolReport {
            hazards,
            rectified,
            deadline,
            note,
        })
    }
}

/// A field as typed, trimmed; `None` when absent or blank.
fn blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// Records a patrol of `merchant` today as an `inspection` record with
/// `"source": "patrol"`, through the records import (scope checked per
/// line, graded at once, audited as `records.import`), then audits it as
/// `patrol.record` with the note as reason. Returns the record's id. The
/// JSON API and the workbench both record patrols through here.
pub async fn record_patrol(
    state: &AppState,
    who: &crate::auth::Principal,
    merchant: &crate::model::Merchant,
    report: &PatrolReport,
) -> Result<String, ApiError> {
    let now = clock::now();
    let today = clock::today();
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| ApiError::Internal(anyhow::anyhow!("randomness: {e}")))?;
    let id = format!(
        "patrol-{}-{}",
        now.to_zoned(clock::zone()).strftime("%Y%m%d%H%M%S"),
        data_encoding::HEXLOWER.encode(&r)
    );
    let mut line = json!({
        "id": id, "merchant": merchant.id, "kind": "inspection", "date": today,
        "source": crate::grid::PATROL_SOURCE, "hazards": report.hazards, "rectified": report.rectified,
    });
    if report.hazards > 0 && report.rectified {
        line["rectified_on"] = json!(today);
    }
    if let Some(d) = report.deadline {
        line["deadline"] = json!(d);
    }
    let body = format!("{line}\n");
    let (import, _) =
        super::actions::import_records(state, who, body.as_bytes(), "patrol.jsonl").await?;
    if let Some(reject) = import.rejects.first() {
        return Err(if import.out_of_scope > 0 {
            ApiError::Forbidden(reject.reason.clone())
        } else {
            bad(format!("the patrol was not recorded: {}", reject.reason))
        });
    }
    state
        .store
        .append_audit(crate::model::AuditEntry {
            at: now,
            actor: who.name.clone(),
            action: "patrol.record".into(),
            target: merchant.id.to_string(),
            before: serde_json::Value::Null,
            after: json!({"record": id, "hazards": report.hazards, "rectified": report.rectified, "deadline": report.deadline}),
            reason: report.note.clone(),
        })
        .await?;
    tracing::info!(merchant.id = %merchant.id, actor = %who.name, hazards = report.hazards, "patrol recorded");
    Ok(id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatrolBody {
    merchant_id: String,
    result: String,
    hazards: Option<u32>,
    deadline: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/admin/patrols` `{"merchant_id", "result": "ok"|"fixed"|"deadline",
/// "hazards"?, "deadline"?, "note"?}` → `201 {"record_id", "grade"}`.
pub async fn create_patrol(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, 16 * 1024).await?;
    let shape = "{\"merchant_id\", \"result\", \"hazards\"?, \"deadline\"?, \"note\"?}";
    let value = super::actions::json_body(&body, shape)?;
    let b: PatrolBody =
        serde_json::from_value(value).map_err(|e| bad(format!("body: expected {shape}: {e}")))?;
    let id = crate::model::MerchantId::parse(&b.merchant_id)
        .map_err(|e| bad(format!("field `merchant_id`: {e}")))?;
    let merchant = super::actions::writable_merchant(&state, &who, &id).await?;
    let hazards = b.hazards.map(|h| h.to_string());
    let report = PatrolReport::parse(
        Some(&b.result),
        hazards.as_deref(),
        b.deadline.as_deref(),
        b.note.as_deref(),
        clock::today(),
    )?;
    let record_id = record_patrol(&state, &who, &merchant, &report).await?;
    let grade = state
        .store
        .projection(&id)
        .await?
        .map(|p| p.effective(clock::today()).0);
    Ok(HttpResponse::Created()
        .json(json!({"record_id": record_id, "merchant_id": id, "grade": grade})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patrol_report_is_read_from_its_fields_or_says_which_is_wrong() {
        let today: jiff::civil::Date = "2026-03-10".parse().unwrap();
        let ok = |r, h, d, n| PatrolReport::parse(r, h, d, n, today).unwrap();
        assert_eq!(
            ok(Some("ok"), Some("7"), Some("2026-04-01"), Some("  ")),
            PatrolReport {
                hazards: 0,
                rectified: true,
                deadline: None,
                note: None
            }
        );
        assert_eq!(
            ok(Some("fixed"), None, None, Some(" 已整改 ")),
            PatrolReport {
                hazards: 1,
                rectified: true,
                deadline: None,
                note: Some("已整改".into())
            }
        );
        assert_eq!(
            ok(Some("deadline"), Some("3"), Some("2026-03-10"), None),
            PatrolReport {
                hazards: 3,
                rectified: false,
                deadline: Some(today),
                note: None
            }
        );
        let long = "字".repeat(MAX_PATROL_NOTE_CHARS + 1);
        for (r, h, d, n, words) in [
            (None, None, None, None, "field `result`"),
            (Some("maybe"), None, None, None, "field `result`"),
            (Some("fixed"), Some("0"), None, None, "field `hazards`"),
            (Some("fixed"), Some("100"), None, None, "field `hazards`"),
            (Some("fixed"), Some("-1"), None, None, "field `hazards`"),
            (
                Some("deadline"),
                None,
                None,
                None,
                "field `deadline`: required",
            ),
            (
                Some("deadline"),
                None,
                Some("2026-02-30"),
                None,
                "expected YYYY-MM-DD",
            ),
            (
                Some("deadline"),
                None,
                Some("2026-03-09"),
                None,
                "in the past",
            ),
            (Some("ok"), None, None, Some("a\u{202e}b"), "field `note`"),
            (Some("ok"), None, None, Some(long.as_str()), "field `note`"),
        ] {
            let e = PatrolReport::parse(r, h, d, n, today)
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{r:?} {h:?} {d:?}: {e}");
        }
    }
}
