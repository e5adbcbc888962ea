//! `/admin/tips`: consumer tips (消费提示) in the staff member's regions —
//! in force, still to come and ended — with a form to publish one and a
//! button to withdraw each the staff member may change. Both forms carry
//! the session's `csrf` and run the JSON API's code (`web::tips`): the same
//! checks, scope and audit entries with the token's name.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::errors::PageError;
use super::forms::{read_empty_form, read_form};
use super::layout::{csrf_field, page, see_other, Nav};
use super::staff::Staff;
use crate::auth::Scope;
use crate::clock;
use crate::tips::{self, covered_prefix, Draft, Tip};
use crate::web::actions::bad;
use crate::web::filters::query;
use crate::web::state::AppState;
use crate::web::tips::{delete_tip, publish_tip};

/// Whether a tip reaches merchants of the regions `staff` sees.
fn concerns(tip: &Tip, visible: &str) -> bool {
    tip.regions.is_empty()
        || tip.regions.iter().any(|r| {
            let covered = covered_prefix(r);
            covered.starts_with(visible) || visible.starts_with(covered)
        })
}

/// The region the publish form suggests: the staff member's own (a
/// prefix padded with zeros, which covers it); empty for every region.
fn suggested_region(scope: &Scope) -> String {
    match scope.visible_prefix() {
        "" => String::new(),
        p => format!("{p:0<6}"),
    }
}

/// A list field of the form: items separated by spaces, commas or `、`.
fn items(raw: &str) -> Vec<String> {
    raw.split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ';' | '；'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

fn listed(staff: &Staff, tip: &Tip) -> Markup {
    let regions = if tip.regions.is_empty() {
        "全部辖区".to_owned()
    } else {
        tip.regions
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("、")
    };
    let categories = if tip.categories.is_empty() {
        "全部类别".to_owned()
    } else {
        tip.categories.join("、")
    };
    html! {
        li.tip {
            strong { (tip.text) }
            br;
            span.muted {
                (tip.from) " 至 " (tip.until) " · 辖区 " (regions) " · 类别 " (categories)
                " · 发布人 " (tip.actor)
            }
            @if tip.within(&staff.scope) {
                form.inline method="post" action={"/admin/tips/" (tip.id) "/withdraw"} {
                    (csrf_field(staff))
                    " "
                    button.danger type="submit" { "撤回" }
                }
            }
        }
    }
}

fn section(staff: &Staff, title: &str, tips: &[&Tip]) -> Markup {
    html! {
        h3 { (title) "（" (tips.len()) "）" }
        @if tips.is_empty() {
            p.muted { "无。" }
        } @else {
            ul.rows { @for t in tips { (listed(staff, t)) } }
        }
    }
}

fn publish_form(staff: &Staff) -> Markup {
    let today = clock::today();
    html! {
        section.card {
            h2 { "发布消费提示" }
            @if matches!(staff.scope, Scope::Read) {
                p.muted { "只读令牌不能发布。" }
            } @else {
                form.grid method="post" action="/admin/tips" {
                    (csrf_field(staff))
                    div.wide {
                        label for="tip-text" { "提示内容（一行，最多 " (tips::MAX_TEXT_CHARS) " 字）" }
                        textarea #tip-text name="text" required maxlength=(tips::MAX_TEXT_CHARS) {}
                    }
                    div {
                        label for="tip-regions" { "辖区代码（空格或逗号分隔；以0结尾覆盖下级）" }
                        input #tip-regions name="regions" value=(suggested_region(&staff.scope)) inputmode="numeric";
                    }
                    div {
                        label for="tip-categories" { "经营类别（留空为全部）" }
                        input #tip-categories name="categories";
                    }
                    div {
                        label for="tip-from" { "生效日期" }
                        input #tip-from type="date" name="from" value=(today) required;
                    }
                    div {
                        label for="tip-until" { "截止日期（含当天）" }
                        input #tip-until type="date" name="until" required;
                    }
                    div { button type="submit" { "发布" } }
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
    let done: Done = query(&req).unwrap_or_default();
    let all = tips::all(&*state.store).await?;
    let visible = staff.scope.visible_prefix();
    let today = clock::today();
    let mine: Vec<&Tip> = all.iter().filter(|t| concerns(t, visible)).collect();
    let in_force: Vec<&Tip> = mine.iter().copied().filter(|t| t.in_force(today)).collect();
    let coming: Vec<&Tip> = mine.iter().copied().filter(|t| t.from > today).collect();
    let ended: Vec<&Tip> = mine.iter().copied().filter(|t| t.until < today).collect();
    let body = html! {
        @match done.done.as_deref() {
            Some("published") => p.done { "已发布。扫码页将在1秒内显示。" },
            Some("withdrawn") => p.done { "已撤回。" },
            _ => {},
        }
        (publish_form(&staff))
        section.card {
            h1 { "消费提示" }
            @if !visible.is_empty() {
                p.muted { "只显示涉及辖区 " (visible) " 的提示。" }
            }
            (section(&staff, "生效中", &in_force))
            (section(&staff, "未开始", &coming))
            (section(&staff, "已结束", &ended))
        }
    };
    Ok(page(&staff, Nav::Tips, "消费提示", body))
}

#[derive(Debug, Deserialize)]
struct TipForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    regions: String,
    #[serde(default)]
    categories: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

pub async fn publish(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form: TipForm = read_form(&staff, &req, payload).await?;
    let draft = Draft::from_json(json!({
        "text": form.text,
        "regions": items(&form.regions),
        "categories": items(&form.categories),
        "from": form.from.trim(),
        "until": form.until.trim(),
    }))
    .map_err(|e| bad(e.to_string()))?;
    publish_tip(&state, &staff, draft).await?;
    Ok(see_other("/admin/tips?done=published"))
}

pub async fn withdraw(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    read_empty_form(&staff, &req, payload).await?;
    delete_tip(&state, &staff, &id).await?;
    Ok(see_other("/admin/tips?done=withdrawn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_fields_split_on_spaces_commas_and_enumeration_marks() {
        assert_eq!(
            items(" 511504, 511502，511500、 "),
            ["511504", "511502", "511500"]
        );
        assert!(items("  ").is_empty());
    }

    #[test]
    fn a_township_is_offered_its_own_region() {
        let s = |raw| Scope::parse(raw).unwrap();
        assert_eq!(suggested_region(&s("write:5115")), "511500");
        assert_eq!(suggested_region(&s("write:511504")), "511504");
        assert_eq!(suggested_region(&s("write")), "");
    }
}
