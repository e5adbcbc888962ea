//! Consumer tips (消费提示, CONTRACT §5): published through the API,
//! scoped and audited like every write, and shown on the scan page, the
//! scan JSON and `/api/v1/merchants/{id}` of the merchants they cover on
//! the days they are in force (`"tips"` always present). The two-process
//! coherence test on Redis is in `redis_faults/tips.rs`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::auth::{new_token, Scope};
use yisaozhi::store::{AuditFilter, SharedStore, StoreSpec};

use crate::helpers::{flip_digit, spawn_app, TestApp};

const TIPS: &str = "/api/v1/admin/tips";
const MOONCAKES: &str = "中秋将至，购买月饼请查看生产日期和保质期，索要购物凭证。";

fn today() -> jiff::civil::Date {
    yisaozhi::clock::today()
}

fn days(n: i64) -> jiff::civil::Date {
    today() + jiff::Span::new().days(n)
}

fn tip(text: &str, regions: &[&str], categories: &[&str], from: i64, until: i64) -> Value {
    json!({"text": text, "regions": regions, "categories": categories,
           "from": days(from), "until": days(until)})
}

async fn store_of(app: &TestApp) -> SharedStore {
    StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap()
}

async fn token(store: &SharedStore, name: &str, scope: &str) -> String {
    let scope = Scope::parse(scope).unwrap();
    let (plain, stored) = new_token(name, &scope, jiff::Timestamp::now()).unwrap();
    store.put_token(stored).await.unwrap();
    plain
}

/// The audit log, of `target` if given.
async fn audit_log(app: &TestApp, target: Option<&str>) -> Vec<yisaozhi::model::AuditEntry> {
    let filter = AuditFilter {
        target: target.map(str::to_owned),
        limit: 1000,
        ..Default::default()
    };
    store_of(app).await.audit(filter).await.unwrap()
}

