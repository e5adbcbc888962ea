//! Operator endpoints: health, metrics by route pattern, OpenAPI covering
//! every route.

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["store"], "ok");
    assert_eq!(body["keys"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_never_by_raw_path() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0001").await;
    app.scan("XZ-0001").await;
    app.get("/no/such/path/12345").await;
    let (status, _, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"route="/api/v1/scan/{token}""#), "{text}");
    assert!(
        text.contains("ysz_http_request_duration_seconds_bucket"),
        "latency must be a histogram"
    );
    assert!(text.contains(r#"ysz_scans_total{status="valid"}"#));
    assert!(text.contains(r#"cache="merchant_views""#));
    assert!(text.contains("ysz_last_refresh_timestamp_seconds"));
    assert!(!text.contains(&token), "raw token in a metric label");
    assert!(
        !text.contains("/no/such/path"),
        "unmatched raw path in a metric label"
    );
}

#[tokio::test]
async fn openapi_describes_every_route_and_every_described_route_is_served() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut described = 0;
    for route in yisaozhi::web::ROUTES {
        let op = &paths[route.path][route.method];
        assert!(
            op.is_object(),
            "{} {} not described",
            route.method,
            route.path
        );
        described += 1;
    }
    let total: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        total, described,
        "the document describes routes that are not served"
    );
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                app.base,
                path.replace("{token}", "1")
                    .replace("{id}", "XZ-0001")
                    .replace("{serial}", "1")
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app
                .client
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap();
            let routed = res.status() != 404 || !res.bytes().await.unwrap().is_empty();
            assert!(routed, "{method} {path} is described but not routed");
        }
    }
}
