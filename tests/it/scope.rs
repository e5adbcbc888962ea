//! Region scope holds on every write: a token changes only merchants of its
//! regions, as stored and as written, whatever the route.

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::auth::{new_token, Scope};
use yisaozhi::model::MerchantId;
use yisaozhi::store::{AuditFilter, SharedStore, StoreSpec};

use crate::helpers::{spawn_app, TestApp};

/// A merchant of 翠屏区 (511502), not of the demo county 叙州区 (511504).
const FOREIGN: &str = "CP-0001";
const FOREIGN_REGION: &str = "511502";

struct Fixture {
    app: TestApp,
    store: SharedStore,
    /// The serial of the foreign merchant's active code.
    serial: u64,
    /// A consumer tip for the foreign merchant's region.
    tip: String,
}

fn foreign_line(region: &str, name: &str) -> String {
    json!({"id": FOREIGN, "name": name, "kind": "shop", "address": "翠屏区南岸西路 1 号",
        "region": region, "categories": ["食品销售"], "contact_name": "王小二",
        "contact_phone": "13800001111", "id_number": "511502198001011234"})
    .to_string()
}

/// A consumer tip for the foreign merchant's region.
fn tip_line() -> String {
    let today = yisaozhi::clock::today();
    json!({"text": "请索要发票", "regions": [FOREIGN_REGION], "categories": [],
        "from": today, "until": today})
    .to_string()
}

fn record_line(id: &str, merchant: &str) -> String {
    json!({"id": id, "merchant": merchant, "kind": "complaint",
        "date": yisaozhi::clock::today(), "substantiated": true})
    .to_string()
}

pub(crate) async fn token(store: &SharedStore, name: &str, scope: &str) -> String {
    let scope = Scope::parse(scope).unwrap();
    let (plain, stored) = new_token(name, &scope, jiff::Timestamp::now()).unwrap();
    store.put_token(stored).await.unwrap();
    plain
}

