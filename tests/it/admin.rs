//! Reclassification: authenticated, audited, visible at the next scan, and
//! durable across a restart.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{serve, spawn_app};

const OVERRIDE: &str = "/api/v1/admin/merchants/XZ-0001/override";

#[tokio::test]
async fn override_requires_a_valid_bearer_token() {
    let app = spawn_app().await;
    let body = json!({"grade": "red", "reason": "现场检查发现重大隐患"});
    // The real token with its last character changed (to one it is not).
    let last = if app.token.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &app.token[..app.token.len() - 1]);
    for token in [None, Some("nonsense"), Some(wrong.as_str())] {
        let (status, err) = app
            .admin(Method::PUT, OVERRIDE, token, Some(body.clone()))
            .await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(err["error"], "unauthorized");
        assert!(err["message"].is_string());
    }
    let (status, _) = app.admin(Method::DELETE, OVERRIDE, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        app.scan("XZ-0001").await["grade"],
        "green",
        "a refused override changed the grade"
    );
}

#[tokio::test]
async fn override_changes_the_next_scan_and_is_audited() {
    let app = spawn_app().await;
    assert_eq!(app.scan("XZ-0001").await["grade"], "green");
    let body = json!({"grade": "red", "reason": "群众举报销售过期食品，正在调查", "expires_at": "2099-12-31"});
    let (status, res) = app
        .admin(Method::PUT, OVERRIDE, Some(&app.token), Some(body))
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["grade"], "red");

    let scan = app.scan("XZ-0001").await;
    assert_eq!(scan["grade"], "red");
    assert_eq!(scan["override"]["grade"], "red");
    assert_eq!(scan["override"]["expires_at"], "2099-12-31");
    assert_eq!(scan["outdated"], true, "printed green, live red");
    assert_eq!(scan["reasons"][0]["rule"], "override");
    assert_eq!(scan["reasons"][0]["text"], "群众举报销售过期食品，正在调查");

    let (status, res) = app
        .admin(Method::DELETE, OVERRIDE, Some(&app.token), None)
        .await;
    assert_eq!(status, 200, "{res}");
    let scan = app.scan("XZ-0001").await;
    assert_eq!(scan["grade"], "green");
    assert!(scan["override"].is_null());

    let (status, log) = app
        .admin(
            Method::GET,
            "/api/v1/admin/audit?target=XZ-0001",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    let (clear, set) = (&entries[0], &entries[1]);
    assert_eq!(set["action"], "override.set");
    assert_eq!(set["actor"], "demo-admin");
    assert_eq!(set["before"]["grade"], "green");
    assert_eq!(set["after"]["grade"], "red");
    assert_eq!(set["reason"], "群众举报销售过期食品，正在调查");
    assert!(set["at"].is_string());
    assert_eq!(clear["action"], "override.clear");
    assert_eq!(clear["before"]["grade"], "red");
    assert_eq!(clear["after"]["grade"], "green");
}

