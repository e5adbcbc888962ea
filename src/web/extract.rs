//! Extractors: what a handler is given of the request is already parsed or
//! checked, so no handler sees a raw identifier. The scan token also comes
//! through here when the pre-router fast path answers a scan
//! (`scan::serve_scans_first`): one entry door for both.

use std::borrow::Cow;
use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{self, AuthError, Principal};
use crate::model::MerchantId;

/// The `{id}` of a merchant route, parsed: a path whose id is not a
/// merchant id is answered 404, as an unknown merchant is.
#[derive(Debug, Clone)]
pub struct MerchantPath(pub MerchantId);

impl MerchantPath {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        MerchantId::parse(raw).map(MerchantPath).map_err(|_| {
            ApiError::NotFound(format!("no merchant `{}`", crate::model::truncate(raw)))
        })
    }
}

impl std::ops::Deref for MerchantPath {
    type Target = MerchantId;
    fn deref(&self) -> &MerchantId {
        &self.0
    }
}

impl FromRequest for MerchantPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Decoded as `web::Path<String>` decodes it.
        let raw: String = req.match_info().load().unwrap_or_default();
        ready(Self::parse(&raw))
    }
}

/// The token of a scan, as the scan route's path segment gave it (a full
/// code URL is cut to its token). Borrowed from the path on the fast path,
/// so a warm scan copies nothing. `Token::parse` refuses junk in the
/// scanner before any signature check or store read; the warm path only
/// compares the text with texts that parsed before.
#[derive(Debug, Clone)]
pub struct ScanToken<'a>(Cow<'a, str>);

impl<'a> ScanToken<'a> {
    /// The token of a scan path's segment.
    pub fn from_segment(segment: impl Into<Cow<'a, str>>) -> Self {
        ScanToken(segment.into())
    }

    /// The token's text: digits, if it is a token at all.
    pub fn text(&self) -> &str {
        yisaozhi_codes::token_from_text(&self.0)
    }
}

impl FromRequest for ScanToken<'static> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Decoded as `web::Path<String>` decodes it.
        let segment: String = req.match_info().load().unwrap_or_default();
        ready(Ok(ScanToken::from_segment(segment)))
    }
}

/// An authenticated regulator: the token was checked, and its scope is
/// known. Extracted before the body is read (handlers take `web::Payload`
/// and read it after), so nobody unauthenticated makes the service read a
/// body; what the scope allows is checked by each handler against the
/// merchant as stored and as written.
#[derive(Debug)]
pub struct Regulator(pub Principal);

impl std::ops::Deref for Regulator {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Regulator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("the app state is not registered"))
            })?;
            principal(state, &req).await.map(Regulator)
        })
    }
}

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address: the peer's, or from `X-Forwarded-For` only
/// through a trusted proxy.
pub(super) fn client_of(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    auth::client_address(
        req.peer_addr().map(|a| a.ip()),
        req.headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .into_iter(),
        &state.settings.trusted_proxies,
    )
}

/// Authenticates the caller of the JSON API by its bearer token.
async fn principal(state: &AppState, req: &HttpRequest) -> Result<Principal, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate_limited(state, req, header.and_then(auth::bearer)).await
}

/// Checks a presented token (`None`: none was presented), from the API's
/// `Authorization` header or the workbench's login form alike. The token is
/// always checked: failures are counted per client address and per token
/// id, and past either limit a failure is answered 429, so no one's
/// failures refuse someone else's valid token.
pub async fn authenticate_limited(
    state: &AppState,
    req: &HttpRequest,
    token: Option<&str>,
) -> Result<Principal, ApiError> {
    let client = client_of(state, req);
    let token_id = token.and_then(auth::token_id);
    // Not a token at all, from an address past its limit: no work.
    if token_id.is_none() && state.auth_failures.client_limited(client) {
        return Err(ApiError::TooManyAttempts);
    }
    let checked = match token {
        Some(token) => auth::authenticate_token(state.store.as_ref(), token).await,
        None => Err(AuthError::Missing),
    };
    match checked {
        Ok(who) => Ok(who),
        Err(AuthError::Store(e)) => Err(e.into()),
        Err(other) => {
            if state.auth_failures.note(client, token_id) {
                return Err(ApiError::TooManyAttempts);
            }
            tracing::warn!(client = ?client, token.id = token_id, "regulator authentication failed");
            Err(ApiError::Unauthorized(other.to_string()))
        }
    }
}