pub(crate) async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, Value) {
    let res = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// The demo county plus one merchant of another district, registered (with
/// its code) and reclassified by the all-regions demo token, so that every
/// write route has something it could wrongly change.
async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let store = StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap();
    let admin = app.token.clone();
    let (status, res) = send(
        &app,
        Method::POST,
        "/api/v1/admin/merchants",
        &admin,
        &foreign_line(FOREIGN_REGION, "翠屏区放心肉店"),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let serial = res["codes"][0]["serial"].as_u64().unwrap();
    let (status, res) = send(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/merchants/{FOREIGN}/override"),
        &admin,
        r#"{"grade": "yellow", "reason": "复查中"}"#,
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = send(
        &app,
        Method::POST,
        "/api/v1/admin/tips",
        &admin,
        &tip_line(),
    )
    .await;
    assert_eq!(status, 201, "{res}");
    let tip = res["id"].as_str().unwrap().to_owned();
    Fixture {
        app,
        store,
        serial,
        tip,
    }
}

/// Everything stored about the foreign merchant, and the whole audit log.
async fn state_of(store: &SharedStore) -> Value {
    let id = MerchantId::parse(FOREIGN).unwrap();
    json!({
        "merchant": store.merchant(&id).await.unwrap(),
        "records": store.records(&id).await.unwrap(),
        "projection": store.projection(&id).await.unwrap(),
        "override": store.override_of(&id).await.unwrap(),
        "codes": store.codes_of(&id).await.unwrap(),
        "audit": store.audit(AuditFilter { limit: 10_000, ..Default::default() }).await.unwrap(),
    })
}

/// Every admin write route of the route table, with a concrete path and a
/// body that the route accepts from a token in scope (the walk checks that
/// too, so a 403 is the scope's and not a bad body's). A new write route
/// gets the override body; if it needs another, add it here.
fn admin_writes(serial: u64, tip: &str, review: &str) -> Vec<(Method, String, String)> {
    let writes: Vec<_> = yisaozhi::web::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/admin/") && r.method != "get")
        .map(|r| {
            let method = Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
            let id = if r.path.starts_with("/api/v1/admin/tips/") {
                tip
            } else {
                FOREIGN
            };
            let path = r
                .path
                .replace("{id}", id)
                .replace("{serial}", &serial.to_string())
                .replace("{review}", review);
            assert!(
                !path.contains('{'),
                "{path}: a new path parameter; teach this test what to put there"
            );
            let body = match r.path {
                // The attack of issue 17: the same id, re-registered into
                // the caller's own region with its name and personal data gone.
                "/api/v1/admin/merchants" => foreign_line("511504", "改名"),
                "/api/v1/admin/records" => record_line("SCOPE-1", FOREIGN),
                "/api/v1/admin/patrols" => {
                    json!({"merchant_id": FOREIGN, "result": "ok"}).to_string()
                }
                "/api/v1/admin/reviews/{review}" => {
                    json!({"decision": "accept", "reason": "越权测试"}).to_string()
                }
                "/api/v1/admin/tips" => tip_line(),
                "/api/v1/admin/inspectors" => {
                    json!({"id": "CP-J01", "name": "越权", "unit": "翠屏所",
                    "region": FOREIGN_REGION, "role": "inspector"})
                    .to_string()
                }
                // The whole city: wider than the district's scope.
                "/api/v1/admin/plans" => json!({"name": "scope-plan", "seed": "s", "size": 1,
                    "region": "511500"})
                .to_string(),
                _ => json!({"grade": "red", "reason": "越权测试"}).to_string(),
            };
            (method, path, body)
        })
        .collect();
    // The six of today: a filter that finds fewer is broken.
    assert!(writes.len() >= 6, "{writes:?}");
    writes
}

/// A shop's submission of the foreign merchant, pending review.
async fn pending_review(store: &SharedStore) -> String {
    use yisaozhi::shop::{reviews, submissions};
    let body = json!({"report_type": "self_check", "date": yisaozhi::clock::today()});
    let submission =
        submissions::self_report(body.as_object().unwrap(), yisaozhi::clock::today()).unwrap();
    let rules = yisaozhi::grading::Rules::default();
    let foreign = MerchantId::parse(FOREIGN).unwrap();
    let review = reviews::submit(
        &**store,
        &rules,
        &foreign,
        submission,
        yisaozhi::clock::now(),
    );
    review.await.unwrap().id
}

/// Every admin write route, called by tokens that may not change the
/// merchant (a district's token, a read-only token), answers 403 in the
/// envelope and changes nothing: not the merchant, its records, projection,
/// override or codes, and not the audit log. The imports answer 403 too
/// when every line is outside the caller's scope, with the lines in
/// `rejects`. Then a token of both regions makes each call succeed, so the
/// bodies are good and the 403s were the scope's.
#[tokio::test]
async fn every_admin_write_route_refuses_a_token_of_another_region() {
    let f = fixture().await;
    let county = token(&f.store, "叙州区", "write:511504").await;
    let viewer = token(&f.store, "viewer", "read").await;
    let review = pending_review(&f.store).await;
    let before = state_of(&f.store).await;
    let writes = admin_writes(f.serial, &f.tip, &review);
    for who in [&county, &viewer] {
        for (method, path, body) in &writes {
            let (status, res) = send(&f.app, method.clone(), path, who, body).await;
            assert_eq!(status, 403, "{method} {path}: {res}");
            assert_eq!(res["error"], "forbidden", "{method} {path}: {res}");
            assert!(res["message"].is_string(), "{method} {path}: {res}");
        }
    }
    assert_eq!(
        state_of(&f.store).await,
        before,
        "a refused write changed something"
    );

    // Positive control: a token of both districts may do each of them.
    let city = token(&f.store, "宜宾市", "write:5115").await;
    for (method, path, body) in &writes {
        let (status, res) = send(&f.app, method.clone(), path, &city, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {res}"
        );
    }
    assert_ne!(state_of(&f.store).await, before);
}

/// Moving a merchant between regions takes a scope of both: the district it
/// is in may not move it out, the district it would move to may not take
/// it, and the city may. The move is audited with the merchant before and
/// after, personal data masked.
#[tokio::test]
async fn moving_a_merchant_between_regions_needs_both() {
    let f = fixture().await;
    let home = token(&f.store, "翠屏区", &format!("write:{FOREIGN_REGION}")).await;
    let county = token(&f.store, "叙州区", "write:511504").await;
    let city = token(&f.store, "宜宾市", "write:5115").await;
    let before = state_of(&f.store).await;
    let moved = foreign_line("511504", "翠屏区放心肉店（迁址）");
    for who in [&home, &county] {
        let (status, res) =
            send(&f.app, Method::POST, "/api/v1/admin/merchants", who, &moved).await;
        assert_eq!(status, 403, "{res}");
        assert_eq!(res["imported"], 0);
        let reason = res["rejects"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("outside the regions"), "{reason}");
    }
    assert_eq!(state_of(&f.store).await, before);

    let (status, res) = send(
        &f.app,
        Method::POST,
        "/api/v1/admin/merchants",
        &city,
        &moved,
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["imported"], 1);
    let id = MerchantId::parse(FOREIGN).unwrap();
    assert_eq!(
        f.store
            .merchant(&id)
            .await
            .unwrap()
            .unwrap()
            .region
            .as_str(),
        "511504"
    );
    let log = f
        .store
        .audit(AuditFilter {
            target: Some(FOREIGN.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let upserts: Vec<_> = log
        .iter()
        .filter(|e| e.action == "merchant.upsert")
        .collect();
    assert_eq!(upserts.len(), 2, "registered, then moved: {log:?}");
    let entry = upserts[0];
    assert_eq!(entry.actor, "宜宾市");
    assert_eq!(entry.before["merchant"]["region"], FOREIGN_REGION);
    assert_eq!(entry.after["merchant"]["region"], "511504");
    assert_eq!(entry.before["merchant"]["name"], "翠屏区放心肉店");
    assert_eq!(entry.after["changed"], json!(["name", "region"]));
    assert!(upserts[1].before["merchant"].is_null(), "the registration");
    let text = serde_json::to_string(&log).unwrap();
    for secret in ["王小二", "13800001111", "511502198001011234"] {
        assert!(!text.contains(secret), "{secret} in the audit log unmasked");
    }
    assert_eq!(entry.after["merchant"]["contact_phone"], "138****1111");
}

/// A records import is judged line by line: lines for merchants in scope
/// are imported, lines for others are rejected with their line number and
/// change nothing (the answer is 200 if anything was imported, 403 if
/// nothing was and a line was out of scope).
#[tokio::test]
async fn a_records_import_rejects_the_lines_outside_the_scope() {
    let f = fixture().await;
    let county = token(&f.store, "叙州区", "write:511504").await;
    let before = state_of(&f.store).await;
    let body = [
        record_line("MIX-1", "XZ-0002"),
        record_line("MIX-2", FOREIGN),
    ]
    .join("\n");
    let (status, res) = send(
        &f.app,
        Method::POST,
        "/api/v1/admin/records",
        &county,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["imported"], 1);
    assert_eq!(res["rejected"], 1);
    assert_eq!(res["rejects"][0]["line"], 2);
    let reason = res["rejects"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(FOREIGN) && reason.contains("outside the regions"),
        "{reason}"
    );
    assert_eq!(res["merchants"], json!(["XZ-0002"]));
    let after = state_of(&f.store).await;
    for key in ["merchant", "records", "projection", "override", "codes"] {
        assert_eq!(
            after[key], before[key],
            "{key} of the foreign merchant changed"
        );
    }
    let xz = MerchantId::parse("XZ-0002").unwrap();
    assert!(f
        .store
        .records(&xz)
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == "MIX-1"));
}
