//! The regulator's workflows: search, stats, reprint list, registration of an
//! itinerant vendor, record import over HTTP, and expired codes.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn search_filters_and_pages() {
    let app = spawn_app().await;
    let t = Some(app.token.as_str());
    let (status, all) = app
        .admin(Method::GET, "/api/v1/admin/merchants?per_page=10", t, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 74);
    assert_eq!(all["items"].as_array().unwrap().len(), 10);
    let (_, red) = app
        .admin(
            Method::GET,
            "/api/v1/admin/merchants?grade=red&per_page=100",
            t,
            None,
        )
        .await;
    assert_eq!(red["total"], 7, "{red}");
    assert!(red["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["grade"] == "red"));
    let (_, vendors) = app
        .admin(Method::GET, "/api/v1/admin/merchants?kind=vendor", t, None)
        .await;
    assert_eq!(vendors["total"], 10);
    let (_, by_id) = app
        .admin(Method::GET, "/api/v1/admin/merchants?q=XZ-0005", t, None)
        .await;
    assert_eq!(by_id["total"], 1);
    let uscc = by_id["items"][0]["uscc"].as_str().unwrap().to_owned();
    let (_, by_code) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/merchants?q={uscc}"),
            t,
            None,
        )
        .await;
    assert_eq!(by_code["items"][0]["id"], "XZ-0005");
    let (_, page2) = app
        .admin(
            Method::GET,
            "/api/v1/admin/merchants?per_page=50&page=2",
            t,
            None,
        )
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 24);
    let (status, _) = app
        .admin(Method::GET, "/api/v1/admin/merchants?grade=blue", t, None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin(Method::GET, "/api/v1/admin/merchants", None, None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn stats_count_by_grade_region_and_category() {
    let app = spawn_app().await;
    let (status, stats) = app
        .admin(Method::GET, "/api/v1/admin/stats", Some(&app.token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stats["total"], 74);
    assert_eq!(
        stats["by_grade"],
        json!({"green": 55, "yellow": 12, "red": 7})
    );
    assert_eq!(stats["by_region"]["511504"]["red"], 7);
    assert!(stats["by_category"].as_object().unwrap().len() >= 5);
    let (_, none) = app
        .admin(
            Method::GET,
            "/api/v1/admin/stats?region=44",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn a_regrade_puts_the_shop_on_the_reprint_list_until_it_gets_a_new_code() {
    let app = spawn_app().await;
    let t = Some(app.token.as_str());
    let (_, before) = app
        .admin(Method::GET, "/api/v1/admin/reprint", t, None)
        .await;
    assert_eq!(before["total"], 0, "{before}");
    let (status, _) = app
        .admin(
            Method::PUT,
            "/api/v1/admin/merchants/XZ-0007/override",
            t,
            Some(json!({"grade": "yellow", "reason": "抽查复核"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = app
        .admin(Method::GET, "/api/v1/admin/reprint", t, None)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["merchant_id"], "XZ-0007");
    assert_eq!(list["items"][0]["printed_grade"], "green");
    assert_eq!(list["items"][0]["grade"], "yellow");
    let scan = app.scan("XZ-0007").await;
    assert_eq!(scan["outdated"], true);
    let (status, _) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants/XZ-0007/codes",
            t,
            None,
        )
        .await;
    assert_eq!(status, 201);
    let (_, after) = app
        .admin(Method::GET, "/api/v1/admin/reprint", t, None)
        .await;
    assert_eq!(after["total"], 0);
    assert_eq!(app.scan("XZ-0007").await["outdated"], false);
}

async fn post_jsonl(
    app: &crate::helpers::TestApp,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/x-ndjson")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn an_itinerant_vendor_registers_signs_a_commitment_and_leaves_with_a_code() {
    let app = spawn_app().await;
    let vendor = json!({"id": "YS-0001", "name": "张记烤红薯（流动摊贩）", "kind": "vendor",
        "address": "叙州区南岸街道夜市", "region": "511504", "categories": ["食品"],
        "contact_name": "张大山", "contact_phone": "13912345678", "id_number": "511504198001011234"});
    let (status, res) = post_jsonl(&app, "/api/v1/admin/merchants", &format!("{vendor}\n")).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["imported"], 1);
    let url = res["codes"][0]["url"].as_str().unwrap();
    assert!(url.contains("/S/"));
    let commitment = json!({"id": "C-YS-0001", "merchant": "YS-0001", "kind": "commitment", "date": "2026-01-05", "summary": "食品安全承诺书"});
    let (status, res) = post_jsonl(&app, "/api/v1/admin/records", &format!("{commitment}\n")).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["imported"], 1);
    let scan = app.scan("YS-0001").await;
    assert_eq!(scan["merchant"]["kind"], "vendor");
    assert_eq!(scan["grade"], "green");
    let text = scan.to_string();
    for secret in ["张大山", "13912345678", "511504198001011234"] {
        assert!(!text.contains(secret), "{secret} shown unmasked");
    }
}

#[tokio::test]
async fn records_posted_over_http_are_graded_at_once_and_bad_lines_reported() {
    let app = spawn_app().await;
    assert_eq!(app.scan("XZ-0002").await["grade"], "green");
    let today = yisaozhi::clock::today();
    let body = [
        json!({"id": "H-1", "merchant": "XZ-0002", "kind": "sampling", "date": today, "product": "豆腐", "passed": false, "failed_items": ["苯甲酸"]}).to_string(),
        json!({"id": "H-2", "merchant": "XZ-0002", "kind": "sampling", "date": today, "product": "豆浆", "passed": false}).to_string(),
        json!({"id": "H-3", "merchant": "NOPE", "kind": "complaint", "date": today, "substantiated": true}).to_string(),
        "{bad json".to_owned(),
    ]
    .join("\n");
    let (status, res) = post_jsonl(&app, "/api/v1/admin/records", &body).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["imported"], 2);
    assert_eq!(res["rejected"], 2);
    let lines: Vec<u64> = res["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 3]);
    let scan = app.scan("XZ-0002").await;
    assert_eq!(scan["grade"], "red");
    assert_eq!(scan["reasons"][0]["rule"], "R3");
    let (_, again) = post_jsonl(&app, "/api/v1/admin/records", &body).await;
    assert_eq!(again["imported"], 0);
    assert_eq!(again["duplicate"], 2);
}

#[tokio::test]
async fn an_expired_code_is_reported_and_still_names_the_merchant() {
    let app = spawn_app().await;
    let store = yisaozhi::store::StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap();
    let keys = yisaozhi::keys::Keyring::load(&app.dir.path().join("keys")).unwrap();
    let (kid, key) = keys.active().unwrap();
    let serial = store.next_serial().await.unwrap();
    let issued = jiff::civil::date(2024, 1, 1);
    let expires = jiff::civil::date(2025, 1, 1);
    let claims = yisaozhi_codes::Claims {
        kid,
        merchant: "XZ-0008".into(),
        serial,
        issued: yisaozhi::clock::to_day(issued).unwrap(),
        expires: yisaozhi::clock::to_day(expires).unwrap(),
        grade: yisaozhi::model::Grade::Green,
    };
    let token = yisaozhi_codes::sign(&claims, key).unwrap();
    store
        .issue_code(
            yisaozhi::model::IssuedCode {
                serial,
                merchant: yisaozhi::model::MerchantId::parse("XZ-0008").unwrap(),
                kid: kid.0,
                token: token.clone(),
                issued_at: issued,
                expires_at: expires,
                printed_grade: yisaozhi::model::Grade::Green,
                status: yisaozhi::model::CodeStatus::Active,
            },
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (status, body) = app.get(&format!("/api/v1/scan/{token}")).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["code"]["status"], "expired");
    assert_eq!(body["merchant"]["id"], "XZ-0008");
    let (_, _, html) = app.get_text(&format!("/s/{token}")).await;
    assert!(html.contains("过期"), "expired page must say so");
}
