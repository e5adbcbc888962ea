//! Consumer tips from the workbench (`/admin/tips`): published and
//! withdrawn through forms that run the JSON API's code, shown on the scan
//! JSON and page of the merchants they cover only, audited with the
//! token's name, refused without the session's `csrf`, and limited to a
//! township's own region.

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::store::AuditFilter;

use crate::helpers::{spawn_app, TestApp};
use crate::workbench::{add_token, login, request, store_of, Session};
use crate::workbench_pages::{register_foreign, FOREIGN};

const TEXT: &str = "中秋将至，购买月饼请查看生产日期和保质期。";

fn days(n: i64) -> String {
    (yisaozhi::clock::today() + jiff::Span::new().days(n)).to_string()
}

/// The ids of every stored tip.
async fn stored_ids(app: &TestApp) -> Vec<String> {
    let (status, list) = app
        .admin(Method::GET, "/api/v1/admin/tips", Some(&app.token), None)
        .await;
    assert_eq!(status, 200, "{list}");
    list["tips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The tip texts of a merchant's scan JSON, and whether its page shows `text`.
async fn shown(app: &TestApp, id: &str, text: &str) -> (Vec<Value>, bool) {
    let scan = app.scan(id).await;
    let token = app.token_of(id).await;
    let (status, _, page) = app.get_text(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    let texts = scan["tips"]
        .as_array()
        .unwrap_or_else(|| panic!("tips always present: {scan}"))
        .iter()
        .map(|t| t["text"].clone())
        .collect();
    (texts, page.contains(text))
}

fn form<'a>(
    text: &'a str,
    regions: &'a str,
    categories: &'a str,
    until: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("text", text),
        ("regions", regions),
        ("categories", categories),
        ("until", until),
    ]
}

/// Publishes through the form with `from` today; the answer.
async fn publish(
    app: &TestApp,
    staff: &Session,
    fields: &[(&str, &str)],
) -> crate::workbench::Answer {
    let today = days(0);
    let mut all = fields.to_vec();
    all.push(("from", &today));
    staff.post(&app.base, "/admin/tips", &all).await
}

#[tokio::test]
async fn a_tip_published_from_the_workbench_shows_on_covered_scans_until_withdrawn() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    let page = staff.get(&app.base, "/admin/tips").await;
    assert_eq!(page.status, 200);
    for field in ["text", "regions", "categories", "from", "until"] {
        assert!(
            page.body.contains(&format!("for=\"tip-{field}\"")),
            "{field} labelled"
        );
    }
    assert!(
        page.body.contains("href=\"/admin/tips\""),
        "in the navigation"
    );

    // Without the session's csrf: 403, nothing published.
    let until = days(30);
    let fields = form(TEXT, "511500", "食品", &until);
    let mut forged = fields.clone();
    let today = days(0);
    forged.push(("from", &today));
    for csrf in [None, Some("0000")] {
        let mut sent = forged.clone();
        sent.extend(csrf.map(|c| ("csrf", c)));
        let path = "/admin/tips";
        let res = request(&app.base, Method::POST, path, &staff.cookies(), Some(&sent)).await;
        assert_eq!(res.status, 403, "{csrf:?}: {}", res.body);
    }
    assert!(stored_ids(&app).await.is_empty());

    // Published: on the grocery's (食品, 511504) scan JSON and page, not
    // on the restaurant's (餐饮).
    let res = publish(&app, &staff, &fields).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/tips?done=published"));
    let ids = stored_ids(&app).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(
        shown(&app, "XZ-0002", TEXT).await,
        (vec![json!(TEXT)], true)
    );
    assert_eq!(shown(&app, "XZ-0001", TEXT).await, (vec![], false));
    let page = staff.get(&app.base, "/admin/tips?done=published").await;
    assert!(page.body.contains(TEXT) && page.body.contains("已发布"));

    // A bad field: refused with the reason, nothing stored.
    let res = publish(&app, &staff, &form(TEXT, "51150", "", &until)).await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("regions"), "{}", res.body);
    assert_eq!(stored_ids(&app).await.len(), 1);

    // Withdraw: without csrf nothing changes; with it the tip is gone.
    let withdraw = format!("/admin/tips/{}/withdraw", ids[0]);
    let res = request(
        &app.base,
        Method::POST,
        &withdraw,
        &staff.cookies(),
        Some(&[]),
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(shown(&app, "XZ-0002", TEXT).await.0, vec![json!(TEXT)]);
    let res = staff.post(&app.base, &withdraw, &[]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(shown(&app, "XZ-0002", TEXT).await, (vec![], false));
    assert!(stored_ids(&app).await.is_empty());

    // Both audited with the token's name.
    let log = store_of(&app)
        .await
        .audit(AuditFilter {
            target: Some(ids[0].clone()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let mut actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [("tip.delete", "demo-admin"), ("tip.publish", "demo-admin")]
    );
}

#[tokio::test]
async fn a_township_publishes_and_withdraws_tips_for_its_region_only() {
    let app = spawn_app().await;
    register_foreign(&app).await;
    let store = store_of(&app).await;
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let township = login(&app.base, &township).await;
    let county = login(&app.base, &app.token).await;

    let until = days(10);
    let county_text = "叙州区的提示：注意食品保质期。";
    let res = publish(&app, &county, &form(county_text, "511504", "", &until)).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let county_tip = stored_ids(&app).await.remove(0);

    // The form suggests its own region; others and every region are refused.
    let page = township.get(&app.base, "/admin/tips").await;
    assert!(
        page.body.contains("value=\"511502\""),
        "its region suggested"
    );
    assert!(
        !page.body.contains(county_text),
        "another region's tip is not listed"
    );
    for regions in ["511504", "", "511500"] {
        let res = publish(&app, &township, &form("越权提示", regions, "", &until)).await;
        assert_eq!(res.status, 403, "{regions}: {}", res.body);
    }
    let res = township
        .post(
            &app.base,
            &format!("/admin/tips/{county_tip}/withdraw"),
            &[],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(stored_ids(&app).await, vec![county_tip.clone()]);

    // Its own: shown on its merchant's scan, not on the county's.
    let own_text = "翠屏区的提示：购买肉类请认准检疫合格证明。";
    let res = publish(&app, &township, &form(own_text, "511502", "", &until)).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        shown(&app, FOREIGN, own_text).await,
        (vec![json!(own_text)], true)
    );
    assert!(!shown(&app, "XZ-0002", own_text).await.1);
    let page = township.get(&app.base, "/admin/tips").await;
    assert!(page.body.contains(own_text) && page.body.contains("/withdraw\""));
    // Staff of every region see both.
    let page = county.get(&app.base, "/admin/tips").await;
    assert!(page.body.contains(own_text) && page.body.contains(county_text));
}
