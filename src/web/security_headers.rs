//! The security headers of every answer, built once: the scan answers add
//! them themselves (before the router), `edge` adds them to everything
//! routed. Inserting them copies no bytes.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderName, HeaderValue};

/// The headers of every answer: a page may load nothing from elsewhere, run
/// no script, style itself only with its own inline style sheet, and may not
/// be framed (a look-alike site must not wrap the scan page); no referrer
/// leaves with a link (the scan URL carries the code).
pub fn security_headers() -> &'static [(HeaderName, HeaderValue)] {
    static HEADERS: OnceLock<Vec<(HeaderName, HeaderValue)>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let csp = content_security_policy(&super::pages::STYLE_SHEETS, "'self'");
        vec![
            (
                header::CONTENT_SECURITY_POLICY,
                // Static (leaked once): a clone per answer copies a pointer,
                // with no shared count for the workers to contend on.
                HeaderValue::from_static(Box::leak(csp.into_boxed_str())),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ]
    })
}

/// The content security policy of a page whose only styles are the inline
/// style sheets `sheets` (allowed by hash) and whose forms may post to
/// `form_action` (`'none'`, or `'self'` for the workbench's forms): nothing
/// else loads, no script runs, and no one frames it.
pub fn content_security_policy(sheets: &[&str], form_action: &str) -> String {
    let styles: String = sheets
        .iter()
        .map(|css| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(css.as_bytes());
            format!(" 'sha256-{}'", data_encoding::BASE64.encode(&digest))
        })
        .collect();
    format!(
        "default-src 'none'; style-src{styles}; img-src data:; base-uri 'none'; \
         form-action {form_action}; frame-ancestors 'none'"
    )
}

/// The policy of the offline verifier's page and files (`web::verify`),
/// the only answers that carry script: scripts, style sheets, workers and
/// fetches from this origin only, as files (no inline script or style).
pub fn verifier_policy() -> HeaderValue {
    HeaderValue::from_static(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         worker-src 'self'; img-src data:; manifest-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy names the hash of every inline style sheet exactly as the
    /// pages embed it: a page whose sheet is not listed would show unstyled.
    #[test]
    fn the_content_security_policy_allows_exactly_the_pages_style_sheets() {
        let csp = security_headers()
            .iter()
            .find(|(n, _)| n == header::CONTENT_SECURITY_POLICY)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        for page in super::super::pages::rendered_samples() {
            let start = page.find("<style>").expect("a style sheet") + "<style>".len();
            let end = page[start..].find("</style>").unwrap() + start;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&page.as_bytes()[start..end]);
            let source = format!("'sha256-{}'", data_encoding::BASE64.encode(&digest));
            assert!(csp.contains(&source), "{source} not in {csp}");
        }
    }
}
