//! `PageError`, what a workbench page answers instead of itself: the login
//! page for a request without a session (303), 403 for a form without its
//! session's token, and any refusal of the shared actions (`ApiError`) as
//! an HTML page with the same status, in Chinese, with the detail.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::html;

use super::cookies::{set_cookie, COOKIE, NEXT_COOKIE};
use super::layout::{bare_page, html_response};
use crate::store::StoreError;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// Why a workbench page was not shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No live session: 303 to the login page, with these cookies set.
    #[error("no session: log in")]
    Login { cookies: Vec<String> },
    /// A state-changing form that did not carry this session's `csrf`.
    #[error("the form did not carry this session's token (csrf)")]
    Csrf,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Api(e.into())
    }
}

/// The longest path remembered for after the login.
const MAX_NEXT_BYTES: usize = 512;

/// Whether `path` may be where a login leads: a workbench page of this
/// service (never another host), in characters a cookie carries as is.
pub fn is_local_admin_path(path: &str) -> bool {
    (path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?"))
        && path.len() <= MAX_NEXT_BYTES
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-' | b'_' | b'.' | b'?' | b'=' | b'&' | b'%' | b'+'
                )
        })
}

impl PageError {
    pub fn internal(e: anyhow::Error) -> PageError {
        PageError::Api(ApiError::Internal(e))
    }

    /// To the login page; it leads back to this page (a `GET` of a
    /// workbench page) once logged in. `clear`: the request carried a
    /// session cookie that is no longer good.
    pub fn login(req: &HttpRequest, clear: bool) -> PageError {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return PageError::Login { cookies: vec![] };
        };
        let mut cookies = Vec::new();
        if clear {
            cookies.push(set_cookie(state, COOKIE, "", "/", Some(0)));
        }
        let uri = req.uri();
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        if req.method() == actix_web::http::Method::GET && is_local_admin_path(path) {
            cookies.push(set_cookie(state, NEXT_COOKIE, path, "/admin", Some(600)));
        }
        PageError::Login { cookies }
    }
}

/// A short title for a status, for the page that says what went wrong.
fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "输入有误",
        401 => "未登录或令牌无效",
        403 => "无权进行此操作",
        404 => "未找到",
        409 => "操作冲突",
        413 => "文件过大",
        429 => "尝试次数过多",
        503 => "数据存储暂时不可用",
        _ => "内部错误",
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Login { .. } => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            PageError::Login { cookies } => {
                let mut res = HttpResponse::SeeOther();
                res.insert_header((header::LOCATION, "/admin/login"))
                    .insert_header((header::CACHE_CONTROL, "no-store"));
                for c in cookies {
                    res.append_header((header::SET_COOKIE, c.as_str()));
                }
                return res.finish();
            }
            PageError::Csrf => {
                "表单缺少本次登录的校验码（csrf），可能来自其他网站或页面已过期。未做任何更改。请返回上一页刷新后重新提交。".to_owned()
            }
            PageError::Api(ApiError::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "workbench request failed");
                "内部错误，已记录。请稍后再试。".to_owned()
            }
            PageError::Api(e) => e.to_string(),
        };
        let body = html! {
            section.card {
                h1 { (title(status)) }
                p.detail { (detail) }
                p { a href="/admin" { "返回工作台" } }
            }
        };
        html_response(status, bare_page(title(status), body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_leads_only_to_workbench_pages_of_this_service() {
        for ok in [
            "/admin",
            "/admin/merchants/XZ-0001",
            "/admin/merchants?q=%E5%BA%97&page=2",
        ] {
            assert!(is_local_admin_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example/admin",
            "/administrator",
            "https://evil.example/admin",
            "/admin/x;y",
            "/admin/\"",
            "/admin\\..",
            "/s/123",
            "",
        ] {
            assert!(!is_local_admin_path(bad), "{bad}");
        }
        assert!(!is_local_admin_path(&format!("/admin/{}", "a".repeat(600))));
    }
}
