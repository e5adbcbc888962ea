//! The workbench dashboard on the refresh's daily counts: the twelve-week
//! trend shows the weeks two refreshes on different dates counted (and
//! gaps for the others), and the work queues count a pending shop
//! submission and an overdue patrol in the staff member's regions only.

use jiff::civil::Date;
use jiff::ToSpan;
use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::grading::Rules;
use yisaozhi::refresh::{self, RefreshOptions};
use yisaozhi::store::query::{DayCounts, DAILY_COUNTS};
use yisaozhi::store::SharedStore;

use crate::helpers::{spawn_app, TestApp};
use crate::shop::{as_shop, shop_token};
use crate::workbench::{add_token, login, store_of, Session};

/// The Monday of `day`'s week.
fn monday(day: Date) -> Date {
    day - i64::from(day.weekday().to_monday_zero_offset()).days()
}

/// A full refresh of the demo files as of `as_of`.
async fn refresh_as_of(app: &TestApp, store: &SharedStore, as_of: Date) {
    let dir = app.dir.path();
    refresh::run(
        store.as_ref(),
        &Rules::default(),
        &RefreshOptions {
            merchants: Some(dir.join("merchants.jsonl")),
            records: vec![dir.join("records.jsonl")],
            as_of,
            full: true,
            rejects: dir.join("rejects-test.jsonl"),
            shard: None,
            stop: None,
        },
    )
    .await
    .expect("refresh");
}

/// The line the dashboard lists for the week starting `starts`, if any.
fn week_line(page: &str, starts: Date) -> Option<String> {
    let at = page.find(&format!("<li class=\"trend-week\">{starts} 起一周："))?;
    let end = page[at..].find("</li>")? + at;
    Some(page[at..end].to_owned())
}

/// The words the dashboard shows for `as_of`'s counts in its week.
fn words_of(day: &DayCounts, changed: u64) -> String {
    let all = day.within(None);
    format!(
        "绿码 良好 {} 黄码 关注 {} 红码 重点监管 {}；等级变化 {changed}",
        all.green, all.yellow, all.red
    )
}

/// The number in the paragraph `id` of the dashboard.
fn queue_count(page: &str, id: &str) -> u64 {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {page}"));
    let link = page[at..].find('>').unwrap() + at;
    let text = &page[link..];
    let text = &text[text.find("\">").unwrap() + 2..];
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{id}: {}", &text[..80.min(text.len())]))
}

