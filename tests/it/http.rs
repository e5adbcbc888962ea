//! HTTP as clients expect: security headers on every page (the scan page
//! above all, answered before the router or by it), every error in the JSON
//! envelope, 405 with `Allow` and `HEAD` on every route of the route table,
//! and a case-insensitive `Bearer` scheme.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::{spawn_app, TestApp};
use crate::raw::{exchange, RawResponse};

const LIMIT: Duration = Duration::from_secs(10);
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

fn host(app: &TestApp) -> &str {
    app.base.strip_prefix("http://").unwrap()
}

/// `METHOD path` with `headers` (lines without CRLF) and no body.
async fn send(app: &TestApp, method: &str, path: &str, headers: &[String]) -> RawResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", host(app));
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    exchange(host(app), head.as_bytes(), b"", LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A path that the route pattern matches, with real ids where one exists.
fn sample_path(pattern: &str, token: &str) -> String {
    let path = pattern
        .replace("{id}", "XZ-0001")
        .replace("{token}", token)
        .replace("{serial}", "1")
        .replace("{name}", yisaozhi::plan::DEMO_PLAN)
        .replace("{file}", "merchants.csv");
    match pattern {
        "/api/v1/admin/patrols" => format!("{path}?assistant=XZ-A01"),
        _ => path,
    }
}

fn auth(app: &TestApp) -> String {
    format!("Authorization: Bearer {}", app.token)
}

fn assert_security_headers(what: &str, res: &RawResponse) {
    let csp = res
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy in {:?}", res.headers));
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert_eq!(
        res.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(res.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn every_page_and_error_forbids_framing_sniffing_and_referrers() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0001").await;
    let html = |res: &RawResponse| {
        res.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    };
    // (what, method, path, extra headers, expected status)
    let cases: Vec<(&str, &str, String, Vec<String>, u16)> = vec![
        ("home page", "GET", "/".into(), vec![], 200),
        (
            "scan page before the router",
            "GET",
            format!("/S/{token}"),
            vec![],
            200,
        ),
        (
            "scan page gzip before the router",
            "GET",
            format!("/S/{token}"),
            vec!["Accept-Encoding: gzip".into()],
            200,
        ),
        (
            "scan page through the router",
            "GET",
            format!("/s/{token}"),
            vec!["Accept-Encoding: br".into()],
            200,
        ),
        (
            "scan page, malformed code",
            "GET",
            "/S/12345".into(),
            vec![],
            400,
        ),
        (
            "scan page, malformed code through the router",
            "GET",
            "/S/1%32345".into(),
            vec![],
            400,
        ),
        (
            "print page",
            "GET",
            "/merchants/XZ-0001/print".into(),
            vec![],
            200,
        ),
    ];
    for (what, method, path, headers, status) in &cases {
        let res = send(&app, method, path, headers).await;
        assert_eq!(res.status, *status, "{what}");
        assert!(html(&res), "{what}: {:?}", res.headers);
        assert_security_headers(what, &res);
    }
    // JSON and errors carry them too.
    for (what, path) in [
        ("scan JSON", format!("/api/v1/scan/{token}")),
        ("unknown route", "/nowhere".to_owned()),
        ("unknown merchant", "/api/v1/merchants/NOPE".to_owned()),
        ("code SVG", "/api/v1/merchants/XZ-0001/code.svg".to_owned()),
    ] {
        let res = send(&app, "GET", &path, &[]).await;
        assert_security_headers(what, &res);
    }
}

#[tokio::test]
async fn every_error_is_the_json_envelope() {
    let app = spawn_app().await;
    let envelope = |what: &str, res: &RawResponse, status: u16, code: &str| {
        assert_eq!(
            res.status,
            status,
            "{what}: {:?}",
            String::from_utf8_lossy(&res.body)
        );
        assert!(
            res.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}: {:?}",
            res.headers
        );
        let body = res.json();
        assert_eq!(body["error"], code, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
        body
    };
    let res = send(&app, "GET", "/no/such/route", &[]).await;
    envelope("unknown route", &res, 404, "not_found");

    let auth = auth(&app);
    // A body over the limit, refused from its length alone.
    for path in ["/api/v1/admin/records", "/api/v1/admin/merchants"] {
        let res = send(
            &app,
            "POST",
            path,
            &[
                auth.clone(),
                format!("Content-Length: {}", 4 * 1024 * 1024 + 1),
            ],
        )
        .await;
        let body = envelope(path, &res, 413, "payload_too_large");
        assert!(
            body["message"].as_str().unwrap().contains("4 MiB"),
            "{body}"
        );
    }
    // A body over the limit without a length: refused once the limit is read.
    let mut head = format!(
        "POST /api/v1/admin/records HTTP/1.1\r\nHost: {}\r\n{auth}\r\nTransfer-Encoding: chunked\r\n",
        host(&app)
    );
    head.push_str("Content-Type: application/x-ndjson\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut body = Vec::new();
    for _ in 0..(5 * 1024 * 1024 / chunk.len()) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let res = exchange(host(&app), head.as_bytes(), &body, LIMIT)
        .await
        .expect("an answer");
    envelope(
        "chunked body over the limit",
        &res,
        413,
        "payload_too_large",
    );

    // Query parameters of the wrong type.
    for query in [
        "/api/v1/admin/merchants?page=abc",
        "/api/v1/admin/merchants?per_page=-1",
        "/api/v1/admin/merchants?page=99999999999999999999999",
        "/api/v1/admin/audit?limit=x",
    ] {
        let res = send(&app, "GET", query, std::slice::from_ref(&auth)).await;
        let body = envelope(query, &res, 400, "bad_request");
        assert!(
            body["message"].as_str().unwrap().contains("query"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_on_every_route_of_the_route_table() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0001").await;
    let patterns: BTreeSet<&str> = yisaozhi::web::ROUTES.iter().map(|r| r.path).collect();
    for pattern in patterns {
        let mut allowed: BTreeSet<String> = yisaozhi::web::ROUTES
            .iter()
            .filter(|r| r.path == pattern)
            .map(|r| r.method.to_ascii_uppercase())
            .collect();
        if allowed.contains("GET") {
            allowed.insert("HEAD".into());
        }
        let path = sample_path(pattern, &token);
        for method in METHODS.iter().filter(|m| !allowed.contains(**m)) {
            let res = send(&app, method, &path, &[auth(&app)]).await;
            assert_eq!(res.status, 405, "{method} {pattern}");
            let allow: BTreeSet<String> = res
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {pattern}: no Allow"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, allowed, "{method} {pattern}");
            if *method != "HEAD" {
                assert_eq!(
                    res.json()["error"],
                    "method_not_allowed",
                    "{method} {pattern}"
                );
            } else {
                assert!(res.body.is_empty(), "{method} {pattern}: a body");
            }
        }
    }
}

/// A `Cookie` header of a shop's session (for the shop's own routes).
async fn shop_cookie(app: &TestApp) -> String {
    let path = "/api/v1/admin/merchants/XZ-0001/access";
    let (_, issued) = app
        .admin(reqwest::Method::POST, path, Some(&app.token), None)
        .await;
    let code = issued["activation_code"].as_str().unwrap();
    let url = format!("{}/api/v1/shop/token", app.base);
    let form = [("merchant_id", "XZ-0001"), ("activation_code", code)];
    let res = app.client.post(url).form(&form).send().await.unwrap();
    let token: serde_json::Value = res.json().await.unwrap();
    let secret = token["token"].as_str().unwrap().trim_start_matches("yszm_");
    format!("Cookie: ysz_shop={secret}")
}

#[tokio::test]
async fn head_answers_every_get_route_as_get_does_without_a_body() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0001").await;
    let gets = yisaozhi::web::ROUTES.iter().filter(|r| r.method == "get");
    let shop = shop_cookie(&app).await;
    let mut checked = 0;
    for route in gets {
        let path = sample_path(route.path, &token);
        let headers = [auth(&app), shop.clone()];
        let get = send(&app, "GET", &path, &headers).await;
        let head = send(&app, "HEAD", &path, &headers).await;
        assert_eq!(head.status, get.status, "HEAD {}", route.path);
        // Workbench pages without a session: 303 to the login page.
        let ok = if route.tag == "workbench" && route.path != "/admin/login" {
            get.status == 303
        } else {
            (200..300).contains(&get.status)
        };
        assert!(ok, "GET {}: {}", route.path, get.status);
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {}",
            route.path
        );
        assert!(
            head.body.is_empty(),
            "HEAD {} sent a body of {} bytes",
            route.path,
            head.body.len()
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} GET routes");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let header = format!("Authorization: {scheme} {}", app.token);
        let res = send(&app, "GET", "/api/v1/admin/stats", &[header]).await;
        assert_eq!(res.status, 200, "{scheme}");
    }
    for header in [
        format!("Authorization: Basic {}", app.token),
        format!("Authorization: Bearer{}", app.token),
        format!("Authorization: {}", app.token),
    ] {
        let res = send(
            &app,
            "GET",
            "/api/v1/admin/stats",
            std::slice::from_ref(&header),
        )
        .await;
        assert_eq!(res.status, 401, "{header}");
        assert_eq!(res.json()["error"], "unauthorized", "{header}");
    }
}
