//! Pages of features still being built: each says what it will hold and
//! where that stands, behind the same session as every workbench page, so
//! links to them work today.

use actix_web::HttpResponse;
use maud::html;

use super::layout::{page, Nav};
use super::staff::Staff;

fn not_yet(staff: &Staff, nav: Nav, title: &str, what: &str) -> HttpResponse {
    let body = html! {
        section.card {
            h1 { (title) }
            p { (what) }
            p.notice { "此功能尚未启用：目前没有待处理的事项。启用后将在此列出，并在概览页显示数量。" }
            p { a href="/admin" { "返回概览" } }
        }
    };
    page(staff, nav, title, body)
}

pub async fn plans(staff: Staff) -> HttpResponse {
    not_yet(
        &staff,
        Nav::Plans,
        "抽查计划",
        "“双随机、一公开”抽查计划：按风险加权随机抽取商户和检查人员，公开种子和结果，任何人都可复核。",
    )
}
