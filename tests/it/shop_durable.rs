//! The shop's side on Redis with AOF: a shop's token, its submissions and
//! the decisions survive Redis killed (SIGKILL) and started again, and a
//! new service process over it (CONTRACT §6, DESIGN §10).

use reqwest::Method;
use serde_json::json;
use yisaozhi::settings::{Overrides, Settings};
use yisaozhi::startup::Application;
use yisaozhi::store::StoreSpec;

use crate::helpers::TestApp;
use crate::redis_helpers::DurableRedis;
use crate::shop::{as_shop, audit_actions, decide, rules_of, seed, shop_token, Y};

/// Starts the service on `store` with the keys in `dir/keys`.
async fn serve(store: &str, dir: &std::path::Path) -> String {
    let settings = Settings::load(Overrides {
        store: Some(store.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        key_dir: Some(dir.join("keys")),
        ..Overrides::default()
    })
    .expect("settings");
    let app = Application::build(settings).await.expect("build app");
    let base = app.base_url().to_owned();
    tokio::spawn(app.run_until_stopped());
    base
}

#[tokio::test]
async fn a_shops_token_submissions_and_decisions_survive_redis_and_the_service_restarting() {
    let mut redis = DurableRedis::start();
    let dir = tempfile::tempdir().unwrap();
    yisaozhi::keys::generate(&dir.path().join("keys"), yisaozhi::clock::today()).unwrap();
    let store = StoreSpec::Redis(redis.url()).open().await.unwrap();
    let scope = yisaozhi::auth::Scope::parse("write").unwrap();
    let (token, stored) =
        yisaozhi::auth::new_token("县局", &scope, yisaozhi::clock::now()).unwrap();
    store.put_token(stored).await.unwrap();
    let base = serve(&redis.url(), dir.path()).await;
    let app = TestApp {
        base,
        token,
        client: reqwest::Client::new(),
        dir,
    };
    seed(&app).await;

    let shop = shop_token(&app, Y).await;
    let post = |path: &'static str, body: serde_json::Value| {
        let (app, shop) = (&app, shop.clone());
        async move { as_shop(app, &shop, Method::POST, path, Some(body)).await }
    };
    let (_, reply) = post(
        "/api/v1/shop/replies",
        json!({"rule": "Y1", "text": "已补报年报"}),
    )
    .await;
    let (_, repair) = post(
        "/api/v1/shop/repairs",
        json!({"record_id": "y-pen", "commitment": true, "statement": "已缴清罚款"}),
    )
    .await;
    assert_eq!(
        decide(&app, reply["id"].as_str().unwrap(), "accept", "属实")
            .await
            .0,
        200
    );
    let (s, _) = post("/api/v1/shop/commitment", json!({"accept": true})).await;
    assert_eq!(s, 201);
    let (_, before) = as_shop(&app, &shop, Method::GET, "/api/v1/shop/me", None).await;

    redis.kill();
    redis.restart();
    let again = TestApp {
        base: serve(&redis.url(), app.dir.path()).await,
        ..app
    };

    // The session, the submissions and their states are as they were.
    let (s, after) = as_shop(&again, &shop, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["submissions"], before["submissions"]);
    assert_eq!(after["commitment"], before["commitment"]);
    // The accepted reply and the commitment are on the scan; the pending
    // repair is decided after the restart, once.
    let scan = again.scan(Y).await;
    assert_eq!(scan["reasons"][0]["reply"]["text"], "已补报年报", "{scan}");
    assert!(scan["records"]["commitment"].is_object());
    let rid = repair["id"].as_str().unwrap();
    assert_eq!(decide(&again, rid, "accept", "符合条件").await.0, 200);
    assert_eq!(decide(&again, rid, "accept", "再次").await.0, 409);
    assert_eq!(rules_of(&again.scan(Y).await), ["Y1"]);
    // The audit entries of the submissions and decisions are kept.
    let actions = audit_actions(&again, Y).await;
    for a in [
        "shop.access.issue",
        "shop.activate",
        "shop.submit.reply",
        "shop.submit.repair",
        "review.accept",
        "shop.commitment",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
