//! Scanning: the statuses of CONTRACT §2 over the JSON API and the page.

use crate::helpers::{flip_digit, spawn_app};

#[tokio::test]
async fn a_valid_code_shows_the_merchant_and_its_live_grade() {
    let app = spawn_app().await;
    let body = app.scan("XZ-0010").await;
    let code = &body["code"];
    assert_eq!(code["status"], "valid");
    assert_eq!(code["merchant_id"], "XZ-0010");
    for field in ["serial", "kid", "issued_at", "expires_at", "printed_grade"] {
        assert!(!code[field].is_null(), "code.{field} missing: {body}");
    }
    assert_eq!(body["merchant"]["id"], "XZ-0010");
    assert_eq!(body["grade"], "red");
    assert_eq!(body["outdated"], false);
    assert!(body["override"].is_null());
    for field in [
        "inspections",
        "sampling",
        "penalties",
        "complaints",
        "lists",
    ] {
        assert!(!body["records"][field].is_null(), "records.{field} missing");
    }
    assert!(body["updated_at"].is_string());
    assert!(body.get("next_change_at").is_some());
}

#[tokio::test]
async fn tampered_and_junk_tokens_are_forged_or_malformed_and_name_nobody() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0001").await;
    // The genuine code first: its merchant's view is then cached with this
    // text known to verify, and a tampered text must not ride on that.
    let (status, body) = app.get(&format!("/api/v1/scan/{token}")).await;
    assert_eq!((status, &body["code"]["status"]), (200, &"valid".into()));
    // The last digits carry the signature; the first ones the payload.
    let cases = [
        (flip_digit(&token, token.len() - 5), "forged"),
        // Last digit of the first 7-byte chunk: the serial's low byte.
        (flip_digit(&token, 16), "forged"),
        (token[..token.len() - 17].to_owned(), "malformed"),
        (format!("{token}000"), "malformed"),
        ("12345".to_owned(), "malformed"),
        ("not-a-token".to_owned(), "malformed"),
    ];
    for (bad, want) in cases {
        let (status, body) = app.get(&format!("/api/v1/scan/{bad}")).await;
        assert_eq!(status, 400, "{want}: {body}");
        assert_eq!(body["code"]["status"], want, "{body}");
        assert_eq!(body["error"], want);
        assert!(body["message"].is_string());
        assert!(
            body.get("merchant").is_none(),
            "{want} must not name a merchant"
        );
        assert!(body.get("grade").is_none(), "{want} must not show a grade");
    }
    let (status, body) = app.get(&format!("/api/v1/scan/{token}")).await;
    assert_eq!((status, &body["code"]["status"]), (200, &"valid".into()));
}

#[tokio::test]
async fn scan_page_is_chinese_html_and_negotiates_json() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0005").await;
    for prefix in ["/s/", "/S/"] {
        let (status, ctype, html) = app.get_text(&format!("{prefix}{token}")).await;
        assert_eq!(status, 200);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(html.contains("红码 重点监管"), "grade label missing");
        assert!(
            html.contains("请核对"),
            "the compare-name-and-address line is missing"
        );
        assert!(html.contains("12315"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "external reference in page"
        );
        assert!(html.len() < 15 * 1024, "page is {} bytes", html.len());
    }
    let res = app
        .client
        .get(format!("{}/S/{token}", app.base))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"]["status"], "valid");
    assert_eq!(body["grade"], "red");

    let (status, _, html) = app
        .get_text(&format!("/s/{}", flip_digit(&token, token.len() - 3)))
        .await;
    assert_eq!(status, 400);
    assert!(html.contains("伪造"), "forged page must say so");
}

#[tokio::test]
async fn public_merchant_and_code_endpoints_show_no_personal_data() {
    let app = spawn_app().await;
    let merchants = std::fs::read_to_string(app.dir.path().join("merchants.jsonl")).unwrap();
    let (status, body) = app.get("/api/v1/merchants/XZ-0065").await;
    assert_eq!(status, 200);
    let text = body.to_string();
    assert_eq!(body["merchant"]["kind"], "vendor");
    for line in merchants.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["contact_phone", "id_number", "contact_name"] {
            if let Some(v) = m[field].as_str() {
                assert!(!text.contains(v), "{field} {v} shown unmasked");
            }
        }
    }
    let (status, code) = app.get("/api/v1/merchants/XZ-0065/code").await;
    assert_eq!(status, 200);
    let url = code["url"].as_str().unwrap();
    assert!(url.starts_with("HTTP://127.0.0.1:"), "{url}");
    assert!(url.ends_with(code["token"].as_str().unwrap()));
    for field in ["serial", "kid", "printed_grade", "issued_at", "expires_at"] {
        assert!(!code[field].is_null(), "{field}");
    }
    let (status, _) = app.get("/api/v1/merchants/NOPE-1").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn code_svg_and_print_page_carry_the_grade_colour_and_the_qr() {
    let app = spawn_app().await;
    let (status, ctype, svg) = app.get_text("/api/v1/merchants/XZ-0010/code.svg").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "image/svg+xml");
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(svg.contains(yisaozhi::model::Grade::Red.colour()));
    let (status, ctype, html) = app.get_text("/merchants/XZ-0010/print").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"));
    assert!(html.contains("<svg"));
    assert!(html.contains("红码 重点监管"));
    assert!(html.contains("a6") && html.contains("a5"));
    assert!(html.contains("12315"));
}

