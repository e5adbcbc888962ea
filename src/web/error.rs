//! `ApiError`, the one error type handlers return, rendered as the JSON
//! envelope `{"error": CODE, "message": TEXT}`; a store that is down is a
//! 503 whatever the route.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// The JSON envelope of every error: `{"error": CODE, "message": TEXT}`.
#[derive(serde::Serialize)]
pub(super) struct ErrorEnvelope<'a> {
    pub error: &'a str,
    pub message: &'a str,
}

/// What a client is told of a body over `limit` bytes, wherever it was
/// refused (by actix's extractors or by a handler reading it itself).
pub fn body_too_large(limit: usize) -> String {
    let size = if limit % (1 << 20) == 0 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit >> 10)
    };
    format!("request body: larger than the limit of {size} ({limit} bytes); send it in parts")
}

/// The one error type handlers return; rendered as the JSON envelope.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed authentication attempts from your address or with this token id; wait a minute")]
    TooManyAttempts,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the data store is not reachable; try again in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(code, _) => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooManyAttempts => "too_many_attempts",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::TooManyAttempts) {
            res.insert_header(("Retry-After", "60"));
        }
        res.json(ErrorEnvelope {
            error: self.code(),
            message: &self.to_string(),
        })
    }
}

/// Logs a request refused because the store is unreachable: at most one
/// line every few seconds, with how many were refused since the last one,
/// so an outage under load does not flood the log.
fn warn_unavailable(cause: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    const EVERY_SECS: u64 = 5;
    static LAST: AtomicU64 = AtomicU64::new(0);
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + EVERY_SECS
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        REFUSED.fetch_sub(refused, Ordering::Relaxed);
        tracing::warn!(error = %cause, refused, "store unavailable: answering 503");
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(cause) => {
                warn_unavailable(&cause);
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// An error from library code that may wrap a store error: the store down
/// is a 503 whatever the route, anything else is internal.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<crate::store::StoreError>() {
            Ok(store_error) => store_error.into(),
            Err(other) => ApiError::Internal(other),
        }
    }
}

impl From<Arc<crate::store::StoreError>> for ApiError {
    fn from(e: Arc<crate::store::StoreError>) -> Self {
        match &*e {
            crate::store::StoreError::Unavailable(cause) => {
                warn_unavailable(cause);
                ApiError::Unavailable
            }
            other => ApiError::Internal(anyhow::anyhow!("{other}")),
        }
    }
}
