//! The workbench dashboard on the refresh's daily counts: the twelve-week
//! trend shows the weeks two refreshes on different dates counted (and
//! gaps for the others), and the work queues count a pending shop
//! submission and an overdue patrol in the staff member's regions only,
//! the overdue count agrees with the assistants' patrol lists, and a
//! township's grids are counted in full.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::ToSpan;
use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::grading::Rules;
use yisaozhi::model::{AuditEntry, Grade, MerchantId, Override};
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
pub(crate) fn queue_count(page: &str, id: &str) -> u64 {
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
    let due = patrol_list(&app, "XZ-A01").await;
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
    patrolled(&app, "PATROL-OLD-1", &merchant, long_ago).await;

    let page = dashboard(&app, &staff).await;
    assert_eq!(queue_count(&page, "pending-reviews"), reviews + 1);
    assert_eq!(queue_count(&page, "overdue-patrols"), patrols + 1);
    assert!(!page.contains("至少"), "small counts are complete");

    // Another region's staff: neither.
    let page = dashboard(&app, &elsewhere).await;
    assert_eq!(queue_count(&page, "pending-reviews"), 0);
    assert_eq!(queue_count(&page, "overdue-patrols"), 0);
}

/// A grid of `merchants` for assistant `key`.
async fn put_grid(store: &SharedStore, key: &str, merchants: &[String]) {
    let grid = yisaozhi::grid::AssistantGrid {
        assistant: yisaozhi::roster::StaffId::parse(key).unwrap(),
        region: yisaozhi::model::RegionCode::parse("511504").unwrap(),
        merchants: merchants
            .iter()
            .map(|m| MerchantId::parse(m).unwrap())
            .collect(),
    };
    yisaozhi::store::documents::put(store.as_ref(), yisaozhi::grid::GRID, key, &grid, None)
        .await
        .unwrap();
}

