//! `GET/POST /admin/login` and `POST /admin/logout`. A login checks the
//! token as the API does (`extract::authenticate_limited`: the same
//! failure counts per client and per token id), opens a session and leads
//! to the page the member of staff asked for before logging in.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::cookies::{self, set_cookie, COOKIE, NEXT_COOKIE};
use super::errors::{is_local_admin_path, PageError};
use super::forms::read_form;
use super::layout::{bare_page, html_response};
use super::session;
use super::staff::Staff;
use crate::web::actions::read_body;
use crate::web::error::ApiError;
use crate::web::extract::authenticate_limited;
use crate::web::state::AppState;

/// Largest body of the login form.
const MAX_LOGIN_BYTES: usize = 4096;

fn login_page(status: StatusCode, problem: Option<&str>) -> HttpResponse {
    let body: Markup = html! {
        section.card {
            h1 { "登录监管工作台" }
            @if let Some(problem) = problem {
                p.notice role="alert" { (problem) }
            }
            form method="post" action="/admin/login" {
                label for="token" { "监管令牌" }
                input #token type="password" name="token" required autofocus
                    autocomplete="current-password" spellcheck="false" autocapitalize="off"
                    aria-describedby="token-help";
                p #token-help .muted { "以 ysz_ 开头的令牌，由系统管理员用 yisaozhi tokens create 签发。" }
                button type="submit" { "登录" }
            }
        }
    };
    html_response(status, bare_page("登录", body))
}

pub async fn page() -> HttpResponse {
    login_page(StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Whether the browser says the form came from another site (a login
/// forged by a third party's page); `Sec-Fetch-Site` is what browsers send
/// whatever the referrer policy.
fn from_another_site(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v, "same-origin" | "none"))
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    if from_another_site(&req) {
        return Err(
            ApiError::Forbidden("the login form was posted from another site".into()).into(),
        );
    }
    let body = read_body(&req, payload, MAX_LOGIN_BYTES).await?;
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or(LoginForm {
        token: String::new(),
    });
    let token = form.token.trim();
    let who = match authenticate_limited(&state, &req, Some(token)).await {
        Ok(who) => who,
        Err(ApiError::Unauthorized(_)) => {
            return Ok(login_page(
                StatusCode::UNAUTHORIZED,
                Some("令牌无效、已被吊销或输入有误。请检查后重试。"),
            ))
        }
        Err(ApiError::TooManyAttempts) => {
            return Ok(login_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some("失败次数过多，请一分钟后再试。"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let token_id = crate::auth::token_id(token)
        .ok_or_else(|| PageError::internal(anyhow::anyhow!("an accepted token has no id")))?;
    let secret = session::open(&state, &who, token_id).await?;
    tracing::info!(actor = %who.name, token.id = token_id, "staff logged in");
    let next = cookies::cookie(&req, NEXT_COOKIE)
        .filter(|p| is_local_admin_path(p))
        .unwrap_or("/admin");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((
            header::SET_COOKIE,
            set_cookie(&state, COOKIE, &secret, "/", None),
        ))
        .append_header((
            header::SET_COOKIE,
            set_cookie(&state, NEXT_COOKIE, "", "/admin", Some(0)),
        ))
        .finish())
}

#[derive(Debug, Deserialize)]
struct LogoutForm {}

pub async fn logout(
    state: web::Data<AppState>,
    staff: Staff,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let _: LogoutForm = read_form(&staff, &req, payload).await?;
    session::close(&state, &req).await?;
    tracing::info!(actor = %staff.name, token.id = %staff.token_id, "staff logged out");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/login"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((
            header::SET_COOKIE,
            set_cookie(&state, COOKIE, "", "/", Some(0)),
        ))
        .finish())
}
