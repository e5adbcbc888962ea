//! The workbench's cookies: the session (`ysz_session`) and the page to
//! return to after the login (`ysz_next`), read from the `Cookie` header
//! and written as `Set-Cookie` values with the attributes CONTRACT §5 asks
//! for.

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::web::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "ysz_session";

/// The cookie that remembers, across the login page, the workbench page a
/// member of staff asked for (e.g. a merchant's, from the scan page).
pub const NEXT_COOKIE: &str = "ysz_next";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` when the
/// service is reached over https; `max_age` 0 deletes the cookie.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.base_url.starts_with("https://") {
        c.push_str("; Secure");
    }
    c
}
