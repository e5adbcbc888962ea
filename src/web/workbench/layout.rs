//! The workbench's shared layout: one style sheet (allowed by hash in the
//! pages' content security policy, which also lets forms post to this
//! service and nowhere else), the navigation, and the answer's headers
//! (`Cache-Control: no-store`: pages hold personal data and session
//! tokens). Mobile first: usable at 390 px, nothing wider than the screen.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::staff::Staff;
use crate::auth::Scope;
use crate::model::Grade;
use crate::web::security_headers::content_security_policy;

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;color:#1b1b1b;background:#f4f5f7;overflow-wrap:anywhere}\
header.top{background:#0b3d91;color:#fff;padding:.5rem .75rem;display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:center}\
header.top a{color:#fff}.brand{font-weight:700;text-decoration:none;margin-right:auto}\
header.top nav{display:flex;flex-wrap:wrap;gap:.1rem .9rem;width:100%;order:3}header.top nav a{text-decoration:none;padding:.2rem 0}\
header.top nav a[aria-current]{border-bottom:2px solid #fff;font-weight:600}\
.who{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;font-size:.9rem;margin:0}\
.who button{padding:.15rem .6rem;background:#fff;color:#0b3d91}\
main{max-width:64rem;margin:0 auto;padding:.25rem .5rem 2rem}\
.card{background:#fff;margin:.6rem 0;padding:.8rem 1rem;border-radius:.5rem}\
h1{font-size:1.3rem;margin:.2rem 0 .5rem}h2{font-size:1.1rem;margin:.1rem 0 .5rem}h3{font-size:1rem;margin:.6rem 0 .3rem}\
.muted{color:#5a5f66;font-size:.9rem}\
.grade{display:inline-block;padding:0 .45rem;border-radius:.3rem;color:#fff;font-size:.9rem;white-space:nowrap}\
.green{background:#1e7e3e}.yellow{background:#f2b705;color:#1b1b1b}.red{background:#c62119}\
.counts{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.5rem}.counts>div{background:#f4f5f7;border-radius:.4rem;padding:.4rem .6rem}\
.counts b{display:block;font-size:1.4rem}\
ul.rows{list-style:none;margin:0;padding:0}ul.rows>li{border-top:1px solid #e3e5e8;padding:.5rem 0}\
form.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5rem,1fr));gap:.5rem .75rem;align-items:end}\
label{display:block;font-size:.9rem;color:#33373d}\
input,select,textarea{width:100%;font:inherit;padding:.4rem;border:1px solid #8a9097;border-radius:.3rem;background:#fff;color:#1b1b1b}\
textarea{min-height:4.5rem}input[type=checkbox],input[type=radio]{width:auto;margin:0 .4rem 0 0}fieldset{border:1px solid #c9ccd1;border-radius:.3rem;margin:0 0 .6rem}.wide{grid-column:1/-1}\
button{font:inherit;padding:.45rem .9rem;border:0;border-radius:.3rem;background:#0b57d0;color:#fff;cursor:pointer}\
button.danger{background:#c62119}button.quiet{background:#5a5f66}\
:focus-visible{outline:3px solid #f2b705;outline-offset:2px}\
.pager{display:flex;justify-content:space-between;gap:.5rem;margin-top:.5rem}\
.timeline{list-style:none;margin:0;padding:0 0 0 1rem;border-left:3px solid #c9ccd1}\
.timeline li{position:relative;margin:0 0 .6rem;padding-left:.3rem}\
.timeline li::before{content:'';position:absolute;left:-1.5rem;top:.45rem;width:.75rem;height:.75rem;border-radius:50%;background:#0b57d0}\
.notice{background:#fff4d6;border-left:4px solid #f2b705;padding:.5rem .75rem}\
.done{background:#e3f4e8;border-left:4px solid #1e7e3e;padding:.5rem .75rem}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}dl.facts dt{color:#5a5f66}dl.facts dd{margin:0}\
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}form.inline{display:inline}\
svg{display:block;width:100%;max-width:36rem;height:auto}svg text{font-size:12px;fill:#1b1b1b}\
.overdue{color:#c62119}details>summary{cursor:pointer;font-weight:600;padding:.35rem 0;color:#0b57d0}details form>*{margin:.35rem 0}legend{font-size:.9rem}.review form{margin:.6rem 0}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem;margin:.2rem 0;background:#f4f5f7;padding:.3rem}";

/// The workbench's pages: this style sheet, forms to this service only.
fn csp() -> HeaderValue {
    static VALUE: OnceLock<HeaderValue> = OnceLock::new();
    VALUE
        .get_or_init(|| {
            HeaderValue::from_str(&content_security_policy(&[CSS], "'self'"))
                .expect("a policy is ASCII")
        })
        .clone()
}

/// A page of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Merchants,
    Audit,
    Import,
    Reviews,
    Patrols,
    Plans,
    Tips,
    /// A page reached from another (a merchant's).
    Other,
}

const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Dashboard, "/admin", "概览"),
    (Nav::Merchants, "/admin/merchants", "商户"),
    (Nav::Audit, "/admin/audit", "审计日志"),
    (Nav::Import, "/admin/import", "导入"),
    (Nav::Reviews, "/admin/reviews", "审核"),
    (Nav::Patrols, "/admin/patrols", "巡查"),
    (Nav::Plans, "/admin/plans", "抽查计划"),
    (Nav::Tips, "/admin/tips", "消费提示"),
];

/// What a scope allows, in words.
pub fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Read => "只读（全部辖区）".into(),
        Scope::Write { region_prefix } if region_prefix.is_empty() => "全部辖区".into(),
        Scope::Write { region_prefix } => format!("辖区 {region_prefix}"),
    }
}

/// A grade as a coloured label with its words (never by colour alone).
pub fn grade_badge(g: Grade) -> Markup {
    html! { span class={"grade " (g.name())} { (g.label_zh()) } }
}

fn document(title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                meta name="robots" content="noindex";
                link rel="icon" href="data:,";
                title { (title) " - 一扫知工作台" }
                style { (PreEscaped(CSS)) }
            }
            body {
                (header)
                main { (body) }
            }
        }
    }
}

/// A page without navigation (the login page, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    let header = html! {
        header.top { a.brand href="/admin" { "一扫知 · 监管工作台" } }
    };
    document(title, header, body)
}

/// A workbench page for `staff`, `nav` marked as the current section.
pub fn page(staff: &Staff, nav: Nav, title: &str, body: Markup) -> HttpResponse {
    let header = html! {
        header.top {
            a.brand href="/admin" { "一扫知 · 监管工作台" }
            form.who method="post" action="/admin/logout" {
                span { (staff.name) "（" (scope_label(&staff.scope)) "）" }
                input type="hidden" name="csrf" value=(staff.csrf());
                button type="submit" { "退出登录" }
            }
            nav aria-label="工作台导航" {
                @for (item, href, label) in NAV {
                    @if item == nav {
                        a href=(href) aria-current="page" { (label) }
                    } @else {
                        a href=(href) { (label) }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, document(title, header, body))
}

/// An HTML answer with the workbench's headers.
pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// 303 to `location` (after a form's action: the page it leads to shows
/// the result, and reloading it posts nothing again).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(staff: &Staff) -> Markup {
    html! { input type="hidden" name="csrf" value=(staff.csrf()); }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy allows this page's style sheet, by the hash of exactly
    /// what the page embeds, and lets forms post to this service only.
    #[test]
    fn the_policy_allows_the_workbench_style_sheet_and_forms_to_self_only() {
        let page = bare_page("t", html! { p { "x" } }).into_string();
        let start = page.find("<style>").unwrap() + "<style>".len();
        let end = page[start..].find("</style>").unwrap() + start;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&page.as_bytes()[start..end]);
        let policy = csp();
        let policy = policy.to_str().unwrap();
        assert!(policy.contains(&format!(
            "'sha256-{}'",
            data_encoding::BASE64.encode(&digest)
        )));
        assert!(policy.contains("form-action 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(
            !policy.contains("script-src") && !policy.contains("unsafe"),
            "{policy}"
        );
    }
}
