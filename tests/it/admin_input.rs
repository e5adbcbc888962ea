//! Bounds on the regulator API's input: query parameters are checked (400
//! in the envelope, naming the parameter and what it takes), and a repeated
//! revocation is a conflict, not a second audited change.

use reqwest::Method;

use crate::helpers::spawn_app;

#[tokio::test]
async fn bad_query_parameters_are_400_in_the_envelope() {
    let app = spawn_app().await;
    let t = Some(app.token.as_str());
    let cases = [
        (
            "/api/v1/admin/merchants?page=99999999999999999999",
            "`page`",
        ),
        ("/api/v1/admin/merchants?page=0", "from 1 to 1000000"),
        ("/api/v1/admin/merchants?page=-1", "`page`"),
        ("/api/v1/admin/merchants?page=1000001", "`page`"),
        ("/api/v1/admin/merchants?page=abc", "`page`"),
        ("/api/v1/admin/merchants?per_page=501", "from 1 to 500"),
        (
            "/api/v1/admin/merchants?per_page=99999999999999999999",
            "`per_page`",
        ),
        ("/api/v1/admin/merchants?per_page=0", "`per_page`"),
        ("/api/v1/admin/merchants?grade=purple", "purple"),
        ("/api/v1/admin/merchants?region=abc", "`region`"),
        ("/api/v1/admin/merchants?region=5115041", "`region`"),
        ("/api/v1/admin/merchants?kind=car", "`kind`"),
        ("/api/v1/admin/merchants?page=1&page=2", "page"),
        ("/api/v1/admin/stats?region=abc", "`region`"),
        ("/api/v1/admin/audit?since=notadate", "`since`"),
        ("/api/v1/admin/audit?limit=0", "from 1 to 1000"),
        ("/api/v1/admin/audit?limit=100000", "from 1 to 1000"),
        ("/api/v1/admin/audit?limit=-5", "`limit`"),
    ];
    for (path, mention) in cases {
        let (status, err) = app.admin(Method::GET, path, t, None).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(err["error"], "bad_request", "{path}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(mention), "{path}: {message}");
    }
    // The bounds themselves are fine.
    for path in [
        "/api/v1/admin/merchants?per_page=500&page=1",
        "/api/v1/admin/merchants?page=1000000",
        "/api/v1/admin/merchants?region=5115&grade=&kind=",
        "/api/v1/admin/audit?limit=1000&since=2026-01-01",
        "/api/v1/admin/stats?region=511504",
    ] {
        let (status, body) = app.admin(Method::GET, path, t, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, far) = app
        .admin(Method::GET, "/api/v1/admin/merchants?page=1000000", t, None)
        .await;
    assert_eq!(far["items"].as_array().unwrap().len(), 0);
    assert_eq!(far["total"], 74);
    // Authentication comes first.
    let (status, _) = app
        .admin(Method::GET, "/api/v1/admin/merchants?page=0", None, None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn revoking_a_revoked_code_is_409_and_not_audited_again() {
    let app = spawn_app().await;
    let t = Some(app.token.as_str());
    let (_, code) = app.get("/api/v1/merchants/XZ-0004/code").await;
    let path = format!("/api/v1/admin/codes/{}/revoke", code["serial"]);
    let (status, body) = app.admin(Method::POST, &path, t, None).await;
    assert_eq!(status, 200, "{body}");
    let audit = "/api/v1/admin/audit?target=XZ-0004";
    let (_, log) = app.admin(Method::GET, audit, t, None).await;
    for _ in 0..2 {
        let (status, err) = app.admin(Method::POST, &path, t, None).await;
        assert_eq!(status, 409, "{err}");
        assert_eq!(err["error"], "conflict");
        assert!(
            err["message"].as_str().unwrap().contains("already revoked"),
            "{err}"
        );
    }
    let (_, again) = app.admin(Method::GET, audit, t, None).await;
    assert_eq!(again, log, "a refused revocation was audited");
    let revokes = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "code.revoke")
        .count();
    assert_eq!(revokes, 1);
    let (status, _) = app
        .admin(
            Method::POST,
            "/api/v1/admin/codes/99999999999/revoke",
            t,
            None,
        )
        .await;
    assert_eq!(status, 404);
}
