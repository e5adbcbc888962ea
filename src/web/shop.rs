//! The shop's API (CONTRACT §6): a merchant's own page as JSON, its
//! submissions and the commitment. A shop is authenticated by its session
//! cookie `ysz_shop` or `Authorization: Bearer yszm_…`, and every handler
//! works on that merchant only: no path or body names another.
//!
//! A browser's JSON writes are safe from other sites: the cookie is
//! `SameSite=Strict`, and a write needs `Content-Type: application/json`,
//! which a cross-site form cannot send (and no CORS lets a script).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::actions::read_body;
use super::answers::{code_url, public_projection};
use super::error::ApiError;
use super::state::AppState;
use crate::clock;
use crate::grading::{Condition, Rules};
use crate::model::{Grade, ListKind, MerchantId, Projection, Record};
use crate::shop::access::{self, ShopSession, TOKEN_PREFIX};
use crate::shop::commitment::{self, COMMITMENT_TEXT, COMMITMENT_VERSION};
use crate::shop::reviews::{self, Review, ReviewError};
use crate::shop::submissions::{self, Submission};

/// The session cookie of a shop.
pub const SHOP_COOKIE: &str = "ysz_shop";
/// Largest body of a shop's request.
pub const MAX_SHOP_BODY: usize = 64 * 1024;

/// An authenticated shop: the merchant its session or token is bound to.
#[derive(Debug, Clone)]
pub struct Shop(pub ShopSession);

/// The secret a request presents: a `yszm_` bearer token, else the cookie.
pub(super) fn presented_secret(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, t)| t.trim().strip_prefix(TOKEN_PREFIX).map(str::to_owned));
    bearer.or_else(|| cookie(req, SHOP_COOKIE))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// The shop of this request, if it presents an open session or token.
pub(super) async fn shop_of(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<ShopSession>, ApiError> {
    match presented_secret(req) {
        Some(secret) => {
            Ok(access::authenticate(state.store.as_ref(), &secret, clock::now()).await?)
        }
        None => Ok(None),
    }
}

impl FromRequest for Shop {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("the app state is not registered"))
            })?;
            shop_of(state, &req).await?.map(Shop).ok_or_else(|| {
                ApiError::Unauthorized(
                    "sign in with the activation code (POST /shop/login or /api/v1/shop/token) and send the `ysz_shop` cookie or `Authorization: Bearer yszm_…`".into(),
                )
            })
        })
    }
}

impl std::ops::Deref for Shop {
    type Target = ShopSession;
    fn deref(&self) -> &ShopSession {
        &self.0
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest("bad_request", message.into())
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Invalid(m) => bad(m),
            ReviewError::NotFound(m) => ApiError::NotFound(m),
            ReviewError::Forbidden(m) => ApiError::Forbidden(m),
            ReviewError::Conflict(m) => ApiError::Conflict(m),
            ReviewError::TooMany(m) => ApiError::BadRequest("too_many_pending", m),
            ReviewError::Store(e) => e.into(),
            ReviewError::Other(e) => e.into(),
        }
    }
}

/// A JSON object body (a repeated key refused), read after authentication.
pub(super) async fn json_object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Value>, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(ApiError::BadRequest(
            "unsupported_media_type",
            "body: send JSON with `Content-Type: application/json`".into(),
        ));
    }
    let body = read_body(req, payload, MAX_SHOP_BODY).await?;
    let text = std::str::from_utf8(&body).map_err(|e| bad(format!("body: not UTF-8: {e}")))?;
    match crate::records::json_without_repeated_keys(text).map_err(|e| bad(format!("body: {e}")))? {
        Value::Object(m) => Ok(m),
        _ => Err(bad("body: expected a JSON object")),
    }
}

/// Files a parsed submission of `merchant`: `201 {"id", "status": "pending"}`.
pub(super) async fn file(
    state: &AppState,
    merchant: &MerchantId,
    submission: Submission,
) -> Result<Review, ApiError> {
    let review = reviews::submit(
        state.store.as_ref(),
        &state.rules,
        merchant,
        submission,
        clock::now(),
    )
    .await?;
    tracing::info!(merchant.id = %merchant, review.id = %review.id, kind = review.submission.kind(), "shop submission filed");
    Ok(review)
}