async fn dashboard(app: &TestApp, staff: &Session) -> String {
    let page = staff.get(&app.base, "/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

#[tokio::test]
async fn the_trend_shows_the_weeks_of_two_refreshes_and_gaps_for_the_others() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let today = yisaozhi::clock::today();
    let earlier = today - 15.days();
    refresh_as_of(&app, &store, earlier).await;
    refresh_as_of(&app, &store, today).await;

    let doc = |day: Date| {
        let store = store.clone();
        async move {
            yisaozhi::store::documents::get::<DayCounts>(
                store.as_ref(),
                DAILY_COUNTS,
                &DayCounts::key(day),
            )
            .await
            .unwrap()
            .expect("the refresh noted its day")
        }
    };
    let (then, now) = (doc(earlier).await, doc(today).await);
    let staff = login(&app.base, &app.token).await;
    let page = dashboard(&app, &staff).await;

    // Both weeks, each with the counts of its last refresh.
    let old_week = week_line(&page, monday(earlier)).expect("the earlier week");
    assert!(
        old_week.ends_with(&words_of(&then, then.within(None).changed)),
        "{old_week}"
    );
    let this_week = week_line(&page, monday(today)).expect("this week");
    assert!(
        this_week.ends_with(&words_of(&now, now.within(None).changed)),
        "{this_week}"
    );
    assert_ne!(monday(earlier), monday(today));
    // The chart: a column per grade in both weeks, a gap (—) elsewhere.
    let svg_start = page.find("近12周信用等级趋势").unwrap();
    let svg = &page[svg_start..page[svg_start..].find("</svg>").unwrap() + svg_start];
    for week in [monday(earlier), monday(today)] {
        assert!(svg.contains(&format!("{week} 起一周：绿码")), "{week}");
        assert!(svg.contains(&format!("<title>{week} 起一周 ")), "{week}");
    }
    assert_eq!(svg.matches("起一周：无数据").count(), 10, "{svg}");
    assert!(!svg.contains(&format!("{} 起一周：绿码", monday(today) - 7.days())));

    // A region the demo has no merchants in: the same weeks, all zeros.
    let store_token = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let other = login(&app.base, &store_token).await;
    let page = dashboard(&app, &other).await;
    let line = week_line(&page, monday(today)).expect("this week, in scope");
    assert!(
        line.contains("绿码 良好 0 黄码 关注 0 红码 重点监管 0"),
        "{line}"
    );
}

#[tokio::test]
async fn a_pending_review_and_an_overdue_patrol_are_counted_in_scope() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let staff = login(&app.base, &app.token).await;
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let elsewhere = login(&app.base, &township).await;

    let page = dashboard(&app, &staff).await;
    let (reviews, patrols) = (
        queue_count(&page, "pending-reviews"),
        queue_count(&page, "overdue-patrols"),
    );
    assert!(page.contains("href=\"/admin/reviews\""));
    assert!(page.contains("href=\"/admin/patrols\""));

    // A shop files a self-report: one more pending review.
    let (_, due) = app
        .admin(
            Method::GET,
            "/api/v1/admin/patrols?assistant=XZ-A01",
            Some(&app.token),
            None,
        )
        .await;
    let first: &Value = &due["due"][0];
    let merchant = first["merchant_id"].as_str().unwrap().to_owned();
    let token = shop_token(&app, &merchant).await;
    let (s, b) = as_shop(
        &app,
        &token,
        Method::POST,
        "/api/v1/shop/self-reports",
        Some(json!({"report_type": "invoice", "date": yisaozhi::clock::today().to_string()})),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // Its last patrol long ago (past even a green merchant's 365 days):
    // one more overdue patrol.
    let long_ago = yisaozhi::clock::today() - 400.days();
    let record = json!({"id": "PATROL-OLD-1", "merchant": merchant, "kind": "inspection",
        "date": long_ago.to_string(), "source": "patrol", "hazards": 0, "rectified": true});
    let res = app
        .client
        .post(format!("{}/api/v1/admin/records", app.base))
        .bearer_auth(&app.token)
        .body(record.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let page = dashboard(&app, &staff).await;
    assert_eq!(queue_count(&page, "pending-reviews"), reviews + 1);
    assert_eq!(queue_count(&page, "overdue-patrols"), patrols + 1);
    assert!(!page.contains("至少"), "small counts are complete");

    // Another region's staff: neither.
    let page = dashboard(&app, &elsewhere).await;
    assert_eq!(queue_count(&page, "pending-reviews"), 0);
    assert_eq!(queue_count(&page, "overdue-patrols"), 0);
}

#[tokio::test]
async fn past_its_bound_the_overdue_count_says_it_is_a_lower_bound() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let staff = login(&app.base, &app.token).await;
    assert!(!dashboard(&app, &staff).await.contains("至少"));
    // One assistant's grid longer than the dashboard checks.
    let merchants: Vec<String> = (0..1_001).map(|i| format!("ZZ-{i:05}")).collect();
    let grid = yisaozhi::grid::AssistantGrid {
        assistant: yisaozhi::roster::StaffId::parse("AA-BIG").unwrap(),
        region: yisaozhi::model::RegionCode::parse("511504").unwrap(),
        merchants: merchants
            .iter()
            .map(|m| yisaozhi::model::MerchantId::parse(m).unwrap())
            .collect(),
    };
    yisaozhi::store::documents::put(store.as_ref(), yisaozhi::grid::GRID, "AA-BIG", &grid, None)
        .await
        .unwrap();
    let page = dashboard(&app, &staff).await;
    let at = page.find("id=\"overdue-patrols\"").unwrap();
    let shown = &page[at..at + page[at..].find("</p>").unwrap()];
    assert!(shown.contains("至少"), "{shown}");
}
