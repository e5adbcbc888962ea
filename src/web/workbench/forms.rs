//! Reading a workbench form: the body is read (bounded) only after the
//! session is known, and its `csrf` field must be the session's form token
//! before any other field is looked at; without it the request is 403 and
//! nothing changes.

use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;

use super::errors::PageError;
use super::staff::Staff;
use crate::web::actions::{bad, read_body};

/// Largest body of a form (the override form's reason is the longest
/// field: 500 characters, up to 9 bytes each once encoded).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Refuses a form whose `csrf` field is missing, repeated or not `staff`'s.
pub fn check_csrf<'a>(
    staff: &Staff,
    mut fields: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), PageError> {
    let mut found = None;
    for (name, value) in fields.by_ref() {
        if name == "csrf" {
            if found.is_some() {
                return Err(PageError::Csrf);
            }
            found = Some(value);
        }
    }
    match found {
        Some(token) if staff.csrf_matches(token) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

/// Checks the `csrf` of a form that carries nothing else (a button).
pub async fn read_empty_form(
    staff: &Staff,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(), PageError> {
    #[derive(serde::Deserialize)]
    struct Empty {}
    let _: Empty = read_form(staff, req, payload).await?;
    Ok(())
}

/// Reads an `application/x-www-form-urlencoded` body of `staff`'s session
/// into `T` (which ignores the `csrf` field), after checking its `csrf`.
pub async fn read_form<T: DeserializeOwned>(
    staff: &Staff,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, PageError> {
    let body = read_body(req, payload, MAX_FORM_BYTES).await?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Csrf)?;
    check_csrf(staff, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    serde_urlencoded::from_bytes(&body).map_err(|e| PageError::Api(bad(format!("form: {e}"))))
}