fn created(review: &Review) -> HttpResponse {
    HttpResponse::Created().json(json!({"id": review.id, "status": review.status}))
}

/// Reads a JSON submission, parses it with `parse` and files it.
async fn submit_json(
    state: &AppState,
    shop: &Shop,
    req: &HttpRequest,
    payload: web::Payload,
    parse: impl FnOnce(&Map<String, Value>) -> Result<Submission, String>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(req, payload).await?;
    let submission = parse(&body).map_err(bad)?;
    Ok(created(&file(state, &shop.merchant, submission).await?))
}

pub async fn self_report(
    state: web::Data<AppState>,
    shop: Shop,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let today = clock::today();
    submit_json(&state, &shop, &req, payload, |b| {
        submissions::self_report(b, today)
    })
    .await
}

pub async fn reply(
    state: web::Data<AppState>,
    shop: Shop,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit_json(&state, &shop, &req, payload, submissions::reply).await
}

pub async fn repair(
    state: web::Data<AppState>,
    shop: Shop,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    submit_json(&state, &shop, &req, payload, submissions::repair).await
}

pub async fn commitment_text(
    state: web::Data<AppState>,
    shop: Shop,
) -> Result<HttpResponse, ApiError> {
    let signed = state
        .store
        .projection(&shop.merchant)
        .await?
        .and_then(|p| p.records.commitment.map(|c| c.date));
    Ok(HttpResponse::Ok().json(json!({
        "version": COMMITMENT_VERSION, "text": COMMITMENT_TEXT, "signed_on": signed,
    })))
}

/// Signs the commitment for `merchant` and drops its cached view.
pub(super) async fn sign(state: &AppState, merchant: &MerchantId) -> Result<String, ApiError> {
    let today = clock::today();
    let (id, regraded) = commitment::sign(
        state.store.as_ref(),
        &state.rules,
        merchant,
        today,
        clock::now(),
    )
    .await?;
    for m in &regraded {
        state.scanner.invalidate(m).await;
    }
    tracing::info!(merchant.id = %merchant, "shop signed the commitment");
    Ok(id)
}

pub async fn sign_commitment(
    state: web::Data<AppState>,
    shop: Shop,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&req, payload).await?;
    if body.get("accept") != Some(&Value::Bool(true)) {
        return Err(bad(
            "field `accept`: must be true (read the text of GET /api/v1/shop/commitment first)",
        ));
    }
    let id = sign(&state, &shop.merchant).await?;
    Ok(HttpResponse::Created().json(json!({"record_id": id, "date": clock::today()})))
}

/// One reason as the shop reads it: when it clears and what to do.
#[derive(Serialize)]
pub(super) struct ReasonView<'a> {
    pub rule: &'a str,
    pub text: &'a str,
    pub since: Option<jiff::civil::Date>,
    pub until: Option<jiff::civil::Date>,
    /// When it clears, in plain words.
    pub clears: String,
    /// What the shop can do, in plain words.
    pub todo: &'static str,
    pub reply: Option<&'a crate::model::Reply>,
}

/// What the shop can do about a rule, by what the rule tests.
fn todo(rules: &Rules, rule: &str, grade: Option<Grade>) -> &'static str {
    if rule == crate::model::OVERRIDE_RULE {
        return "这是监管人员作出的调整。如有异议，可在下方回复说明，或联系辖区市场监管所。";
    }
    let Some(r) = rules.get(rule) else {
        return "继续守法经营，保持良好记录。";
    };
    match (&r.condition, r.repairable) {
        (Condition::ListActive { list: ListKind::Serious }, _) => {
            "严重违法失信名单须依法定程序向作出决定的部门申请移出，不能在线信用修复。"
        }
        (Condition::ListActive { .. }, true) => {
            "履行相关义务（如补报年报、更正登记住所）后，可在本页申请信用修复，或向登记机关申请移出。"
        }
        (Condition::ListActive { .. }, false) => "履行相关义务后，向登记机关申请移出名录。",
        (Condition::Publicity, true) => {
            "履行处罚决定（缴清罚款、整改到位）后，可在本页申请信用修复，提前结束公示。"
        }
        (Condition::Publicity, false) | (Condition::Penalty { .. }, _) => {
            if grade == Some(Grade::Red) {
                "按处罚决定书履行义务。红码事项不能申请信用修复，期满后自动解除。"
            } else {
                "按处罚决定书履行义务，期满后自动解除。"
            }
        }
        (Condition::FailedSampling { .. }, _) => {
            "查明不合格原因，下架同批次产品，严格进货查验；可在本页上传进货查验记录。"
        }
        (Condition::OverdueHazard, _) => "尽快完成隐患整改，并联系监管人员复查确认。",
        (Condition::Hazard { .. }, _) => "按检查要求整改隐患并保留记录；可在本页上传自查记录。",
        (Condition::SubstantiatedComplaints { .. }, _) => {
            "认真处理消费者诉求、改进经营；可对相关记录作出说明。"
        }
    }
}

