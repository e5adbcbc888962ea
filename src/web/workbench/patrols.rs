//! `/admin/patrols`: a grid assistant's due and overdue merchants, for a
//! phone at the shop's door. The roster does not link staff tokens to
//! assistants, so the page offers the active assistants in the staff
//! member's regions (`?assistant=ID`); the list is the API's
//! (`grid::due_list`, most overdue first), and "记录巡查" records a patrol
//! through the API's code (`web::grid::record_patrol`): an `inspection`
//! record with `"source": "patrol"`, graded at once, audited.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::errors::PageError;
use super::forms::read_form;
use super::layout::{csrf_field, grade_badge, page, see_other, Nav};
use super::staff::Staff;
use crate::clock;
use crate::grid::PatrolDue;
use crate::roster::{self, Member, Role, StaffId};
use crate::web::actions::{bad, writable_merchant};
use crate::web::error::ApiError;
use crate::web::extract::MerchantPath;
use crate::web::filters::{non_empty, number, query};
use crate::web::grid::{record_patrol, PatrolReport, MAX_PATROL_HAZARDS, MAX_PATROL_NOTE_CHARS};
use crate::web::state::AppState;

#[derive(Debug, Deserialize)]
struct Shown {
    assistant: Option<String>,
    within: Option<String>,
    done: Option<String>,
}

/// How far ahead the list may look, in days (the choices offered).
const WITHIN: [(u64, &str); 3] = [
    (0, "今天到期和逾期"),
    (7, "含 7 天内到期"),
    (30, "含 30 天内到期"),
];

/// The active assistants in the regions `staff` sees, by id.
async fn assistants(state: &AppState, staff: &Staff) -> Result<Vec<Member>, PageError> {
    let members = roster::load(state.store.as_ref()).await?;
    Ok(roster::active(&members, Role::Assistant)
        .into_iter()
        .filter(|m| staff.scope.may_see(&m.region))
        .cloned()
        .collect())
}

/// The assistant of `raw`, if on the list `staff` may pick from.
fn chosen<'a>(list: &'a [Member], raw: &str) -> Result<&'a Member, PageError> {
    let id = StaffId::parse(raw).map_err(|e| bad(format!("query parameter `assistant`: {e}")))?;
    list.iter().find(|m| m.id == id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no active assistant `{id}` in the regions this token sees"
        ))
        .into()
    })
}

fn selector(list: &[Member], current: Option<&Member>, within: u64) -> Markup {
    html! {
        form.grid method="get" action="/admin/patrols" {
            div {
                label for="pa-assistant" { "协管员" }
                select #pa-assistant name="assistant" required {
                    option value="" { "请选择" }
                    @for m in list {
                        option value=(m.id) selected[current.is_some_and(|c| c.id == m.id)] {
                            (m.name) "（" (m.id) "，" (m.unit) "）"
                        }
                    }
                }
            }
            div {
                label for="pa-within" { "范围" }
                select #pa-within name="within" {
                    @for (days, label) in WITHIN {
                        option value=(days) selected[days == within] { (label) }
                    }
                }
            }
            div { button type="submit" { "查看" } }
        }
    }
}

fn when(d: &PatrolDue) -> Markup {
    html! {
        @if d.overdue_days > 0 {
            strong.overdue { "逾期 " (d.overdue_days) " 天" }
        } @else if d.due_on <= clock::today() {
            strong { "今天到期" }
        } @else {
            span { (d.due_on) " 到期" }
        }
        span.muted {
            " · 上次巡查 "
            @match d.last_patrol { Some(l) => (l), None => "无记录" }
        }
    }
}

