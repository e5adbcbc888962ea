//! The shop's pages: `/shop/login` (merchant id and activation code) and
//! `/shop`, the merchant's own page on a phone: the grade and why in plain
//! words, what clears when and what to do, the code and its print page,
//! the submissions and their decisions, and forms for a self-report, the
//! commitment, a reply and a credit repair. No script; every form posts
//! the session's CSRF secret in field `csrf`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::actions::read_body;
use super::error::ApiError;
use super::shop::{
    activate, file, form_fields, login_fields, shop_of, sign, Overview, SHOP_COOKIE,
};
use super::shop_style::SHOP_CSS;
use super::state::AppState;
use crate::clock;
use crate::model::{Record, RecordBody, ReportType};
use crate::shop::access::{self, SessionKind, ShopSession, SESSION_DAYS};
use crate::shop::commitment::COMMITMENT_TEXT;
use crate::shop::reviews::{Review, ReviewStatus};
use crate::shop::submissions::{self, Submission};

fn layout(title: &str, body: Markup) -> Markup {
    super::pages::layout_styled(title, SHOP_CSS, body)
}

fn html_response(status: actix_web::http::StatusCode, page: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page.into_string())
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn login_page(message: Option<&str>) -> Markup {
    layout(
        "商户登录 - 一扫知",
        html! {
            div.band.gray { h2 { "商户登录" } p { "查看本店信用等级、提交自查记录和申请" } }
            @if let Some(m) = message { section.warn { (m) } }
            section {
                form method="post" action="/shop/login" {
                    label for="merchant_id" { "商户编号" }
                    input #merchant_id name="merchant_id" required autocomplete="username" maxlength="32";
                    label for="activation_code" { "激活码（告知书上的10位码）" }
                    input #activation_code name="activation_code" required autocomplete="one-time-code" maxlength="16";
                    button type="submit" { "登录" }
                }
                p.muted { "激活码只能使用一次，有效期30天。遗失或过期请联系辖区市场监管所重新发放。" }
            }
        },
    )
}

/// `GET /shop/login` (also with a session: signing in again with a new
/// code replaces it).
pub async fn login_form() -> Result<HttpResponse, ApiError> {
    Ok(html_response(
        actix_web::http::StatusCode::OK,
        login_page(None),
    ))
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    let secure = if state.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SHOP_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// `POST /shop/login`: uses the activation code, opens a session (cookie
/// `ysz_shop`, 90 days) and goes to `/shop`.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, 4096).await?;
    let (merchant_id, code) = login_fields(&req, &body)?;
    match activate(&state, &req, &merchant_id, &code, SessionKind::Session).await {
        Ok((merchant, secret)) => {
            tracing::info!(merchant.id = %merchant, "shop signed in");
            let mut res = see_other("/shop");
            let cookie = session_cookie(&state, &secret, SESSION_DAYS * 86_400);
            res.headers_mut().insert(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
            );
            Ok(res)
        }
        Err(ApiError::Unauthorized(_)) => Ok(html_response(
            actix_web::http::StatusCode::UNAUTHORIZED,
            login_page(Some("商户编号或激活码不正确，或激活码已使用、已过期。")),
        )),
        Err(ApiError::TooManyAttempts) => Ok(html_response(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            login_page(Some("尝试次数过多，请一分钟后再试。")),
        )),
        Err(other) => Err(other),
    }
}

/// The session of a form post whose `csrf` field is the session's secret.
async fn form_session(
    state: &AppState,
    req: &HttpRequest,
    fields: &Map<String, Value>,
) -> Result<Result<ShopSession, HttpResponse>, ApiError> {
    let Some(session) = shop_of(state, req).await? else {
        return Ok(Err(see_other("/shop/login")));
    };
    let presented = fields
        .get("csrf")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ok: bool = presented.as_bytes().ct_eq(session.csrf.as_bytes()).into();
    if !ok {
        return Err(ApiError::Forbidden(
            "the form's `csrf` field is missing or wrong: reload the page and submit again".into(),
        ));
    }
    Ok(Ok(session))
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, 4096).await?;
    let fields = form_fields(&body);
    if let Ok(_session) = form_session(&state, &req, &fields).await? {
        if let Some(secret) = super::shop::cookie(&req, SHOP_COOKIE) {
            access::close(state.store.as_ref(), &secret).await?;
        }
    }
    let mut res = see_other("/shop/login");
    res.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&session_cookie(&state, "", 0))
            .map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(res)
}

