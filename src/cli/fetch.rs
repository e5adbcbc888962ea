//! The one HTTP request the command line makes: `codes verify --keys
//! http://...` reads a published keys document. Through `ureq`, built
//! without TLS: an `https://` URL is refused before (download the file).

use anyhow::{bail, Context};

/// Fetches a small document over plain HTTP, for `--keys http://...`: no
/// TLS (`https://` is refused before), no proxy, no redirect followed (a
/// 3xx names where to go instead), the whole exchange within `timeout`, at
/// most `max` bytes of body. Answers the body of a 200 response as text.
pub(super) fn http_get(
    url: &str,
    timeout: std::time::Duration,
    max: usize,
) -> anyhow::Result<String> {
    let timed_out = || anyhow::anyhow!("timed out after {} s", timeout.as_secs());
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .build();
    let url = url.split('#').next().unwrap_or_default();
    let request = ureq::Agent::new_with_config(config)
        .get(url)
        .header(
            "User-Agent",
            concat!("yisaozhi/", env!("CARGO_PKG_VERSION")),
        )
        .header("Accept", "application/json");
    let mut response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Timeout(_)) => return Err(timed_out()),
        Err(e) => return Err(e.into()),
    };
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        let location = response.headers().get("location");
        match location.and_then(|to| to.to_str().ok()) {
            Some(to) => bail!(
                "server answered {} (redirect to {to}); pass that URL instead",
                status.as_str()
            ),
            None => bail!(
                "server answered `{}`",
                crate::model::truncate(&format!("{:?} {status}", response.version()))
            ),
        }
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(max as u64)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => {
                anyhow::anyhow!("response larger than {} KiB", max / 1024)
            }
            ureq::Error::Timeout(_) => timed_out(),
            e => anyhow::Error::new(e).context("reading the response"),
        })?;
    String::from_utf8(body).context("the response body is not UTF-8")
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use super::*;

    /// Serves one connection with `response` (after reading the request
    /// head), optionally keeping it open afterwards; answers the base URL.
    fn serve_once(response: Vec<u8>, hold_open: Duration) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("GET /api/v1/keys HTTP/1.1"));
            // Host first; header names are case-insensitive (RFC 9110 §5.1).
            let host = lines.next().unwrap_or_default().to_ascii_lowercase();
            assert!(host.starts_with("host: 127.0.0.1:"), "{head}");
            let _ = s.write_all(&response);
            std::thread::sleep(hold_open);
        });
        format!("http://{addr}")
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn http_get_reads_content_length_body_without_waiting_for_close() {
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: keep-alive\r\n\r\n{\"keys\":[]}"
                .to_vec(),
            Duration::from_secs(10),
        );
        let started = std::time::Instant::now();
        let body = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap();
        assert_eq!(body, r#"{"keys":[]}"#);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn http_get_dechunks() {
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ke\r\n7;x=y\r\nys\":[]}\r\n0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        assert_eq!(
            http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap(),
            r#"{"keys":[]}"#
        );
    }

    #[test]
    fn http_get_errors_are_clear() {
        let base = serve_once(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap_err();
        assert!(format!("{e:#}").contains("404"), "{e:#}");

        let base = serve_once(
            b"HTTP/1.1 301 Moved\r\nLocation: https://x/api/v1/keys\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap_err();
        assert!(
            format!("{e:#}").contains("redirect to https://x/api/v1/keys"),
            "{e:#}"
        );

        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(3000, b'x');
        let base = serve_once(big, Duration::ZERO);
        let e = http_get(&format!("{base}/api/v1/keys"), T, 2048).unwrap_err();
        assert!(format!("{e:#}").contains("larger than 2 KiB"), "{e:#}");

        // Headers sent, body never completes: the deadline holds.
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{".to_vec(),
            Duration::from_secs(10),
        );
        let started = std::time::Instant::now();
        let e = http_get(
            &format!("{base}/api/v1/keys"),
            Duration::from_millis(300),
            1 << 20,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("timed out"), "{e:#}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn http_get_refuses_a_broken_chunked_body() {
        for broken in [&b"zz\r\nabc"[..], b"10\r\nabc"] {
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(broken);
            let base = serve_once(response, Duration::ZERO);
            assert!(http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).is_err());
        }
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        assert_eq!(
            http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap(),
            "abc"
        );
    }
}