/// One merchant on the list, with its patrol form.
fn row(staff: &Staff, assistant: &StaffId, i: usize, d: &PatrolDue, writable: bool) -> Markup {
    let id = |what: &str| format!("p{i}-{what}");
    html! {
        li.patrol id={"patrol-" (d.merchant_id)} {
            p {
                a href={"/admin/merchants/" (d.merchant_id)} { strong { (if d.name.is_empty() { d.merchant_id.as_str() } else { d.name.as_str() }) } }
                " "
                @if let Some(g) = d.grade { (grade_badge(g)) }
                br;
                span.muted { (d.address) }
                br;
                (when(d))
            }
            @if writable {
                details {
                    summary { "记录巡查" }
                    form method="post" action={"/admin/patrols/" (d.merchant_id)} {
                        (csrf_field(staff))
                        input type="hidden" name="assistant" value=(assistant);
                        fieldset {
                            legend { "巡查结果" }
                            label.row for=(id("ok")) { input id=(id("ok")) type="radio" name="result" value="ok" required; "未发现问题" }
                            label.row for=(id("fixed")) { input id=(id("fixed")) type="radio" name="result" value="fixed"; "发现隐患，已当场整改" }
                            label.row for=(id("deadline")) { input id=(id("deadline")) type="radio" name="result" value="deadline"; "发现隐患，限期整改" }
                        }
                        div {
                            div {
                                label for=(id("hazards")) { "隐患数（发现隐患时）" }
                                input id=(id("hazards")) type="number" name="hazards" min="1" max=(MAX_PATROL_HAZARDS) value="1" inputmode="numeric";
                            }
                            div {
                                label for=(id("due")) { "整改期限（限期整改时）" }
                                input id=(id("due")) type="date" name="deadline" min=(clock::today());
                            }
                        }
                        label for=(id("note")) { "备注（可不填，最多 " (MAX_PATROL_NOTE_CHARS) " 字，记入操作记录）" }
                        textarea id=(id("note")) name="note" maxlength=(MAX_PATROL_NOTE_CHARS) {}
                        button type="submit" { "保存巡查记录" }
                    }
                }
            }
        }
    }
}

pub async fn page_handler(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let shown: Shown = query(&req)?;
    let within = number("within", shown.within, 0, 366, 0)?;
    let list = assistants(&state, &staff).await?;
    let current = match non_empty(shown.assistant) {
        Some(raw) => Some(chosen(&list, &raw)?),
        None if list.len() == 1 => list.first(),
        None => None,
    };
    let mut rows = Vec::new();
    let mut due_count = (0usize, 0usize);
    if let Some(a) = current {
        let store = state.store.as_ref();
        let today = clock::today();
        let due = crate::grid::due_list(store, &a.id, today, within as u32, state.rules.patrol())
            .await?
            .unwrap_or_default();
        for (i, d) in due.iter().enumerate() {
            let writable = store
                .merchant(&d.merchant_id)
                .await?
                .is_some_and(|m| staff.scope.may_write(&m.region));
            if d.overdue_days > 0 {
                due_count.0 += 1;
            } else if d.due_on <= today {
                due_count.1 += 1;
            }
            rows.push(row(&staff, &a.id, i, d, writable));
        }
    }
    let body = html! {
        @if shown.done.as_deref() == Some("patrol") {
            p.done role="status" { "已记录巡查，并已按新记录重新评定等级。" }
        }
        section.card {
            h1 { "巡查" }
            p.muted { "按当前等级确定巡查频次（红码 " (state.rules.patrol().red) " 天、黄码 " (state.rules.patrol().yellow) " 天、绿码 " (state.rules.patrol().green) " 天一次）。逾期的排在最前。" }
            @if list.is_empty() {
                p.notice { "您的辖区内没有在岗的协管员（请先导入人员名单并运行 yisaozhi grid assign）。" }
            } @else {
                (selector(&list, current, within))
            }
        }
        @if let Some(a) = current {
            section.card {
                h2 { (a.name) " 的巡查清单" }
                p { "逾期 " strong { (due_count.0) } " 户，今天到期 " strong { (due_count.1) } " 户，共列出 " (rows.len()) " 户。" }
                @if rows.is_empty() {
                    p.muted { "没有到期的巡查。" }
                } @else {
                    ul.rows { @for r in rows { (r) } }
                }
            }
        }
    };
    Ok(page(&staff, Nav::Patrols, "巡查", body))
}

#[derive(Debug, Deserialize)]
struct PatrolForm {
    assistant: Option<String>,
    result: Option<String>,
    hazards: Option<String>,
    deadline: Option<String>,
    note: Option<String>,
}

/// `POST /admin/patrols/{id}` (form: assistant, result, hazards, deadline,
/// note, csrf): 303 back to the assistant's list.
pub async fn record(
    state: web::Data<AppState>,
    staff: Staff,
    id: Result<MerchantPath, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: PatrolForm = read_form(&staff, &req, payload).await?;
    let id = id?;
    let merchant = writable_merchant(&state, &staff, &id).await?;
    let report = PatrolReport::parse(
        form.result.as_deref(),
        form.hazards.as_deref(),
        form.deadline.as_deref(),
        form.note.as_deref(),
        clock::today(),
    )?;
    record_patrol(&state, &staff, &merchant, &report).await?;
    let back = match non_empty(form.assistant).and_then(|a| StaffId::parse(&a).ok()) {
        Some(a) => format!("/admin/patrols?assistant={a}&done=patrol"),
        None => "/admin/patrols?done=patrol".to_owned(),
    };
    Ok(see_other(&back))
}