/// A form post: checks the session and CSRF, parses the fields, files
/// the submission and goes back to `/shop` (or shows the page with the
/// error).
async fn post_form(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    what: &str,
    parse: impl FnOnce(&Map<String, Value>) -> Result<Option<Submission>, String>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(req, payload, super::shop::MAX_SHOP_BODY).await?;
    let fields = form_fields(&body);
    let session = match form_session(state, req, &fields).await? {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let result = match parse(&fields) {
        Ok(Some(submission)) => file(state, &session.merchant, submission).await.map(|_| ()),
        Ok(None) => sign(state, &session.merchant).await.map(|_| ()),
        Err(message) => Err(ApiError::BadRequest("bad_request", message)),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/shop?done={what}"))),
        Err(e @ (ApiError::BadRequest(..) | ApiError::Conflict(_))) => {
            let overview = Overview::load(state, &session.merchant).await?;
            let notice = Notice::Error(e.to_string());
            Ok(html_response(
                actix_web::http::StatusCode::BAD_REQUEST,
                shop_page(state, &overview, &session.csrf, Some(notice)),
            ))
        }
        Err(e) => Err(e),
    }
}

pub async fn post_self_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    post_form(&state, &req, payload, "self_report", |f| {
        submissions::self_report(f, clock::today()).map(Some)
    })
    .await
}

pub async fn post_reply(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    post_form(&state, &req, payload, "reply", |f| {
        submissions::reply(f).map(Some)
    })
    .await
}

pub async fn post_repair(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    post_form(&state, &req, payload, "repair", |f| {
        submissions::repair(f).map(Some)
    })
    .await
}

pub async fn post_commitment(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    post_form(&state, &req, payload, "commitment", |f| {
        if f.get("accept") == Some(&Value::Bool(true)) {
            Ok(None)
        } else {
            Err("请先阅读承诺书并勾选“我已阅读并承诺遵守”".into())
        }
    })
    .await
}

enum Notice {
    Done(&'static str),
    Error(String),
}

/// `GET /shop`: the merchant's own page, or `/shop/login` without a session.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(session) = shop_of(&state, &req).await? else {
        return Ok(see_other("/shop/login"));
    };
    let done =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("done").cloned());
    let notice = done.map(|d| {
        Notice::Done(match d.as_str() {
            "commitment" => "承诺书已签署，扫码页面将显示“已签署质量承诺”。",
            _ => "已提交，等待市场监管部门审核。审核结果会显示在本页。",
        })
    });
    let overview = Overview::load(&state, &session.merchant).await?;
    Ok(html_response(
        actix_web::http::StatusCode::OK,
        shop_page(&state, &overview, &session.csrf, notice),
    ))
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn reply_form(csrf: &str, field: &str, target: &str) -> Markup {
    html! {
        details {
            summary { "回复说明" }
            form method="post" action="/shop/replies" {
                (csrf_field(csrf))
                input type="hidden" name=(field) value=(target);
                label { "回复内容（300字以内，审核通过后在扫码页显示）" }
                textarea name="text" maxlength="300" required {}
                button type="submit" { "提交回复" }
            }
        }
    }
}

fn record_words(r: &Record) -> String {
    match &r.body {
        RecordBody::Penalty {
            decision_no,
            publicity_until,
            ..
        } => format!(
            "行政处罚 {decision_no}（{}{}）",
            r.date,
            publicity_until
                .map(|u| format!("，公示至 {u}"))
                .unwrap_or_default()
        ),
        RecordBody::List { .. } => format!("经营异常名录（{} 列入）", r.date),
        _ => format!("{} {}", r.body.kind(), r.date),
    }
}

fn submission_words(s: &Review) -> (String, String) {
    let what = match &s.submission {
        Submission::SelfReport {
            report_type, date, ..
        } => format!(
            "{}（{date}）",
            match report_type {
                ReportType::Invoice => "索票索证",
                ReportType::IncomingCheck => "进货查验",
                ReportType::SelfCheck => "自查记录",
            }
        ),
        Submission::Reply {
            rule, record_id, ..
        } => format!(
            "回复说明（{}）",
            rule.as_deref().or(record_id.as_deref()).unwrap_or_default()
        ),
        Submission::Repair { record_id, .. } => format!("信用修复申请（{record_id}）"),
    };
    let status = match (&s.status, &s.decision) {
        (ReviewStatus::Pending, _) => "待审核".to_owned(),
        (ReviewStatus::Accepted, d) => format!(
            "已通过{}",
            d.as_ref()
                .and_then(|d| d.reason.as_deref())
                .map(|r| format!("：{r}"))
                .unwrap_or_default()
        ),
        (ReviewStatus::Rejected, d) => format!(
            "未通过：{}",
            d.as_ref()
                .and_then(|d| d.reason.as_deref())
                .unwrap_or_default()
        ),
    };
    (what, status)
}