/// Adds a patrol of `merchant` on `date`.
async fn patrolled(app: &TestApp, id: &str, merchant: &str, date: Date) {
    let record = json!({"id": id, "merchant": merchant, "kind": "inspection",
        "date": date.to_string(), "source": "patrol", "hazards": 0, "rectified": true});
    let res = app
        .client
        .post(format!("{}/api/v1/admin/records", app.base))
        .bearer_auth(&app.token)
        .body(record.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// An assistant's patrol list, as the API answers it.
async fn patrol_list(app: &TestApp, assistant: &str) -> Value {
    let path = format!("/api/v1/admin/patrols?assistant={assistant}");
    let (s, due) = app.admin(Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(s, 200, "{due}");
    due
}

/// The merchants every assistant's patrol list (the API's) shows overdue.
async fn overdue_on_lists(app: &TestApp, store: &SharedStore) -> BTreeSet<String> {
    let grids: Vec<(String, yisaozhi::grid::AssistantGrid)> =
        yisaozhi::store::documents::all(store.as_ref(), yisaozhi::grid::GRID)
            .await
            .unwrap();
    let mut out = BTreeSet::new();
    for (_, grid) in grids {
        let due = patrol_list(app, grid.assistant.as_str()).await;
        for item in due["due"].as_array().unwrap() {
            if item["overdue_days"].as_i64().unwrap() > 0 {
                out.insert(item["merchant_id"].as_str().unwrap().to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_overdue_count_agrees_with_the_patrol_lists() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let staff = login(&app.base, &app.token).await;
    let today = yisaozhi::clock::today();
    let due = patrol_list(&app, "XZ-A01").await;
    let ids: Vec<String> = due["due"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["merchant_id"].as_str().unwrap().to_owned())
        .take(4)
        .collect();
    assert_eq!(ids.len(), 4, "{due}");
    let at = jiff::Timestamp::now();
    let audit = |target: &str| AuditEntry {
        at,
        actor: "test".into(),
        action: "override".into(),
        target: target.into(),
        before: Value::Null,
        after: Value::Null,
        reason: None,
    };
    let set = |id: &str, grade: Grade, expires_at: Option<Date>, computed: Grade| {
        let (store, id) = (store.clone(), MerchantId::parse(id).unwrap());
        async move {
            let o = Override {
                grade,
                reason: "测试".into(),
                expires_at,
                actor: "test".into(),
                at,
            };
            let mut p = store.projection(&id).await.unwrap().expect("a projection");
            p.grade = grade;
            p.computed_grade = computed;
            p.override_ = Some(o.clone());
            store
                .set_override(&id, Some(o), p, audit(id.as_str()))
                .await
                .unwrap();
        }
    };
    // Each patrolled 100 days ago: overdue for red (30 days) and yellow
    // (90), not for green (365).
    for (n, id) in ids.iter().enumerate() {
        patrolled(&app, &format!("PATROL-AGREE-{n}"), id, today - 100.days()).await;
    }
    // Green by an override in force: not overdue.
    set(&ids[0], Grade::Green, None, Grade::Red).await;
    // Red by an override that ended yesterday, computed green: the list
    // goes by the computed grade, not overdue.
    set(&ids[1], Grade::Red, Some(today - 1.days()), Grade::Green).await;
    // Yellow by an override in force: overdue.
    set(
        &ids[2],
        Grade::Yellow,
        Some(today + 10.days()),
        Grade::Green,
    )
    .await;
    // ids[3] as graded. Also on a second grid (counted once), beside an
    // id that is no merchant.
    put_grid(&store, "AA-TWO", &[ids[3].clone(), "ZZ-NONE".into()]).await;

    let listed = overdue_on_lists(&app, &store).await;
    assert!(!listed.contains(&ids[0]) && !listed.contains(&ids[1]));
    assert!(listed.contains(&ids[2]), "{listed:?}");
    let page = dashboard(&app, &staff).await;
    assert_eq!(queue_count(&page, "overdue-patrols"), listed.len() as u64);
    assert!(!page.contains("至少"));

    // The same once the ended override's projection is regraded.
    refresh_as_of(&app, &store, today).await;
    let listed = overdue_on_lists(&app, &store).await;
    let page = dashboard(&app, &staff).await;
    assert_eq!(queue_count(&page, "overdue-patrols"), listed.len() as u64);
}

#[tokio::test]
async fn a_townships_grids_are_counted_in_full_and_past_them_a_lower_bound() {
    use yisaozhi::web::workbench_queues::MAX_PATROL_CHECKS;
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let staff = login(&app.base, &app.token).await;
    assert!(!dashboard(&app, &staff).await.contains("至少"));
    let shown = |page: &str| {
        let at = page.find("id=\"overdue-patrols\"").unwrap();
        page[at..at + page[at..].find("</p>").unwrap()].to_owned()
    };
    // The demo's grids, then grids of ids that are no merchant (none
    // overdue), 1,000 a grid, up to the bound: the count is exact; one
    // more merchant and it is a lower bound.
    let grids: Vec<(String, yisaozhi::grid::AssistantGrid)> =
        yisaozhi::store::documents::all(store.as_ref(), yisaozhi::grid::GRID)
            .await
            .unwrap();
    let demo: BTreeSet<MerchantId> = grids.into_iter().flat_map(|(_, g)| g.merchants).collect();
    let room = MAX_PATROL_CHECKS - demo.len();
    let ids: Vec<String> = (0..=room).map(|i| format!("ZZ-{i:06}")).collect();
    for (n, chunk) in ids[..room].chunks(1_000).enumerate() {
        put_grid(&store, &format!("AA-BIG{n:03}"), chunk).await;
    }
    let page = dashboard(&app, &staff).await;
    assert!(!shown(&page).contains("至少"), "{}", shown(&page));
    put_grid(&store, "AA-ONE-MORE", &ids[room..]).await;
    let page = dashboard(&app, &staff).await;
    assert!(shown(&page).contains("至少"), "{}", shown(&page));
}