/// When a reason clears, in plain words.
fn clears(until: Option<jiff::civil::Date>) -> String {
    match until {
        Some(d) => format!("如无新的不良记录，预计 {d} 解除"),
        None => "整改或处理完毕后解除".into(),
    }
}

/// Everything the shop's page and `GET /api/v1/shop/me` show.
pub(super) struct Overview {
    pub merchant: MerchantId,
    pub projection: Option<Projection>,
    pub records: Vec<Record>,
    pub code: Option<crate::model::IssuedCode>,
    pub code_url: Option<String>,
    pub submissions: Vec<Review>,
}

impl Overview {
    pub(super) async fn load(state: &AppState, merchant: &MerchantId) -> Result<Self, ApiError> {
        let store = state.store.as_ref();
        let code = crate::issuing::active_code(store, merchant).await?;
        let code_url = code
            .as_ref()
            .map(|c| code_url(&state.base_url, c))
            .transpose()?;
        Ok(Overview {
            merchant: merchant.clone(),
            projection: store.projection(merchant).await?,
            records: store.records(merchant).await?,
            code,
            code_url,
            submissions: reviews::filed(store, merchant).await?,
        })
    }

    /// The reasons shown today (without an override no longer active).
    pub(super) fn reasons<'a>(&'a self, rules: &Rules) -> Vec<ReasonView<'a>> {
        let Some(p) = &self.projection else {
            return Vec::new();
        };
        let (_, active) = p.effective(clock::today());
        p.reasons
            .iter()
            .filter(|r| active.is_some() || r.rule != crate::model::OVERRIDE_RULE)
            .filter(|r| r.rule != crate::grading::GREEN_RULE)
            .map(|r| ReasonView {
                rule: &r.rule,
                text: &r.text,
                since: r.since,
                until: r.until,
                clears: clears(r.until),
                todo: todo(rules, &r.rule, rules.get(&r.rule).map(|x| x.grade)),
                reply: r.reply.as_ref(),
            })
            .collect()
    }

    /// Records a credit repair could end now: a penalty in publicity or an
    /// abnormal-list entry in force, of a repairable rule, not repaired.
    pub(super) fn repairable<'a>(&'a self, rules: &Rules) -> Vec<&'a Record> {
        let Some(p) = &self.projection else {
            return Vec::new();
        };
        let current: Vec<&str> = p
            .records
            .penalties
            .iter()
            .filter(|x| x.publicity_until.is_some())
            .map(|x| x.id.as_str())
            .chain(p.records.lists.iter().map(|x| x.id.as_str()))
            .collect();
        let pending_or_done = |id: &str| {
            self.records.iter().any(|r| matches!(&r.body, crate::model::RecordBody::Repair { record } if record == id))
                || self.submissions.iter().any(|s| {
                    s.status != reviews::ReviewStatus::Rejected
                        && matches!(&s.submission, Submission::Repair { record_id, .. } if record_id == id)
                })
        };
        self.records
            .iter()
            .filter(|r| current.contains(&r.id.as_str()))
            .filter(|r| !rules.repair_ends(&r.body).is_empty())
            .filter(|r| !pending_or_done(&r.id))
            .collect()
    }

    fn to_json(&self, state: &AppState) -> Value {
        let today = clock::today();
        json!({
            "merchant_id": self.merchant,
            "projection": self.projection.as_ref().map(|p| public_projection(p, today)),
            "reasons": self.reasons(&state.rules),
            "next_change_at": self.projection.as_ref().and_then(|p| p.next_change_at),
            "code": self.code.as_ref().map(|c| json!({
                "serial": c.serial, "printed_grade": c.printed_grade, "expires_at": c.expires_at,
                "url": self.code_url, "print_url": format!("{}/merchants/{}/print", state.base_url, self.merchant),
            })),
            "commitment": self.projection.as_ref().and_then(|p| p.records.commitment.as_ref().map(|c| json!({"date": c.date, "record_id": c.id}))),
            "repairable": self.repairable(&state.rules).iter().map(|r| json!({"record_id": r.id, "kind": r.body.kind(), "date": r.date})).collect::<Vec<_>>(),
            "submissions": self.submissions,
        })
    }
}