fn shop_page(state: &AppState, o: &Overview, csrf: &str, notice: Option<Notice>) -> Markup {
    let today = clock::today();
    let rules = &state.rules;
    let reasons = o.reasons(rules);
    let repairable = o.repairable(rules);
    let name = o
        .projection
        .as_ref()
        .map_or(o.merchant.to_string(), |p| p.merchant.name.clone());
    let body = html! {
        @match &o.projection {
            Some(p) => {
                @let (grade, _) = p.effective(today);
                div class={"band " (grade.name())} {
                    h2 { (grade.label_zh()) }
                    p { (name) " · 商户编号 " (o.merchant) }
                }
            }
            None => div.band.gray { h2 { "尚未评定" } p { (name) } },
        }
        @match notice {
            Some(Notice::Done(m)) => section.ok { (m) },
            Some(Notice::Error(m)) => section.warn { "未能提交：" (m) },
            None => {},
        }
        section {
            h3 { "为什么是这个等级" }
            @if reasons.is_empty() {
                p { "近期没有影响信用的不良记录。请继续守法经营。" }
            }
            ul {
                @for r in &reasons {
                    li {
                        strong { (r.text) }
                        br; span.muted { (r.clears) }
                        br; span { "怎么做：" (r.todo) }
                        @if let Some(reply) = r.reply { br; span.muted { "您的回复（" (reply.at) "）：" (reply.text) } }
                        (reply_form(csrf, "rule", r.rule))
                    }
                }
            }
            @if let Some(next) = o.projection.as_ref().and_then(|p| p.next_change_at) {
                p.muted { "如无新记录，等级最早可能于 " (next) " 变化。" }
            }
        }
        @if !repairable.is_empty() {
            section {
                h3 { "申请信用修复" }
                p.muted { "行政处罚公示和经营异常名录可申请信用修复；红码事项不能修复。" }
                @for r in &repairable {
                    details {
                        summary { (record_words(r)) }
                        form method="post" action="/shop/repairs" {
                            (csrf_field(csrf))
                            input type="hidden" name="record_id" value=(r.id);
                            label { "情况说明（已履行的义务、整改情况）" }
                            textarea name="statement" maxlength="1000" required {}
                            label { input type="checkbox" name="commitment" value="true" required; "我承诺今后守法经营，如有违反愿意承担责任" }
                            button type="submit" { "提交申请" }
                        }
                        (reply_form(csrf, "record_id", &r.id))
                    }
                }
            }
        }
        section {
            h3 { "质量承诺书" }
            @match o.projection.as_ref().and_then(|p| p.records.commitment.as_ref()) {
                Some(c) => p { "已于 " (c.date) " 签署质量承诺。扫码页面显示“已签署质量承诺”。" },
                None => {
                    @for line in COMMITMENT_TEXT { p { (line) } }
                    form method="post" action="/shop/commitment" {
                        (csrf_field(csrf))
                        label { input #accept type="checkbox" name="accept" value="true" required; "我已阅读并承诺遵守" }
                        button #sign type="submit" { "签署承诺书" }
                    }
                }
            }
        }
        section {
            h3 { "上传索票索证、进货查验、自查记录" }
            form method="post" action="/shop/self-reports" {
                (csrf_field(csrf))
                label for="report_type" { "类型" }
                select #report_type name="report_type" {
                    option value="invoice" { "索票索证" }
                    option value="incoming_check" { "进货查验" }
                    option value="self_check" { "自查记录" }
                }
                label for="date" { "日期" }
                input #date type="date" name="date" value=(today) required;
                label for="supplier" { "供货方" } input #supplier name="supplier" maxlength="200";
                label for="product" { "产品" } input #product name="product" maxlength="200";
                label for="batch" { "批次" } input #batch name="batch" maxlength="64";
                label for="items" { "查验项目（每行一项；不合格的项目在行首加 ×）" }
                textarea #items name="items" {}
                label for="summary" { "说明" } textarea #summary name="summary" maxlength="1000" {}
                button type="submit" { "提交审核" }
            }
        }
        section {
            h3 { "本店信用码" }
            @match (&o.code, &o.code_url) {
                (Some(c), Some(url)) => {
                    p { "码号 " (c.serial) " · 印制等级 " (c.printed_grade.label_zh()) " · 有效期至 " (c.expires_at) }
                    @if o.projection.as_ref().is_some_and(|p| p.effective(today).0 != c.printed_grade) {
                        p.warn { "码上印制的等级与当前等级不同：扫码时以当前等级为准。请联系辖区市场监管所换发新码后重新打印张贴。" }
                    }
                    p { a href={"/merchants/" (o.merchant) "/print"} { "打印张贴用的信用码" } }
                    p.muted { (url) }
                },
                _ => p.muted { "尚未发放信用码，请联系辖区市场监管所。" },
            }
        }
        section {
            h3 { "我的提交" }
            @if o.submissions.is_empty() { p.muted { "暂无提交。" } }
            ul {
                @for s in &o.submissions {
                    @let (what, status) = submission_words(s);
                    li { (what) br; span.muted { (status) } }
                }
            }
        }
        section {
            form method="post" action="/shop/logout" {
                (csrf_field(csrf))
                button type="submit" { "退出登录" }
            }
        }
    };
    layout(&format!("{name} - 商户页面 - 一扫知"), body)
}
