//! The review queue in the workbench (`/admin/reviews`) and the shop's
//! access on a merchant's page: decisions made by forms land exactly as
//! the JSON API's (status, record, regrade, audit with the token's name),
//! a township token sees and decides only its region's submissions, and a
//! form without the session's `csrf` changes nothing; the pending queue
//! and its count are exact past many decided submissions.

use reqwest::Method;
use serde_json::{json, Value};

use yisaozhi::shop::review_queue;
use yisaozhi::shop::reviews::{self, Review, ReviewStatus, REVIEWS};
use yisaozhi::store::documents;

use crate::helpers::TestApp;
use crate::shop::{as_shop, rules_of, seed, shop_token, Y};
use crate::workbench::{add_token, login, request, store_of, Session};
use crate::workbench_dashboard::queue_count;

/// A merchant of 翠屏区 (511502), outside the demo county (511504).
pub(crate) const FOREIGN: &str = "CP-0009";

async fn register_foreign(app: &TestApp) {
    let line = json!({"id": FOREIGN, "name": "翠屏区放心粮油店", "kind": "shop",
        "address": "翠屏区南岸西路 9 号", "region": "511502", "categories": ["粮油"]});
    let (s, b) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants",
            Some(&app.token),
            Some(line),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// Files a submission as the shop holding `token`; its id.
async fn file(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let (s, b) = as_shop(app, token, Method::POST, path, Some(body)).await;
    assert_eq!(s, 201, "{path}: {b}");
    b["id"].as_str().unwrap().to_owned()
}

/// The submission `id` as the API lists it among `status`.
async fn listed(app: &TestApp, token: &str, status: &str) -> Vec<Value> {
    let (s, b) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/reviews?status={status}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["reviews"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The submission ids a workbench page shows, in order.
fn shown(page: &str) -> Vec<String> {
    page.split("id=\"review-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

fn day(offset: i64) -> String {
    use jiff::ToSpan;
    yisaozhi::clock::today()
        .checked_add(offset.days())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn accepting_and_rejecting_in_the_workbench_is_what_the_api_then_says() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    let shop = shop_token(&app, Y).await;
    let report = file(
        &app,
        &shop,
        "/api/v1/shop/self-reports",
        json!({"report_type": "incoming_check", "date": day(-1), "supplier": "宜宾某批发部",
               "product": "散装白酒", "items": [{"item": "票证齐全", "ok": true}]}),
    )
    .await;
    let repair = file(
        &app,
        &shop,
        "/api/v1/shop/repairs",
        json!({"record_id": "y-pen", "commitment": true, "statement": "已缴清罚款并整改"}),
    )
    .await;
    let reply = file(
        &app,
        &shop,
        "/api/v1/shop/replies",
        json!({"rule": "Y2", "text": "罚款已缴清。"}),
    )
    .await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区审核员", "write:511504").await;
    let staff = login(&app.base, &token).await;

    // The queue: the three, oldest first, with what they are and the merchant.
    let page = staff.get(&app.base, "/admin/reviews").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        shown(&page.body),
        [report.as_str(), repair.as_str(), reply.as_str()]
    );
    for words in [
        "进货查验",
        "宜宾某批发部",
        "票证齐全",
        "信用修复申请",
        "y-pen",
        "叙市监罚〔2026〕1号",
        "已缴清罚款并整改",
        "罚款已缴清。",
        "href=\"/admin/merchants/SHOP-Y\"",
        "name=\"reason\" required",
    ] {
        assert!(page.body.contains(words), "{words}");
    }
    let repairs = staff.get(&app.base, "/admin/reviews?kind=repair").await;
    assert_eq!(shown(&repairs.body), [repair.as_str()]);

    // Rejecting needs a reason: refused, nothing changed.
    let path = |id: &str| format!("/admin/reviews/{id}");
    let res = staff
        .post(
            &app.base,
            &path(&reply),
            &[("decision", "reject"), ("reason", " ")],
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(res.body.contains("reason"), "{}", res.body);
    assert_eq!(listed(&app, &app.token, "pending").await.len(), 3);

    // Accept the repair: a `repair` record, Y2 gone from the scan at once.
    assert!(rules_of(&app.scan(Y).await).contains(&"Y2".to_owned()));
    let res = staff
        .post(&app.base, &path(&repair), &[("decision", "accept")])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/reviews?done=accept"));
    let accepted = listed(&app, &app.token, "accepted").await;
    assert_eq!(ids(&accepted), [repair.as_str()]);
    let record = accepted[0]["decision"]["record_id"].as_str().unwrap();
    assert_eq!(accepted[0]["decision"]["actor"], "叙州区审核员");
    assert!(!rules_of(&app.scan(Y).await).contains(&"Y2".to_owned()));

    // Accept the self-report: a `self_report` record of that merchant.
    let res = staff
        .post(&app.base, &path(&report), &[("decision", "accept")])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let rec_id = format!("shop-{report}");
    let store_records = store
        .records(&yisaozhi::model::MerchantId::parse(Y).unwrap())
        .await
        .unwrap();
    let made = store_records
        .iter()
        .find(|r| r.id == rec_id)
        .expect("record");
    assert_eq!(made.body.kind(), "self_report");
    assert!(store_records
        .iter()
        .any(|r| r.body.kind() == "repair" && r.id == record));

    // Reject the reply with a reason: the API shows it, the shop reads it.
    let res = staff
        .post(
            &app.base,
            &path(&reply),
            &[("decision", "reject"), ("reason", "请补充缴款凭证")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let rejected = listed(&app, &app.token, "rejected").await;
    assert_eq!(ids(&rejected), [reply.as_str()]);
    assert_eq!(rejected[0]["decision"]["reason"], "请补充缴款凭证");
    let (_, me) = as_shop(&app, &shop, Method::GET, "/api/v1/shop/me", None).await;
    assert!(me.to_string().contains("请补充缴款凭证"), "{me}");

    // Decided once: a second decision is 409; the queue is empty.
    let res = staff
        .post(&app.base, &path(&reply), &[("decision", "accept")])
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    let page = staff.get(&app.base, "/admin/reviews?done=accept").await;
    assert!(shown(&page.body).is_empty());
    assert!(page.body.contains("没有待审核事项"));
    assert!(page.body.contains("已通过"));

    // Audited with the token's name.
    let (_, log) = app
        .admin(
            Method::GET,
            "/api/v1/admin/audit?actor=%E5%8F%99%E5%B7%9E%E5%8C%BA%E5%AE%A1%E6%A0%B8%E5%91%98&limit=100",
            Some(&app.token),
            None,
        )
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("review."))
            .copied()
            .collect::<Vec<_>>(),
        ["review.reject", "review.accept", "review.accept"],
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_township_token_neither_sees_nor_decides_another_regions_submissions() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    register_foreign(&app).await;
    let ours = file(
        &app,
        &shop_token(&app, Y).await,
        "/api/v1/shop/self-reports",
        json!({"report_type": "invoice", "date": day(0)}),
    )
    .await;
    let theirs = file(
        &app,
        &shop_token(&app, FOREIGN).await,
        "/api/v1/shop/self-reports",
        json!({"report_type": "self_check", "date": day(0), "summary": "翠屏区自查"}),
    )
    .await;
    let store = store_of(&app).await;
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let staff = login(&app.base, &township).await;

    let page = staff.get(&app.base, "/admin/reviews").await;
    assert_eq!(shown(&page.body), [theirs.as_str()]);
    assert!(!page.body.contains("SHOP-Y") && !page.body.contains(&ours));
    // The API's queue keeps to the token's region too.
    assert_eq!(
        ids(&listed(&app, &township, "pending").await),
        [theirs.as_str()]
    );
    // Deciding another region's submission: refused, still pending.
    let res = staff
        .post(
            &app.base,
            &format!("/admin/reviews/{ours}"),
            &[("decision", "accept")],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(
        ids(&listed(&app, &app.token, "pending").await),
        [ours.as_str(), theirs.as_str()]
    );
    // A read-only token sees every region and no forms.
    let viewer = add_token(&store, "市局只读", "read").await;
    let viewer = login(&app.base, &viewer).await;
    let page = viewer.get(&app.base, "/admin/reviews").await;
    assert_eq!(shown(&page.body), [ours.as_str(), theirs.as_str()]);
    assert!(!page.body.contains("name=\"decision\""));
    // Its own region's: decided.
    reject(&app, &staff, &theirs).await;
}

#[tokio::test]
async fn review_and_access_forms_without_the_session_token_change_nothing() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    let shop = shop_token(&app, Y).await;
    let id = file(
        &app,
        &shop,
        "/api/v1/shop/self-reports",
        json!({"report_type": "invoice", "date": day(0)}),
    )
    .await;
    let staff = login(&app.base, &app.token).await;
    let audit_before = crate::shop::audit_actions(&app, Y).await;
    for (path, form) in [
        (format!("/admin/reviews/{id}"), vec![("decision", "accept")]),
        (format!("/admin/merchants/{Y}/access"), vec![]),
        (format!("/admin/merchants/{Y}/access/revoke"), vec![]),
    ] {
        for csrf in [None, Some("0".repeat(43))] {
            let mut fields = form.clone();
            if let Some(c) = &csrf {
                fields.push(("csrf", c));
            }
            let res = request(
                &app.base,
                Method::POST,
                &path,
                &staff.cookies(),
                Some(&fields),
            )
            .await;
            assert_eq!(res.status, 403, "{path} {csrf:?}: {}", res.body);
        }
    }
    assert_eq!(
        ids(&listed(&app, &app.token, "pending").await),
        [id.as_str()]
    );
    assert_eq!(crate::shop::audit_actions(&app, Y).await, audit_before);
    // The shop's token still works: access was not revoked.
    let (s, _) = as_shop(&app, &shop, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 200);
}

/// The activation code on a letter page: `<strong id="activation-code">`.
fn activation_code(page: &str) -> String {
    let at = page
        .find("id=\"activation-code\">")
        .unwrap_or_else(|| panic!("no code in:\n{page}"))
        + "id=\"activation-code\">".len();
    page[at..at + page[at..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn the_merchant_page_issues_a_one_time_activation_code_and_revokes_access() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区南岸所", "write:511504").await;
    let staff = login(&app.base, &token).await;
    let page = staff.get(&app.base, &format!("/admin/merchants/{Y}")).await;
    assert!(page.body.contains("签发激活码") && page.body.contains("撤销商户访问"));
    assert!(page.body.contains("目前没有未使用的激活码"));

    // Issued: shown once on the letter, with the login address.
    let res = staff
        .post(&app.base, &format!("/admin/merchants/{Y}/access"), &[])
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    let first = activation_code(&res.body);
    assert!(res.body.contains(&format!("{}/shop/login", app.base)));
    let page = staff.get(&app.base, &format!("/admin/merchants/{Y}")).await;
    assert!(page.body.contains("尚未使用的激活码") && !page.body.contains(&first));
    // A new one replaces it; the new one signs the shop in, once.
    let res = staff
        .post(&app.base, &format!("/admin/merchants/{Y}/access"), &[])
        .await;
    let second = activation_code(&res.body);
    assert_ne!(first, second);
    let (s, _) = crate::shop::login_token(&app, Y, &first).await;
    assert_eq!(s, 401);
    let (s, b) = crate::shop::login_token(&app, Y, &second).await;
    assert_eq!(s, 201, "{b}");
    let shop = b["token"].as_str().unwrap().to_owned();
    let (s, _) = as_shop(&app, &shop, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 200);

    // Revoked: the shop's token ends.
    let res = staff
        .post(
            &app.base,
            &format!("/admin/merchants/{Y}/access/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        Some(format!("/admin/merchants/{Y}?done=access_revoked").as_str())
    );
    let (s, _) = as_shop(&app, &shop, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 401);
    let actions = crate::shop::audit_actions(&app, Y).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("shop.access"))
            .collect::<Vec<_>>(),
        [
            "shop.access.revoke",
            "shop.access.issue",
            "shop.access.issue"
        ]
    );

    // Another region's token: no section, and the forms are refused.
    let other = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let other = login(&app.base, &other).await;
    for path in ["access", "access/revoke"] {
        let res = other
            .post(&app.base, &format!("/admin/merchants/{Y}/{path}"), &[])
            .await;
        assert_eq!(res.status, 403, "{path}: {}", res.body);
    }
    let viewer = add_token(&store, "市局只读", "read").await;
    let viewer = login(&app.base, &viewer).await;
    let page = viewer
        .get(&app.base, &format!("/admin/merchants/{Y}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("签发激活码"));
}

#[tokio::test]
async fn a_long_queue_is_shown_a_page_at_a_time_oldest_first() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    let mut filed = Vec::new();
    for (merchant, n) in [(Y, 20), (crate::shop::OTHER, 5)] {
        let shop = shop_token(&app, merchant).await;
        for i in 0..n {
            let body =
                json!({"report_type": "invoice", "date": day(0), "summary": format!("第{i}张")});
            filed.push(file(&app, &shop, "/api/v1/shop/self-reports", body).await);
        }
    }
    let staff = login(&app.base, &app.token).await;
    let first = staff.get(&app.base, "/admin/reviews").await;
    assert_eq!(shown(&first.body), filed[..20]);
    let next = format!("/admin/reviews?after={}", filed[19]);
    assert!(
        first.body.contains(&format!("href=\"{next}\"")),
        "a next page"
    );
    let second = staff.get(&app.base, &next).await;
    assert_eq!(shown(&second.body), filed[20..]);
    assert!(!second.body.contains("after="), "no page after the last");
    assert!(second.body.contains("回到第一页"));
}

/// Rejects submission `id` by the workbench's form.
async fn reject(app: &TestApp, staff: &Session, id: &str) {
    let fields = [("decision", "reject"), ("reason", "照片不清")];
    let res = staff
        .post(&app.base, &format!("/admin/reviews/{id}"), &fields)
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
}

/// Files today's self-check of `merchant`; its id.
async fn self_check(app: &TestApp, merchant: &str) -> String {
    let token = shop_token(app, merchant).await;
    let body = json!({"report_type": "self_check", "date": day(0)});
    file(app, &token, "/api/v1/shop/self-reports", body).await
}

/// A copy of `review` under `id`, with `status`.
fn stored_as(review: &Review, id: &str, merchant: &str, status: ReviewStatus) -> Review {
    let mut r = review.clone();
    r.id = id.to_owned();
    r.merchant = merchant.to_owned();
    r.status = status;
    r
}

#[tokio::test]
async fn past_many_decided_submissions_the_pending_ones_are_counted_and_listed() {
    let app = crate::helpers::spawn_app().await;
    seed(&app).await;
    register_foreign(&app).await;
    let store = store_of(&app).await;
    let ours = self_check(&app, Y).await;
    let template = reviews::get(store.as_ref(), &ours).await.unwrap().unwrap();
    // A long-lived store: more decided submissions, older than any
    // pending one, than the dashboard used to read (5,000) before it
    // stopped; and among them one pending since before the queue had
    // its index (found when the index is built on the first read).
    for n in 0..5_001 {
        let id = format!("20200101T000000{n:09}-00000000");
        let r = stored_as(&template, &id, Y, ReviewStatus::Accepted);
        documents::put(store.as_ref(), REVIEWS, &id, &r, None)
            .await
            .unwrap();
    }
    let before_index = "20200102T000000000000000-00000000";
    let r = stored_as(&template, before_index, FOREIGN, ReviewStatus::Pending);
    documents::put(store.as_ref(), REVIEWS, before_index, &r, None)
        .await
        .unwrap();
    // And one whose entry was lost: the build finds it too.
    documents::remove(
        store.as_ref(),
        review_queue::PENDING,
        &format!("511504/{ours}"),
        None,
    )
    .await
    .unwrap();
    let second = file(
        &app,
        &shop_token(&app, Y).await,
        "/api/v1/shop/replies",
        json!({"rule": "Y2", "text": "已整改。"}),
    )
    .await;
    let theirs = self_check(&app, FOREIGN).await;
    // One decided by a decision that stopped before it left the queue:
    // its entry is stale and dropped when read.
    let stale = self_check(&app, Y).await;
    let text = store.document(REVIEWS, &stale).await.unwrap().unwrap();
    let decided = stored_as(
        &reviews::get(store.as_ref(), &stale).await.unwrap().unwrap(),
        &stale,
        Y,
        ReviewStatus::Rejected,
    );
    assert!(
        documents::replace(store.as_ref(), REVIEWS, &stale, text, Some(&decided), None)
            .await
            .unwrap()
    );
    assert!(store
        .document(review_queue::PENDING, &format!("511504/{stale}"))
        .await
        .unwrap()
        .is_some());

    // Every region: the four pending, oldest first; the count exact.
    let everyone = [
        before_index,
        ours.as_str(),
        second.as_str(),
        theirs.as_str(),
    ];
    assert_eq!(ids(&listed(&app, &app.token, "pending").await), everyone);
    let staff = login(&app.base, &app.token).await;
    let page = staff.get(&app.base, "/admin").await.body;
    assert_eq!(queue_count(&page, "pending-reviews"), 4);
    assert!(!page.contains("至少"), "the counts are exact");
    assert_eq!(
        shown(&staff.get(&app.base, "/admin/reviews").await.body),
        everyone
    );
    assert!(store
        .document(review_queue::PENDING, &format!("511504/{stale}"))
        .await
        .unwrap()
        .is_none());
    // A township: its region's only, in the API, the queue and the count.
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    assert_eq!(
        ids(&listed(&app, &township, "pending").await),
        [before_index, theirs.as_str()]
    );
    let clerk = login(&app.base, &township).await;
    let page = clerk.get(&app.base, "/admin").await.body;
    assert_eq!(queue_count(&page, "pending-reviews"), 2);
    assert_eq!(
        shown(&clerk.get(&app.base, "/admin/reviews").await.body),
        [before_index, theirs.as_str()]
    );
    // A decision takes one out of the queue and the count.
    reject(&app, &clerk, &theirs).await;
    let page = clerk.get(&app.base, "/admin").await.body;
    assert_eq!(queue_count(&page, "pending-reviews"), 1);
    assert!(store
        .document(review_queue::PENDING, &format!("511502/{theirs}"))
        .await
        .unwrap()
        .is_none());
}