#[tokio::test]
async fn bad_override_bodies_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let cases = [
        (json!({"grade": "purple", "reason": "x"}), "purple"),
        (json!({"grade": "red", "reason": ""}), "reason"),
        (
            json!({"grade": "red", "reason": "x", "expires_at": "2026-13-01"}),
            "expires_at",
        ),
        (
            json!({"grade": "red", "reason": "x", "expires_at": "2000-01-01"}),
            "past",
        ),
        (json!({"reason": "x"}), "grade"),
    ];
    for (body, mention) in cases {
        let (status, err) = app
            .admin(Method::PUT, OVERRIDE, Some(&app.token), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"], "bad_request");
        assert!(err["message"].as_str().unwrap().contains(mention), "{err}");
    }
    let (status, _) = app
        .admin(Method::DELETE, OVERRIDE, Some(&app.token), None)
        .await;
    assert_eq!(status, 404, "clearing a missing override");
    let (status, _) = app
        .admin(
            Method::PUT,
            "/api/v1/admin/merchants/NOPE/override",
            Some(&app.token),
            Some(json!({"grade": "red", "reason": "x"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_read_only_token_may_not_reclassify() {
    let app = spawn_app().await;
    let store = yisaozhi::store::StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap();
    let (plain, stored) = yisaozhi::auth::new_token(
        "viewer",
        &yisaozhi::auth::Scope::Read,
        jiff::Timestamp::now(),
    )
    .unwrap();
    store.put_token(stored).await.unwrap();
    let body = json!({"grade": "red", "reason": "x"});
    let (status, err) = app
        .admin(Method::PUT, OVERRIDE, Some(&plain), Some(body))
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"], "forbidden");
    let (status, _) = app
        .admin(Method::GET, "/api/v1/admin/audit", Some(&plain), None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn overrides_codes_and_audit_survive_a_restart() {
    let app = spawn_app().await;
    let body = json!({"grade": "yellow", "reason": "复查中"});
    let (status, _) = app
        .admin(Method::PUT, OVERRIDE, Some(&app.token), Some(body))
        .await;
    assert_eq!(status, 200);
    let (status, issued) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants/XZ-0002/codes",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 201, "{issued}");

    // A second service process on the same data directory starts cold.
    let base = serve(app.dir.path()).await;
    let client = reqwest::Client::new();
    let code: serde_json::Value = client
        .get(format!("{base}/api/v1/merchants/XZ-0001/code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan: serde_json::Value = client
        .get(format!(
            "{base}/api/v1/scan/{}",
            code["token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(scan["grade"], "yellow");
    assert_eq!(scan["override"]["reason"], "复查中");
    let code2: serde_json::Value = client
        .get(format!("{base}/api/v1/merchants/XZ-0002/code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code2["serial"], issued["serial"]);
    let log: serde_json::Value = client
        .get(format!("{base}/api/v1/admin/audit"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"override.set") && actions.contains(&"code.issue"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn reissuing_supersedes_and_revoking_is_reported_at_scan() {
    let app = spawn_app().await;
    let old = app.token_of("XZ-0003").await;
    let (status, issued) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants/XZ-0003/codes",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app.get(&format!("/api/v1/scan/{old}")).await;
    assert_eq!(status, 410);
    assert_eq!(body["code"]["status"], "superseded");
    assert_eq!(
        body["merchant"]["id"], "XZ-0003",
        "superseded still names the merchant"
    );
    let serial = issued["serial"].as_u64().unwrap();
    let (status, _) = app
        .admin(
            Method::POST,
            &format!("/api/v1/admin/codes/{serial}/revoke"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .get(&format!(
            "/api/v1/scan/{}",
            issued["token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 410);
    assert_eq!(body["code"]["status"], "revoked");
}

/// Failures past the limit are answered 429, but a valid token from the
/// same address is still accepted (issue 17: behind a proxy everyone shares
/// one address, so refusing it would let anyone lock every regulator out).
#[tokio::test]
async fn repeated_failed_authentication_is_rate_limited_per_client() {
    let app = spawn_app().await;
    for _ in 0..yisaozhi::web::MAX_AUTH_FAILURES_PER_MINUTE {
        let (status, _) = app
            .admin(
                Method::GET,
                "/api/v1/admin/audit",
                Some("ysz_00000000_00"),
                None,
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, err) = app
        .admin(
            Method::GET,
            "/api/v1/admin/audit",
            Some("ysz_00000000_00"),
            None,
        )
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["error"], "too_many_attempts");
    let (status, err) = app
        .admin(Method::GET, "/api/v1/admin/audit", Some(&app.token), None)
        .await;
    assert_eq!(status, 200, "{err}");
}

/// Issue 17: an override body with a repeated key, or a reason with a
/// control or bidirectional formatting character, is refused with the key
/// or the character named, and nothing changes; the same holds for the
/// lines of an import body, each reported with its line.
#[tokio::test]
async fn hidden_characters_and_repeated_keys_are_refused_in_every_admin_body() {
    let app = spawn_app().await;
    let before = app.scan("XZ-0001").await;
    assert!(before["override"].is_null(), "{before}");
    let put = |body: &str| {
        app.client
            .put(format!("{}{OVERRIDE}", app.base))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let long = "长".repeat(501);
    let cases = [
        (
            r#"{"grade": "green", "reason": "复查", "grade": "red"}"#.to_owned(),
            "key `grade` appears twice",
        ),
        (
            r#"{"grade": "red", "reason": "x", "note": 1, "note": 2}"#.to_owned(),
            "key `note` appears twice",
        ),
        (
            r#"{"grade": "red", "reason": "已整改\u202e"}"#.to_owned(),
            "field `reason`: contains an invisible bidirectional formatting character (U+202E)",
        ),
        (
            r#"{"grade": "red", "reason": "a\u0000b"}"#.to_owned(),
            "field `reason`: contains a control character (U+0000)",
        ),
        (
            format!(r#"{{"grade": "red", "reason": "{long}"}}"#),
            "field `reason`: longer than 500 characters",
        ),
    ];
    for (body, want) in &cases {
        let res = put(body).await.unwrap();
        let status = res.status().as_u16();
        let err: serde_json::Value = res.json().await.unwrap();
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"], "bad_request", "{err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(want),
            "{body}\n  got:  {message}\n  want: {want}"
        );
        let after = app.scan("XZ-0001").await;
        assert_eq!(
            (&after["grade"], &after["override"]),
            (&before["grade"], &before["override"]),
            "{body} changed nothing"
        );
    }
    // A reason over several lines is prose, and allowed.
    let res = put(r#"{"grade": "yellow", "reason": "第一条\n第二条"}"#)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let scan = app.scan("XZ-0001").await;
    assert_eq!(scan["override"]["reason"], "第一条\n第二条", "{scan}");

    let today = yisaozhi::clock::today();
    let body = [
        format!(r#"{{"id": "B-1", "merchant": "XZ-0002", "kind": "commitment", "date": "{today}", "summary": "诚信经营\u2066"}}"#),
        format!(r#"{{"id": "B-2", "merchant": "XZ-0002", "kind": "penalty", "date": "{today}", "decision_no": "P-9", "severity": "minor", "fine_cny": 1, "fine_cny": 1e12}}"#),
        format!(r#"{{"id": "B-3", "merchant": "XZ-0002", "kind": "penalty", "date": "{today}", "decision_no": "P-9", "severity": "minor", "fine_cny": 1e12}}"#),
    ]
    .join("\n");
    let res = app
        .client
        .post(format!("{}/api/v1/admin/records", app.base))
        .bearer_auth(&app.token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res: serde_json::Value = res.json().await.unwrap();
    assert_eq!(res["imported"], 0, "{res}");
    let rejects: Vec<(u64, &str)> = res["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(rejects.len(), 3, "{res}");
    assert_eq!(rejects[0].0, 1);
    assert!(
        rejects[0].1.contains(
            "field `summary`: contains an invisible bidirectional formatting character (U+2066)"
        ),
        "{res}"
    );
    assert_eq!(rejects[1].0, 2);
    assert!(
        rejects[1].1.contains("key `fine_cny` appears twice"),
        "{res}"
    );
    assert_eq!(rejects[2].0, 3);
    assert!(
        rejects[2]
            .1
            .contains("field `fine_cny`: expected at most 100000000000"),
        "{res}"
    );

    let name = "好味\u{202e}市超";
    let res = app
        .client
        .post(format!("{}/api/v1/admin/merchants", app.base))
        .bearer_auth(&app.token)
        .body(
            serde_json::json!({"id": "V-HID", "name": name, "kind": "vendor", "address": "集市", "region": "511504", "categories": []})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res: serde_json::Value = res.json().await.unwrap();
    assert_eq!(res["rejects"][0]["line"], 1, "{res}");
    assert!(res["rejects"][0]["reason"].as_str().unwrap().contains(
        "field `name`: contains an invisible bidirectional formatting character (U+202E)"
    ));
}
