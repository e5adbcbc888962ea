//! The grid's and the plans' workbench pages: an assistant's patrol list
//! (the API's list, overdue first), a patrol recorded from the phone as
//! an `inspection` record with `source: "patrol"` that regrades at once,
//! the same through `POST /api/v1/admin/patrols`; the plans page drawing
//! exactly what the library draws from the same inputs, with bad input
//! answered on the page.

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::model::MerchantId;

use crate::helpers::{spawn_app, TestApp};
use crate::workbench::{add_token, login, request, store_of};

const ASSISTANT: &str = "XZ-A01";

fn day(offset: i64) -> String {
    use jiff::ToSpan;
    yisaozhi::clock::today()
        .checked_add(offset.days())
        .unwrap()
        .to_string()
}

/// The merchant ids a patrol page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("id=\"patrol-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

async fn due_api(app: &TestApp) -> Vec<Value> {
    let (s, b) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/patrols?assistant={ASSISTANT}"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["due"].as_array().unwrap().clone()
}

/// The green merchants of the assistant's grid.
pub(crate) async fn green_merchants(app: &TestApp) -> Vec<String> {
    let (s, grid) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/grid?assistant={ASSISTANT}"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{grid}");
    grid["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["grade"] == "green")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Records a patrol of `id` 400 days ago (`old-patrol`): a green
/// merchant (every 365 days) is then 35 days overdue.
pub(crate) async fn patrolled_400_days_ago(app: &TestApp, id: &str) {
    let line = json!({"id": "old-patrol", "merchant": id, "kind": "inspection", "date": day(-400),
        "source": "patrol", "hazards": 0, "rectified": true});
    let (s, b) = app
        .admin(
            Method::POST,
            "/api/v1/admin/records",
            Some(&app.token),
            Some(line),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// The patrol records of `id`, as stored.
async fn patrols_of(app: &TestApp, id: &str) -> Vec<yisaozhi::model::Record> {
    let store = store_of(app).await;
    store
        .records(&MerchantId::parse(id).unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.source.as_deref() == Some("patrol"))
        .collect()
}

#[tokio::test]
async fn a_patrol_recorded_on_the_phone_page_is_an_inspection_that_regrades_at_once() {
    let app = spawn_app().await;
    let greens = green_merchants(&app).await;
    assert!(greens.len() >= 2, "{greens:?}");
    let (late, api_one) = (greens[0].clone(), greens[1].clone());
    patrolled_400_days_ago(&app, &late).await;

    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区巡查员", "write:511504").await;
    let staff = login(&app.base, &token).await;
    // Without a choice: the selector of the region's assistants.
    let page = staff.get(&app.base, "/admin/patrols").await;
    assert_eq!(page.status, 200);
    for a in ["XZ-A01", "XZ-A02", "XZ-J02"] {
        assert!(page.body.contains(&format!("value=\"{a}\"")), "{a}");
    }
    // The list: the API's, overdue first.
    let page = staff
        .get(&app.base, &format!("/admin/patrols?assistant={ASSISTANT}"))
        .await;
    assert_eq!(page.status, 200);
    let due = due_api(&app).await;
    let want: Vec<String> = due
        .iter()
        .map(|d| d["merchant_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed(&page.body), want);
    assert_eq!(want[0], late, "overdue first");
    assert_eq!(due[0]["overdue_days"], 35);
    assert!(page.body.contains("逾期 35 天"));
    assert!(page.body.contains("记录巡查"));

    // Bad input and a form without its token: nothing recorded.
    let path = format!("/admin/patrols/{late}");
    for (fields, words) in [
        (vec![("assistant", ASSISTANT)], "field `result`"),
        (
            vec![("result", "deadline"), ("hazards", "2")],
            "field `deadline`",
        ),
        (
            vec![("result", "fixed"), ("hazards", "0")],
            "field `hazards`",
        ),
        (
            vec![("result", "ok"), ("note", "a\u{202e}b")],
            "field `note`",
        ),
    ] {
        let res = staff.post(&app.base, &path, &fields).await;
        assert_eq!(res.status, 400, "{fields:?}: {}", res.body);
        assert!(res.body.contains(words), "{fields:?}: {}", res.body);
    }
    let res = request(
        &app.base,
        Method::POST,
        &path,
        &staff.cookies(),
        Some(&[("result", "ok")]),
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(patrols_of(&app, &late).await.len(), 1);

    // Hazards to put right by a date: an inspection with source patrol,
    // and the scan turns yellow (Y4) at once.
    assert_eq!(app.scan(&late).await["grade"], "green");
    let deadline = day(10);
    let res = staff
        .post(
            &app.base,
            &path,
            &[
                ("assistant", ASSISTANT),
                ("result", "deadline"),
                ("hazards", "2"),
                ("deadline", &deadline),
                ("note", "冷柜温度超标"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        Some(format!("/admin/patrols?assistant={ASSISTANT}&done=patrol").as_str())
    );
    let mine = patrols_of(&app, &late).await;
    assert_eq!(mine.len(), 2);
    let new = mine.iter().find(|r| r.id != "old-patrol").unwrap();
    assert_eq!(new.date.to_string(), day(0));
    assert_eq!(new.body.kind(), "inspection");
    let stored = serde_json::to_value(new).unwrap();
    assert_eq!(stored["hazards"], 2);
    assert_eq!(stored["rectified"], false);
    assert_eq!(stored["deadline"], deadline);
    let scan = app.scan(&late).await;
    assert_eq!(scan["grade"], "yellow", "{scan}");
    assert!(crate::shop::rules_of(&scan).contains(&"Y4".to_owned()));
    // Off the list now; audited with the note and the token's name.
    let page = staff
        .get(
            &app.base,
            &format!("/admin/patrols?assistant={ASSISTANT}&done=patrol"),
        )
        .await;
    assert!(!listed(&page.body).contains(&late));
    assert!(page.body.contains("已记录巡查"));
    let (_, log) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/audit?target={late}&limit=20"),
            Some(&app.token),
            None,
        )
        .await;
    let entry = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "patrol.record")
        .expect("audited");
    assert_eq!(entry["actor"], "叙州区巡查员");
    assert_eq!(entry["reason"], "冷柜温度超标");

    // The JSON API records the same way.
    let (s, b) = app
        .admin(
            Method::POST,
            "/api/v1/admin/patrols",
            Some(&app.token),
            Some(json!({"merchant_id": api_one, "result": "fixed", "hazards": 1})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["grade"], "yellow");
    let theirs = patrols_of(&app, &api_one).await;
    assert_eq!(theirs.len(), 1);
    let stored = serde_json::to_value(&theirs[0]).unwrap();
    assert_eq!(
        (
            &stored["hazards"],
            &stored["rectified"],
            &stored["rectified_on"]
        ),
        (&json!(1), &json!(true), &json!(day(0)))
    );
}

#[tokio::test]
async fn a_township_token_sees_no_other_regions_assistants_nor_records_their_patrols() {
    let app = spawn_app().await;
    let greens = green_merchants(&app).await;
    let store = store_of(&app).await;
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let staff = login(&app.base, &township).await;
    let page = staff.get(&app.base, "/admin/patrols").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("没有在岗的协管员"));
    assert!(!page.body.contains("XZ-A01"));
    let page = staff
        .get(&app.base, &format!("/admin/patrols?assistant={ASSISTANT}"))
        .await;
    assert_eq!(page.status, 404);
    let res = staff
        .post(
            &app.base,
            &format!("/admin/patrols/{}", greens[0]),
            &[("result", "ok")],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(patrols_of(&app, &greens[0]).await.is_empty());
}

/// The plan names the plans page lists, newest first.
fn plans_listed(page: &str) -> Vec<String> {
    page.split("<li class=\"plan\"><a href=\"/plans/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn a_plan_drawn_on_the_page_is_the_plan_the_library_draws_from_the_same_inputs() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区抽查员", "write:5115").await;
    let staff = login(&app.base, &token).await;
    let page = staff.get(&app.base, "/admin/plans").await;
    assert_eq!(page.status, 200);
    assert_eq!(plans_listed(&page.body), ["demo"]);

    let fields = [
        ("name", "秋季-抽查"),
        ("seed", "2026 秋 42"),
        ("size", "4"),
        ("region", "511504"),
        ("weights", "red=4,yellow=2,green=0.5"),
        ("inspectors_per_check", "2"),
        ("as_of", ""),
    ];
    let res = staff.post(&app.base, "/admin/plans", &fields).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/plans?done=drawn"));
    let page = staff.get(&app.base, "/admin/plans?done=drawn").await;
    assert_eq!(plans_listed(&page.body)[0], "秋季-抽查");
    assert!(page.body.contains("已抽取并公开"));

    // The library, from the same inputs, draws the same merchants and teams.
    let req = yisaozhi::plan::PlanRequest {
        name: "秋季-抽查".into(),
        seed: "2026 秋 42".into(),
        size: 4,
        region: Some(yisaozhi::model::RegionCode::parse("511504").unwrap()),
        weights: yisaozhi::plan::Weights::parse("red=4,yellow=2,green=0.5").unwrap(),
        team_size: 2,
        as_of: yisaozhi::clock::today(),
    };
    let input = yisaozhi::plan::gather(store.as_ref(), &req).await.unwrap();
    let want = yisaozhi::plan::draw(&input).unwrap();
    let stored = yisaozhi::plan::get(store.as_ref(), "秋季-抽查")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.entries.len(), 4);
    assert_eq!(stored.input_sha256, yisaozhi::plan::input_digest(&input));
    let got: Vec<_> = stored
        .entries
        .iter()
        .map(|e| {
            let team = e
                .team
                .as_ref()
                .map(|t| t.iter().map(|m| m.id.clone()).collect());
            (e.merchant_id.clone(), e.weight, team, e.no_team)
        })
        .collect();
    let expected: Vec<_> = want
        .entries
        .iter()
        .map(|e| (e.merchant_id.clone(), e.weight, e.team.clone(), e.no_team))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(stored.created_by, "叙州区抽查员");
    let (s, public) = app
        .get("/api/v1/plans/%E7%A7%8B%E5%AD%A3-%E6%8A%BD%E6%9F%A5")
        .await;
    assert_eq!(s, 200, "{public}");
    assert_eq!(public["seed"], "2026 秋 42");
}

#[tokio::test]
async fn bad_plan_input_is_answered_on_the_page_and_draws_nothing() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let staff = login(&app.base, &app.token).await;
    let good = |k: &str| match k {
        "name" => "p1",
        "seed" => "s",
        "size" => "2",
        _ => "",
    };
    for (field, value, status, words) in [
        ("size", "0", 400, "size"),
        ("size", "abc", 400, "field `size`"),
        ("size", "", 400, "field `size`"),
        ("weights", "red=x", 400, "field `weights`"),
        ("weights", "red=0,yellow=0,green=0", 400, "weight"),
        ("seed", " ", 400, "seed"),
        ("name", "a b", 400, "plan name"),
        ("region", "51", 400, "field `region`"),
        ("as_of", "2026-13-01", 400, "field `as_of`"),
        ("inspectors_per_check", "11", 400, "team"),
        ("name", "demo", 409, "already exists"),
    ] {
        let mut fields: Vec<(&str, &str)> = ["name", "seed", "size"]
            .iter()
            .filter(|k| **k != field)
            .map(|k| (*k, good(k)))
            .collect();
        fields.push((field, value));
        let res = staff.post(&app.base, "/admin/plans", &fields).await;
        assert_eq!(res.status, status, "{field}={value}: {}", res.body);
        assert!(res.body.contains("未抽取"), "{field}={value}");
        assert!(
            res.body.to_lowercase().contains(&words.to_lowercase()),
            "{field}={value}: {words} in {}",
            res.body
        );
        // The form comes back filled as typed.
        assert!(res.body.contains("id=\"pl-name\""));
    }
    // Without the session's token: 403, nothing drawn.
    let res = request(
        &app.base,
        Method::POST,
        "/admin/plans",
        &staff.cookies(),
        Some(&[("name", "p2"), ("seed", "s"), ("size", "2")]),
    )
    .await;
    assert_eq!(res.status, 403);
    let names: Vec<String> = yisaozhi::plan::list(store.as_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["demo"]);
    // A township token may not draw over every region; a read token sees no form.
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let township = login(&app.base, &township).await;
    let res = township
        .post(
            &app.base,
            "/admin/plans",
            &[("name", "p3"), ("seed", "s"), ("size", "2")],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("may not draw"));
    // Its form offers its own region, and drawing there works.
    let page = township.get(&app.base, "/admin/plans").await;
    assert!(
        page.body
            .contains("name=\"region\" inputmode=\"numeric\" maxlength=\"6\" value=\"511502\""),
        "{}",
        page.body
    );
    let res = township
        .post(
            &app.base,
            "/admin/plans",
            &[
                ("name", "p3"),
                ("seed", "s"),
                ("size", "2"),
                ("region", "511502"),
            ],
        )
        .await;
    assert!(
        res.status == 303 || res.body.contains("未抽取"),
        "{}",
        res.body
    );
    let viewer = add_token(&store, "市局只读", "read").await;
    let viewer = login(&app.base, &viewer).await;
    let page = viewer.get(&app.base, "/admin/plans").await;
    assert!(page.body.contains("只读令牌不能抽取计划") && !page.body.contains("pl-name"));
}