#[tokio::test]
async fn published_keys_verify_the_issued_codes() {
    let app = spawn_app().await;
    let (status, keys) = app.get("/api/v1/keys").await;
    assert_eq!(status, 200);
    let key = &keys["keys"][0];
    assert_eq!(key["alg"], "Ed25519");
    assert_eq!(key["status"], "active");
    let token = app.token_of("XZ-0002").await;
    let infos: Vec<yisaozhi::keys::KeyInfo> = serde_json::from_value(keys["keys"].clone()).unwrap();
    let ring = yisaozhi::keys::Keyring::from_published(infos).unwrap();
    let today = yisaozhi::clock::to_day(yisaozhi::clock::today()).unwrap();
    let verdict = yisaozhi_codes::verify(&token, |kid| ring.public(kid), today);
    assert!(
        matches!(verdict, yisaozhi_codes::Verdict::Valid(_)),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn scans_answered_before_the_router_are_the_routed_answers() {
    let app = spawn_app().await;
    let get = |path: String, accept: Option<&'static str>, encoding: Option<&'static str>| {
        let mut req = app.client.get(format!("{}{path}", app.base));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(e) = encoding {
            req = req.header("Accept-Encoding", e);
        }
        async move {
            let res = req.send().await.expect("request");
            let header = |name: &str| {
                res.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let head = (
                res.status().as_u16(),
                header("content-type"),
                header("cache-control"),
                header("content-encoding"),
            );
            (head, res.bytes().await.expect("body"))
        }
    };
    let token = app.token_of("XZ-0003").await;
    // The same token with its first digit %-escaped: the router decodes it,
    // so that path is answered by the routed handlers, while the plain one
    // is answered before the router.
    let escaped = format!("%{:X}{}", token.as_bytes()[0], &token[1..]);
    let forged = flip_digit(&token, token.len() - 4);
    for prefix in ["/api/v1/scan/", "/s/", "/S/"] {
        for accept in [None, Some("application/json")] {
            for (plain, via_router) in [
                (&token, &escaped),
                (&forged, &forged.replacen('0', "%30", 1)),
            ] {
                let fast = get(format!("{prefix}{plain}"), accept, None).await;
                let routed = get(format!("{prefix}{via_router}"), accept, None).await;
                assert_eq!(fast.0, routed.0, "{prefix} accept {accept:?}");
                assert_eq!(fast.1, routed.1, "{prefix} accept {accept:?}");
                assert!(matches!(fast.0 .0, 200 | 400), "{:?}", fast.0);
            }
        }
        // A client that takes gzip still gets it.
        let ((status, _, _, encoding), _) =
            get(format!("{prefix}{token}"), None, Some("gzip")).await;
        assert_eq!(
            (status, encoding.as_deref()),
            (200, Some("gzip")),
            "{prefix}"
        );
    }
    let (_, _, metrics) = app.get_text("/metrics").await;
    for pattern in ["/api/v1/scan/{token}", "/s/{token}", "/S/{token}"] {
        assert!(
            metrics.contains(&format!(
                r#"ysz_http_requests_total{{route="{pattern}",method="GET",status="200"}}"#
            )),
            "{pattern} not counted under its route: {metrics}"
        );
    }
}

/// A memoised page is kept as the page's own text between the wording every
/// page shares: whatever a page holds, a warm answer (inflated, or a gzip
/// member assembled from the kept runs and the shared wording) is the page
/// as first rendered, for every demo merchant and both forms.
#[tokio::test]
async fn warm_answers_are_the_answers_first_rendered_for_every_merchant() {
    use std::io::Read;
    let app = spawn_app().await;
    let fetch = |path: String, encoding: &'static str| {
        let req = app
            .client
            .get(format!("{}{path}", app.base))
            .header("Accept-Encoding", encoding);
        async move {
            let res = req.send().await.expect("request");
            let gzipped = res
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "gzip");
            assert_eq!(gzipped, encoding == "gzip", "{path}");
            let bytes = res.bytes().await.expect("body").to_vec();
            if !gzipped {
                return bytes;
            }
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut text)
                .expect("a whole gzip member");
            text
        }
    };
    let mut pages = 0;
    for n in 1..=74 {
        let id = format!("XZ-{n:04}");
        let token = app.token_of(&id).await;
        for prefix in ["/s/", "/api/v1/scan/"] {
            let path = format!("{prefix}{token}");
            // The first answer is the render itself, sent as it is.
            let first = fetch(path.clone(), "identity").await;
            assert!(String::from_utf8_lossy(&first).contains(&id), "{path}");
            for encoding in ["gzip", "identity", "gzip"] {
                let again = fetch(path.clone(), encoding).await;
                assert!(
                    again == first,
                    "{id} {prefix} {encoding}:\n{}\nagainst\n{}",
                    String::from_utf8_lossy(&again),
                    String::from_utf8_lossy(&first)
                );
            }
        }
        pages += 1;
    }
    assert_eq!(pages, 74);
}