pub async fn me(state: web::Data<AppState>, shop: Shop) -> Result<HttpResponse, ApiError> {
    let overview = Overview::load(&state, &shop.merchant).await?;
    Ok(HttpResponse::Ok().json(overview.to_json(&state)))
}

/// A form body as a JSON object of strings; `items` (one check item a
/// line, `×` first when it failed) as a list; a ticked box as `true`. A
/// repeated field keeps its first value.
pub(super) fn form_fields(body: &[u8]) -> Map<String, Value> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut m = Map::new();
    for (k, v) in pairs {
        if m.contains_key(&k) {
            continue;
        }
        let value = match k.as_str() {
            "items" => Value::Array(
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(
                        |l| match l.strip_prefix('×').or_else(|| l.strip_prefix('x')) {
                            Some(rest) => serde_json::json!({"item": rest.trim(), "ok": false}),
                            None => serde_json::json!({"item": l, "ok": true}),
                        },
                    )
                    .collect(),
            ),
            "commitment" | "accept" => Value::Bool(matches!(v.as_str(), "on" | "true" | "1")),
            _ => Value::String(v),
        };
        m.insert(k, value);
    }
    m
}

/// The fields of a login: a form, or a JSON object.
pub(super) fn login_fields(req: &HttpRequest, body: &[u8]) -> Result<(String, String), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let fields: Map<String, Value> = if is_json {
        match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad("body: expected {\"merchant_id\", \"activation_code\"}")),
        }
    } else {
        form_fields(body)
    };
    let get = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    Ok((get("merchant_id"), get("activation_code")))
}

/// Uses an activation code, limited per client and per merchant id: past
/// [`crate::auth::MAX_FAILURES_PER_MINUTE`] failures a minute of either,
/// attempts are refused unchecked (429). Returns the merchant and the new
/// secret.
pub(super) async fn activate(
    state: &AppState,
    req: &HttpRequest,
    merchant_id: &str,
    code: &str,
    kind: access::SessionKind,
) -> Result<(MerchantId, String), ApiError> {
    let client = super::extract::client_of(state, req);
    let key = format!("shop:{}", crate::model::truncate(merchant_id));
    let failures = &state.auth_failures;
    if failures.client_limited(client) || failures.key_limited(&key) {
        return Err(ApiError::TooManyAttempts);
    }
    let refused = || {
        if failures.note(client, Some(&key)) {
            return ApiError::TooManyAttempts;
        }
        tracing::warn!(client = ?client, "shop activation failed");
        ApiError::Unauthorized("wrong, used or expired activation code for this merchant".into())
    };
    let Ok(merchant) = MerchantId::parse(merchant_id) else {
        return Err(refused());
    };
    match access::activate(state.store.as_ref(), &merchant, code, kind, clock::now()).await {
        Ok(secret) => Ok((merchant, secret)),
        Err(access::LoginError::Refused) => Err(refused()),
        Err(access::LoginError::Store(e)) => Err(e.into()),
    }
}

/// `POST /api/v1/shop/token`: the same fields as the login form → `201
/// {"token": "yszm_…"}`.
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, 4096).await?;
    let (merchant_id, code) = login_fields(&req, &body)?;
    let (merchant, secret) = activate(
        &state,
        &req,
        &merchant_id,
        &code,
        access::SessionKind::Token,
    )
    .await?;
    tracing::info!(merchant.id = %merchant, "shop token opened");
    Ok(HttpResponse::Created().json(json!({
        "token": format!("{TOKEN_PREFIX}{secret}"), "merchant_id": merchant,
        "expires_in_days": access::SESSION_DAYS,
    })))
}
