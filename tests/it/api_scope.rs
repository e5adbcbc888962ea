//! A township token sees only its region in the JSON API's lists too
//! (CONTRACT §5: "everywhere"): search, stats, the reprint list and the
//! audit log never name a merchant outside its prefix, and asking for a
//! region outside it is 403. On the embedded store and on Redis.

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::store::{SharedStore, StoreSpec};

use crate::workbench::add_token;

/// A merchant of 翠屏区 (511502): the township's own.
const OWN: &str = "CP-0001";
/// A merchant of 叙州区 (511504).
const OTHER: &str = "XZ-9001";

async fn call(
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<String>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let res = req.send().await.expect("request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

fn merchant(id: &str, region: &str) -> String {
    json!({"id": id, "name": format!("{id} 商店"), "kind": "shop", "address": "某路 1 号",
        "region": region, "categories": ["食品销售"]})
    .to_string()
}

/// The ids listed under `field` of an answer.
fn ids(answer: &Value, field: &str, id: &str) -> Vec<String> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {answer}"))
        .iter()
        .map(|i| i[id].as_str().unwrap().to_owned())
        .collect()
}

/// Registers [`OWN`] and [`OTHER`] with `admin` (every region), reclassifies
/// both (their printed codes now show another grade: the reprint list),
/// then checks what `township` (write:511502) lists.
async fn check_scope(base: &str, store: &SharedStore, admin: &str) {
    for (id, region) in [(OWN, "511502"), (OTHER, "511504")] {
        let (s, b) = call(
            base,
            Method::POST,
            "/api/v1/admin/merchants",
            admin,
            Some(merchant(id, region)),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let path = format!("/api/v1/admin/merchants/{id}/override");
        let body = json!({"grade": "red", "reason": "现场检查发现问题"}).to_string();
        let (s, b) = call(base, Method::PUT, &path, admin, Some(body)).await;
        assert_eq!(s, 200, "{b}");
    }
    let township = add_token(store, "翠屏区白沙所", "write:511502").await;
    let get = |path: String| {
        let township = township.clone();
        async move { call(base, Method::GET, &path, &township, None).await }
    };

    // Search: its region only, whatever the filters; another region: 403.
    for query in [
        "",
        "?region=51",
        "?region=5115",
        "?q=XZ-9001",
        "?q=CP-0001",
        "?grade=red",
    ] {
        let (s, b) = get(format!("/api/v1/admin/merchants{query}")).await;
        assert_eq!(s, 200, "{query}: {b}");
        let want: Vec<String> = if query.contains("XZ") {
            vec![]
        } else {
            vec![OWN.into()]
        };
        assert_eq!(ids(&b, "items", "id"), want, "{query}");
        assert_eq!(b["total"], want.len(), "{query}");
    }
    let (s, b) = get("/api/v1/admin/merchants?region=511504".into()).await;
    assert_eq!((s, &b["error"]), (403, &json!("forbidden")), "{b}");
    // The all-regions token still finds both.
    let (_, all) = call(
        base,
        Method::GET,
        "/api/v1/admin/merchants?q=0",
        admin,
        None,
    )
    .await;
    let found = ids(&all, "items", "id");
    assert!(
        found.contains(&OWN.into()) && found.contains(&OTHER.into()),
        "{found:?}"
    );

    // Stats: counts of its region only.
    let (s, stats) = get("/api/v1/admin/stats".into()).await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["total"], 1, "{stats}");
    let regions: Vec<&String> = stats["by_region"].as_object().unwrap().keys().collect();
    assert_eq!(regions, ["511502"], "{stats}");
    let (s, _) = get("/api/v1/admin/stats?region=5115".into()).await;
    assert_eq!(s, 200);
    let (s, b) = get("/api/v1/admin/stats?region=511504".into()).await;
    assert_eq!(s, 403, "{b}");

    // The reprint list: its merchant, not the other.
    let (s, b) = get("/api/v1/admin/reprint".into()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ids(&b, "items", "merchant_id"), [OWN], "{b}");
    assert_eq!(b["total"], 1);
    let (_, all) = call(base, Method::GET, "/api/v1/admin/reprint", admin, None).await;
    assert!(
        ids(&all, "items", "merchant_id").contains(&OTHER.into()),
        "{all}"
    );

    // The audit log: entries about its merchant, none about the other.
    let (s, b) = get("/api/v1/admin/audit?limit=1000".into()).await;
    assert_eq!(s, 200, "{b}");
    let targets = ids(&b, "entries", "target");
    assert!(targets.contains(&OWN.into()), "{targets:?}");
    assert!(!targets.iter().any(|t| t == OTHER), "{targets:?}");
    let (_, b) = get(format!("/api/v1/admin/audit?target={OTHER}")).await;
    assert_eq!(b["entries"], json!([]), "{b}");
    let (_, all) = call(
        base,
        Method::GET,
        &format!("/api/v1/admin/audit?target={OTHER}"),
        admin,
        None,
    )
    .await;
    assert!(!all["entries"].as_array().unwrap().is_empty(), "{all}");
}

/// The review queue: a pending submission of [`OTHER`] is listed for
/// `admin`, not for `township`.
async fn check_reviews(base: &str, admin: &str, township: &str) {
    let path = format!("/api/v1/admin/merchants/{OTHER}/access");
    let (s, b) = call(base, Method::POST, &path, admin, None).await;
    assert_eq!(s, 201, "{b}");
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/shop/token"))
        .form(&[
            ("merchant_id", OTHER),
            ("activation_code", b["activation_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let shop: Value = res.json().await.unwrap();
    let body = json!({"report_type": "invoice", "date": yisaozhi::clock::today()}).to_string();
    let shop = shop["token"].as_str().unwrap();
    let (s, b) = call(
        base,
        Method::POST,
        "/api/v1/shop/self-reports",
        shop,
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let queue = "/api/v1/admin/reviews?status=pending";
    let (_, all) = call(base, Method::GET, queue, admin, None).await;
    assert_eq!(ids(&all, "reviews", "merchant"), [OTHER], "{all}");
    let (s, mine) = call(base, Method::GET, queue, township, None).await;
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["reviews"], json!([]), "{mine}");
}

#[tokio::test]
async fn a_township_token_lists_only_its_region_in_the_api_on_the_embedded_store() {
    let app = crate::helpers::spawn_app().await;
    let store = crate::workbench::store_of(&app).await;
    check_scope(&app.base, &store, &app.token).await;
    let township = add_token(&store, "翠屏区市场监管所", "write:511502").await;
    check_reviews(&app.base, &app.token, &township).await;
    // The demo's grid (叙州区): an assistant's merchants and patrol list.
    for path in [
        "/api/v1/admin/grid?assistant=XZ-A01",
        "/api/v1/admin/patrols?assistant=XZ-A01",
    ] {
        let (s, all) = call(&app.base, Method::GET, path, &app.token, None).await;
        assert_eq!(s, 200, "{all}");
        let field = if path.contains("grid") {
            "merchants"
        } else {
            "due"
        };
        assert!(!all[field].as_array().unwrap().is_empty(), "{path}: {all}");
        let (s, mine) = call(&app.base, Method::GET, path, &township, None).await;
        assert_eq!(s, 200, "{mine}");
        assert_eq!(mine[field], json!([]), "{path}: {mine}");
    }
}

#[tokio::test]
async fn a_township_token_lists_only_its_region_in_the_api_on_redis() {
    let redis = crate::redis_helpers::own_standalone();
    let url = redis.url();
    let store = StoreSpec::parse(&url).unwrap().open().await.unwrap();
    let admin = add_token(&store, "县局", "write").await;
    let keys = tempfile::tempdir().unwrap();
    yisaozhi::keys::generate(keys.path(), yisaozhi::clock::today()).unwrap();
    let base = crate::workbench::serve_store(&url, keys.path()).await;
    check_scope(&base, &store, &admin).await;
    let township = add_token(&store, "翠屏区市场监管所", "write:511502").await;
    check_reviews(&base, &admin, &township).await;
}
