//! What every routed answer has in common, whoever made it: the security
//! headers (`security_headers`; the scan middleware answers before the
//! router and adds them itself), the JSON envelope for errors that actix
//! raises before or around a handler (a body over the limit, a query that
//! does not parse), and the answer to a path no route takes (404) or takes
//! with another method (405 with `Allow`), both found in the route table.

use std::sync::OnceLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};

use super::error::{ApiError, ErrorEnvelope};
use super::routes::{MAX_BODY_BYTES, ROUTES};
use super::security_headers::security_headers;
use super::workbench::PageError;

/// Middleware around the router: adds the security headers an answer does
/// not have yet, and turns an error that is not ours (raised by an
/// extractor or by actix) into the JSON envelope with the same status.
pub async fn envelope_and_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Handlers and extractors answer their errors as responses; an `Err`
    // here would come from a middleware inside, and is answered by actix
    // from its `error_response`: in the envelope too, without the headers.
    let res = next
        .call(req)
        .await
        .map_err(|e| match foreign_envelope(&e) {
            Some(envelope) => envelope.into(),
            None => e,
        })?;
    let mut res = match res.response().error().and_then(foreign_envelope) {
        Some(envelope) => res.into_response(actix_web::ResponseError::error_response(&envelope)),
        None => res.map_into_boxed_body(),
    };
    let headers = res.headers_mut();
    for (name, value) in security_headers() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(res)
}

/// An error actix raised, restated for the envelope.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Enveloped {
    status: StatusCode,
    message: String,
}

impl actix_web::ResponseError for Enveloped {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        envelope(self.status, code_of(self.status), &self.message)
    }
}

/// An error actix raised, for the envelope, or `None` for our own errors
/// (already in the envelope, or a workbench page).
fn foreign_envelope(e: &actix_web::Error) -> Option<Enveloped> {
    use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
    if e.as_error::<ApiError>().is_some() || e.as_error::<PageError>().is_some() {
        return None;
    }
    let status = e.as_response_error().status_code();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        super::error::body_too_large(MAX_BODY_BYTES)
    } else if let Some(q) = e.as_error::<QueryPayloadError>() {
        format!("query string: {q}; see /openapi.json for the parameters of this route")
    } else if let Some(j) = e.as_error::<JsonPayloadError>() {
        format!("request body: {j}")
    } else if let Some(p) = e.as_error::<PayloadError>() {
        format!("request body: {p}")
    } else if status.is_server_error() {
        tracing::error!(error = %e, "request failed");
        "internal error".to_owned()
    } else {
        e.to_string()
    };
    Some(Enveloped { status, message })
}

/// The error code of a status, for errors that have no code of their own.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// `{"error": CODE, "message": TEXT}` with `status`.
pub fn envelope(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorEnvelope {
        error: code,
        message,
    })
}

/// Every route's pattern, parsed once, with its method.
fn route_table() -> &'static [(ResourceDef, &'static str)] {
    static TABLE: OnceLock<Vec<(ResourceDef, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        ROUTES
            .iter()
            .map(|r| (ResourceDef::new(r.path), r.method))
            .collect()
    })
}

/// The methods the route table answers at `path`, as an `Allow` value:
/// `HEAD` with every `GET`. Empty if no route has this path.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut allowed = Vec::new();
    for (def, method) in route_table() {
        if def.is_match(path) {
            let names: &[&'static str] = match *method {
                "get" => &["GET", "HEAD"],
                "post" => &["POST"],
                "put" => &["PUT"],
                "delete" => &["DELETE"],
                other => unreachable!("api! declares no `{other}` route"),
            };
            for name in names {
                if !allowed.contains(name) {
                    allowed.push(*name);
                }
            }
        }
    }
    allowed
}

/// The default service: 405 with `Allow` if a route takes this path with
/// another method, else 404; both in the envelope.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    let path = crate::model::truncate(req.path());
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        return envelope(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route `{path}`; /openapi.json lists every route"),
        );
    }
    let allow = allowed.join(", ");
    let mut res = envelope(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!(
            "`{path}` does not take {}; it takes {allow}",
            crate::model::truncate(req.method().as_str())
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_comes_from_the_route_table() {
        assert_eq!(
            allowed_methods("/api/v1/admin/merchants/M1/override"),
            ["PUT", "DELETE"]
        );
        assert_eq!(
            allowed_methods("/api/v1/admin/merchants"),
            ["GET", "HEAD", "POST"]
        );
        assert_eq!(allowed_methods("/S/1234"), ["GET", "HEAD"]);
        assert!(allowed_methods("/nowhere").is_empty());
        assert!(allowed_methods("/api/v1/merchants/M1/extra").is_empty());
    }
}