/// Publishes `body` with `token`.
async fn publish(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.admin(Method::POST, TIPS, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let path = format!("{TIPS}/{id}");
    app.admin(Method::DELETE, &path, Some(token), None).await
}

async fn published(app: &TestApp, body: Value) -> String {
    let (status, res) = publish(app, &app.token, body).await;
    assert_eq!(status, 201, "{res}");
    let id = res["id"].as_str().unwrap().to_owned();
    assert_eq!(res, json!({ "id": id }));
    id
}

/// What a merchant's answers show: the tips of the scan JSON (also by
/// `Accept` on the page route), of `/api/v1/merchants/{id}`, and the page.
struct Shown {
    json: Value,
    merchant: Value,
    page: String,
}

async fn shown(app: &TestApp, id: &str) -> Shown {
    let token = app.token_of(id).await;
    let scan = app.scan(id).await;
    assert!(scan["tips"].is_array(), "{scan}");
    let by_accept = app
        .client
        .get(format!("{}/S/{token}", app.base))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(by_accept["tips"], scan["tips"]);
    let (status, merchant) = app.get(&format!("/api/v1/merchants/{id}")).await;
    assert_eq!(status, 200, "{merchant}");
    let (status, _, page) = app.get_text(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    Shown {
        json: scan["tips"].clone(),
        merchant: merchant["tips"].clone(),
        page,
    }
}

fn public(text: &str, until: i64) -> Value {
    json!({"text": text, "until": days(until)})
}

/// A tip for a region and a category shows on every answer of a covered
/// merchant, and only there: not for another category, another region, or
/// before it starts; a tip with no categories covers every category; one
/// deleted is gone at once. Answers memoised before a change do not hide
/// it. Each publication and deletion is in the audit log with its actor.
#[tokio::test]
async fn a_tip_shows_on_the_scan_page_and_json_of_the_merchants_it_covers() {
    let app = spawn_app().await;
    // XZ-0002 sells 食品 in 511504; XZ-0001 is a restaurant (餐饮) there.
    for id in ["XZ-0001", "XZ-0002"] {
        let before = shown(&app, id).await;
        assert_eq!(before.json, json!([]), "{id}: always present, empty");
        assert_eq!(before.merchant, json!([]), "{id}");
        assert!(!before.page.contains("消费提示"), "{id}");
    }
    // A code that shows no merchant has no tips, but the member is there.
    let forged = flip_digit(&app.token_of("XZ-0002").await, 30);
    let (status, body) = app.get(&format!("/api/v1/scan/{forged}")).await;
    assert_eq!((status, &body["tips"]), (400, &json!([])), "{body}");

    let food = published(&app, tip(MOONCAKES, &["511500"], &["食品"], 0, 30)).await;
    let everyone = "遇到消费纠纷，请拨打12315或通过全国12315平台投诉。";
    let all = published(&app, tip(everyone, &["511504"], &[], -10, 0)).await;
    let elsewhere = "翠屏区的提示";
    published(&app, tip(elsewhere, &["511502"], &[], 0, 30)).await;
    let later = "明天才开始的提示";
    published(&app, tip(later, &["511500"], &["食品"], 1, 30)).await;

    let grocery = shown(&app, "XZ-0002").await;
    let want = json!([public(MOONCAKES, 30), public(everyone, 0)]);
    assert_eq!(grocery.json, want, "the latest starting first");
    assert_eq!(grocery.merchant, want);
    for text in [MOONCAKES, everyone, "消费提示"] {
        assert!(grocery.page.contains(text), "{text} not on the page");
    }
    assert!(grocery.page.contains(&format!("有效期至 {}", days(30))));
    let restaurant = shown(&app, "XZ-0001").await;
    assert_eq!(restaurant.json, json!([public(everyone, 0)]));
    assert!(!restaurant.page.contains(MOONCAKES));
    for text in [elsewhere, later] {
        assert!(!grocery.page.contains(text) && !restaurant.page.contains(text));
    }

    let (status, res) = delete(&app, &app.token, &food).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res, json!({"id": food, "deleted": true}));
    let grocery = shown(&app, "XZ-0002").await;
    assert_eq!(grocery.json, json!([public(everyone, 0)]));
    assert!(!grocery.page.contains(MOONCAKES));
    let (status, res) = delete(&app, &app.token, &food).await;
    assert_eq!((status, &res["error"]), (404, &json!("not_found")), "{res}");

    let (status, listed) = app.admin(Method::GET, TIPS, Some(&app.token), None).await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed["tips"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let first = listed.iter().find(|t| t["id"] == all).unwrap();
    assert_eq!(first["in_force"], true);
    assert_eq!(first["regions"], json!(["511504"]));
    assert_eq!(first["actor"], "demo-admin");
    assert_eq!(listed[0]["text"], later, "the latest starting first");
    assert_eq!(listed[0]["in_force"], false);

    let log = audit_log(&app, None).await;
    let of = |action: &str| log.iter().filter(|e| e.action == action).count();
    assert_eq!((of("tip.publish"), of("tip.delete")), (4, 1));
    let deleted = log.iter().find(|e| e.action == "tip.delete").unwrap();
    assert_eq!(
        (deleted.actor.as_str(), deleted.target.as_str()),
        ("demo-admin", food.as_str())
    );
    assert_eq!(deleted.before["text"], MOONCAKES);
}

/// A tip written by another process (here: straight into the store, as a
/// replica would) is picked up by the change poll; one that ended
/// yesterday is not shown, one in force today is.
#[tokio::test]
async fn a_tip_written_elsewhere_shows_after_the_poll_and_not_after_its_last_day() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let tips = yisaozhi::tips::Tips::default();
    for (text, from, until) in [("昨天结束的提示", -5, -1), ("今天有效的提示", -5, 0)]
    {
        let tip = yisaozhi::tips::Tip {
            id: yisaozhi::tips::new_id().unwrap(),
            text: text.into(),
            regions: vec![yisaozhi::model::RegionCode::parse("511504").unwrap()],
            categories: vec![],
            from: days(from),
            until: days(until),
            actor: "另一个副本".into(),
            at: jiff::Timestamp::now(),
        };
        let audit = yisaozhi::model::AuditEntry {
            at: tip.at,
            actor: tip.actor.clone(),
            action: "tip.publish".into(),
            target: tip.id.clone(),
            before: Value::Null,
            after: json!(tip),
            reason: None,
        };
        assert!(tips.publish(&*store, &tip, audit).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tips = app.scan("XZ-0003").await["tips"].clone();
        if tips != json!([]) {
            assert_eq!(tips, json!([public("今天有效的提示", 0)]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poll never picked the tips up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = shown(&app, "XZ-0003").await.page;
    assert!(page.contains("今天有效的提示") && !page.contains("昨天结束的提示"));
}

/// Every malformed publication is 400 in the envelope with a message that
/// names the field, an oversized body 413; nothing is stored or audited.
#[tokio::test]
async fn publishing_refuses_bad_bodies_in_the_envelope_and_stores_nothing() {
    let app = spawn_app().await;
    let good = tip(MOONCAKES, &["511504"], &["食品"], 0, 7);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("text", json!("")), "text"),
        (with("text", json!("长".repeat(201))), "text"),
        (with("text", json!("第一行\n第二行")), "text"),
        (with("text", json!("看\u{202e}反")), "text"),
        (with("text", json!(7)), "text"),
        (with("regions", json!(["5115"])), "regions"),
        (with("regions", json!(["51150a"])), "regions"),
        (
            with(
                "regions",
                json!((0..65)
                    .map(|i| format!("{}", 510001 + i))
                    .collect::<Vec<_>>()),
            ),
            "regions",
        ),
        (with("regions", json!("511504")), "regions"),
        (with("categories", json!([""])), "categories"),
        (with("categories", json!(["a\u{0}b"])), "categories"),
        (
            with(
                "categories",
                json!((0..33).map(|i| format!("类{i}")).collect::<Vec<_>>()),
            ),
            "categories",
        ),
        (with("from", json!("2026/09/01")), "from"),
        (with("until", json!("someday")), "until"),
        (with("until", json!(days(-1))), "until"),
        (with("from", json!(days(8))), "until"),
        (with("from", json!(days(-400))), "until"),
        (with("region", json!(["511504"])), "region"),
        (json!({"text": MOONCAKES}), "regions"),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in &cases {
        let (status, res) = publish(&app, &app.token, body.clone()).await;
        assert_eq!(status, 400, "{body}: {res}");
        assert_eq!(res["error"], "bad_request", "{res}");
        let message = res["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{body}: {message} (expected to name {field})"
        );
    }
    for raw in [
        "not json".to_owned(),
        format!(
            r#"{{"text": "a", "text": "b", "regions": [], "categories": [], "from": "{0}", "until": "{0}"}}"#,
            today()
        ),
    ] {
        let res = app
            .client
            .post(format!("{}{TIPS}", app.base))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{raw}");
        let res: Value = res.json().await.unwrap();
        assert_eq!(res["error"], "bad_request", "{res}");
    }
    let huge = with("text", json!("长".repeat(20_000)));
    let (status, res) = publish(&app, &app.token, huge).await;
    assert_eq!(
        (status, &res["error"]),
        (413, &json!("payload_too_large")),
        "{res}"
    );

    let (_, listed) = app.admin(Method::GET, TIPS, Some(&app.token), None).await;
    assert_eq!(listed, json!({"tips": []}));
    let log = audit_log(&app, None).await;
    assert!(log.iter().all(|e| !e.action.starts_with("tip.")));
}

/// A township's token publishes and deletes tips only for regions inside
/// its scope; a tip for every region takes a scope of every region; a
/// read-only token lists but writes nothing; no token is 401.
#[tokio::test]
async fn a_token_publishes_and_deletes_tips_only_inside_its_scope() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let township = token(&store, "叙州区", "write:511504").await;
    let other = token(&store, "翠屏区", "write:511502").await;
    let city = token(&store, "宜宾市", "write:5115").await;
    let viewer = token(&store, "viewer", "read").await;
    let body = |regions: &[&str]| tip("请索要发票", regions, &[], 0, 7);
    for (who, regions) in [
        (&township, &["511500"][..]),
        (&township, &[][..]),
        (&township, &["511504", "511502"][..]),
        (&city, &["510000"][..]),
        (&city, &[][..]),
        (&viewer, &["511504"][..]),
    ] {
        let (status, res) = publish(&app, who, body(regions)).await;
        assert_eq!(
            (status, &res["error"]),
            (403, &json!("forbidden")),
            "{regions:?}: {res}"
        );
    }
    let (status, res) = app
        .admin(Method::POST, TIPS, None, Some(body(&["511504"])))
        .await;
    assert_eq!(status, 401, "{res}");
    let (status, own) = publish(&app, &township, body(&["511504"])).await;
    assert_eq!(status, 201, "{own}");
    let own = own["id"].as_str().unwrap();
    let (status, res) = publish(&app, &city, body(&["511500", "511502"])).await;
    assert_eq!(status, 201, "{res}");
    published(&app, body(&[])).await;

    for who in [&other, &viewer] {
        let (status, res) = delete(&app, who, own).await;
        assert_eq!(status, 403, "{res}");
    }
    let (status, listed) = app.admin(Method::GET, TIPS, Some(&viewer), None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["tips"].as_array().unwrap().len(), 3);
    for bad in ["nope", "tip-0000000000000000", "tip-%2e%2e"] {
        let (status, res) = delete(&app, &township, bad).await;
        assert_eq!(status, 404, "{bad}: {res}");
    }
    let path = format!("{TIPS}/{own}");
    let (status, _) = app.admin(Method::DELETE, &path, None, None).await;
    assert_eq!(status, 401);
    let (status, res) = delete(&app, &township, own).await;
    assert_eq!(status, 200, "{res}");
    let log = audit_log(&app, Some(own)).await;
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("tip.delete", "叙州区"), ("tip.publish", "叙州区")]
    );
}

/// At most `MAX_TIPS` are stored: one more is 409, stored nowhere.
#[tokio::test]
async fn publishing_beyond_the_most_tips_stored_is_a_conflict() {
    use yisaozhi::tips::{Tip, MAX_TIPS, TIPS as COLLECTION};
    let app = spawn_app().await;
    let store = store_of(&app).await;
    for i in 0..MAX_TIPS {
        let tip = Tip {
            id: format!("tip-{i:016x}"),
            text: format!("提示{i}"),
            regions: vec![],
            categories: vec![],
            from: days(0),
            until: days(1),
            actor: "demo-admin".into(),
            at: jiff::Timestamp::now(),
        };
        yisaozhi::store::documents::put(&*store, COLLECTION, &tip.id, &tip, None)
            .await
            .unwrap();
    }
    let (status, res) = publish(&app, &app.token, tip("再来一条", &["511504"], &[], 0, 1)).await;
    assert_eq!((status, &res["error"]), (409, &json!("conflict")), "{res}");
    let (_, listed) = app.admin(Method::GET, TIPS, Some(&app.token), None).await;
    assert_eq!(listed["tips"].as_array().unwrap().len(), MAX_TIPS);
    // Shown at most a few per merchant.
    let shown = app.scan("XZ-0002").await["tips"].as_array().unwrap().len();
    assert_eq!(shown, yisaozhi::tips::MAX_SHOWN);
}
