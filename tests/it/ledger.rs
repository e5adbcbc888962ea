//! The ledger (台账) `GET /api/v1/admin/merchants.csv`: CSV with a byte-order
//! mark that the `csv` crate reads back, the search's filters, the token's
//! regions, and personal data only for a token that may change the
//! merchants.

use reqwest::Method;
use serde_json::Value;
use yisaozhi::auth::{new_token, Scope};
use yisaozhi::store::{AuditFilter, SharedStore, StoreSpec};

use crate::helpers::{spawn_app, TestApp};

use yisaozhi::web::LEDGER_COLUMNS as COLUMNS;

async fn store_of(app: &TestApp) -> SharedStore {
    StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .expect("open the app's store")
}

async fn token(store: &SharedStore, name: &str, scope: &str) -> String {
    let scope = Scope::parse(scope).unwrap();
    let (plain, stored) = new_token(name, &scope, jiff::Timestamp::now()).unwrap();
    store.put_token(stored).await.unwrap();
    plain
}

/// The status, the raw body, and its lines as records (header checked).
async fn ledger(app: &TestApp, query: &str, token: &str) -> (u16, Vec<u8>, Vec<Vec<String>>) {
    let res = app
        .client
        .get(format!("{}/api/v1/admin/merchants.csv{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "text/csv; charset=utf-8"
        );
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
    }
    let body = res.bytes().await.unwrap().to_vec();
    if status != 200 {
        return (status, body, Vec::new());
    }
    assert_eq!(&body[..3], b"\xEF\xBB\xBF", "a UTF-8 byte-order mark first");
    let mut reader = csv::Reader::from_reader(&body[3..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, COLUMNS);
    for name in [
        "编号",
        "名称",
        "统一社会信用代码",
        "联系人",
        "身份证号",
        "等级",
        "原因",
    ] {
        assert!(header.iter().any(|h| h == name), "no column {name}");
    }
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>();
    for row in &rows {
        assert_eq!(row.len(), COLUMNS.len());
    }
    (status, body, rows)
}

fn col(name: &str) -> usize {
    COLUMNS.iter().position(|c| *c == name).unwrap()
}

/// The ids of every merchant the search API finds for `query`, in order.
async fn searched(app: &TestApp, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    for page in 1.. {
        let sep = if query.is_empty() { "?" } else { "&" };
        let (status, v): (u16, Value) = app
            .admin(
                Method::GET,
                &format!("/api/v1/admin/merchants{query}{sep}per_page=50&page={page}"),
                Some(&app.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        if items.is_empty() {
            return out;
        }
        out.extend(items.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
    }
    out
}

/// The stored merchant of a ledger line.
async fn stored(store: &SharedStore, row: &[String]) -> yisaozhi::model::Merchant {
    let id = yisaozhi::model::MerchantId::parse(&row[col("编号")]).unwrap();
    store.merchant(&id).await.unwrap().unwrap()
}

fn ids(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| r[col("编号")].clone()).collect()
}

#[tokio::test]
async fn the_ledger_is_csv_with_a_bom_of_every_merchant_the_filters_match() {
    let app = spawn_app().await;
    let (status, _, all) = ledger(&app, "", &app.token).await;
    assert_eq!(status, 200);
    assert_eq!(all.len(), 74);
    assert_eq!(ids(&all), searched(&app, "").await);

    for query in [
        "?grade=red",
        "?kind=vendor",
        "?q=超市",
        "?category=食品&grade=green",
        "?region=511504&kind=shop",
    ] {
        let (status, _, rows) = ledger(&app, query, &app.token).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(ids(&rows), searched(&app, query).await, "{query}");
        assert!(!rows.is_empty(), "{query}: the demo has such merchants");
    }
    let (_, _, red) = ledger(&app, "?grade=red", &app.token).await;
    let (_, search_red) = app
        .admin(
            Method::GET,
            "/api/v1/admin/merchants?grade=red",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(red.len() as u64, search_red["total"].as_u64().unwrap());
    let (_, _, vendors) = ledger(&app, "?kind=vendor", &app.token).await;
    assert!(vendors.iter().all(|r| r[col("类型")] == "流动摊贩"));

    let (status, _, _) = ledger(&app, "?grade=blue", &app.token).await;
    assert_eq!(status, 400);
    let res = app
        .client
        .get(format!("{}/api/v1/admin/merchants.csv", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn the_ledger_keeps_to_the_tokens_regions_and_shows_personal_data_only_to_writers() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let township = token(&store, "叙州区市场监管所", "write:511504").await;
    let elsewhere = token(&store, "翠屏区市场监管所", "write:511502").await;
    let reader = token(&store, "省局只读", "read").await;

    // A writer of the region: personal data as stored.
    let (status, _, rows) = ledger(&app, "?kind=vendor", &township).await;
    assert_eq!(status, 200);
    assert!(!rows.is_empty());
    for row in &rows {
        let stored = stored(&store, row).await;
        assert_eq!(Some(&row[col("联系人")]), stored.contact_name.as_ref());
        assert_eq!(Some(&row[col("联系电话")]), stored.contact_phone.as_ref());
        assert_eq!(Some(&row[col("身份证号")]), stored.id_number.as_ref());
    }
    let exports = store
        .audit(AuditFilter {
            actor: Some("叙州区市场监管所".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].action, "ledger.export");

    // A reader: every region, personal data masked, no ID numbers, and
    // nothing audited.
    let (status, body, rows) = ledger(&app, "?kind=vendor", &reader).await;
    assert_eq!(status, 200);
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(row[col("联系人")].contains('*'), "{row:?}");
        assert!(row[col("联系电话")].contains("****"), "{row:?}");
        assert_eq!(row[col("身份证号")], "");
    }
    let text = String::from_utf8(body).unwrap();
    for row in &rows {
        let stored = stored(&store, row).await;
        for secret in [stored.contact_phone, stored.id_number]
            .into_iter()
            .flatten()
        {
            assert!(!text.contains(&secret), "{secret} leaked to a reader");
        }
    }
    let audited = store
        .audit(AuditFilter {
            actor: Some("省局只读".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(audited.is_empty());

    // Another district's writer sees none of 叙州区, and may not ask for it.
    let (status, _, rows) = ledger(&app, "", &elsewhere).await;
    assert_eq!(status, 200);
    assert!(rows.is_empty(), "{rows:?}");
    let (status, body, _) = ledger(&app, "?region=511504", &elsewhere).await;
    assert_eq!(status, 403);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "forbidden");
    // A wider region is narrowed to the token's.
    let (status, _, rows) = ledger(&app, "?region=51", &township).await;
    assert_eq!(status, 200);
    assert_eq!(rows.len(), 74);
}
