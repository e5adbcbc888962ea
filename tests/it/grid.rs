//! The roster, the grid and patrols as regulators use them: the admin API
//! on the demo county (which has a sample roster and an assigned grid) and
//! the command line.

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::store::{AuditFilter, SharedStore, StoreSpec};

use crate::helpers::{spawn_app, TestApp};
use crate::plans::cli;
use crate::scope::{send, token};

async fn store_of(app: &TestApp) -> SharedStore {
    StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap()
}

async fn post(app: &TestApp, path: &str, token: &str, body: &str) -> (u16, Value) {
    send(app, Method::POST, path, token, body).await
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    app.admin(Method::GET, path, Some(&app.token), None).await
}

/// The entry of merchant `id` on a patrol list.
fn entry_of(list: &Value, id: &str) -> Value {
    list["due"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["merchant_id"] == id)
        .unwrap_or_else(|| panic!("{id} not on {list}"))
        .clone()
}

#[tokio::test]
async fn the_roster_imports_through_the_api_with_rejects_by_line_scoped_and_audited() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let body = [
        json!({"id": "XZ-J09", "name": "新执法", "unit": "叙州区市场监管局南岸所", "region": "511504", "role": "inspector"}).to_string(),
        r#"{"id": "XZ-J10", "name": "x", "unit": "u", "region": "511504", "role": "inspector", "name": "y"}"#.into(),
        json!({"id": "bad id", "name": "x", "unit": "u", "region": "511504", "role": "inspector"}).to_string(),
        json!({"id": "CP-J01", "name": "翠屏", "unit": "翠屏所", "region": "511502", "role": "assistant"}).to_string(),
    ]
    .join("\n");

    // A district's token: only its own people; the rest rejected by line.
    let county = token(&store, "叙州区", "write:511504").await;
    let (status, res) = post(&app, "/api/v1/admin/inspectors", &county, &body).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        (res["imported"].as_u64(), res["rejected"].as_u64()),
        (Some(1), Some(3)),
        "{res}"
    );
    let reasons: Vec<(u64, String)> = res["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons[0].0, 2);
    assert!(reasons[0].1.contains("appears twice"), "{reasons:?}");
    assert_eq!(reasons[1].0, 3);
    assert!(reasons[1].1.contains("field `id`"), "{reasons:?}");
    assert_eq!(reasons[2].0, 4);
    assert!(reasons[2].1.contains("outside the regions"), "{reasons:?}");

    // Only out-of-scope lines: 403 in the envelope; a read token likewise.
    let viewer = token(&store, "viewer", "read").await;
    let foreign = json!({"id": "CP-J01", "name": "翠屏", "unit": "翠屏所", "region": "511502", "role": "assistant"}).to_string();
    for who in [&county, &viewer] {
        let (status, res) = post(&app, "/api/v1/admin/inspectors", who, &foreign).await;
        assert_eq!(status, 403, "{res}");
        assert_eq!(res["error"], "forbidden");
    }
    // Nothing parses: 400.
    let (status, res) = post(&app, "/api/v1/admin/inspectors", &app.token, "not json").await;
    assert_eq!(
        (status, res["error"].as_str()),
        (400, Some("bad_request")),
        "{res}"
    );

    let (_, list) = get(&app, "/api/v1/admin/inspectors").await;
    let ids: Vec<&str> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"XZ-J09") && !ids.contains(&"CP-J01"),
        "{ids:?}"
    );
    let audit = store
        .audit(AuditFilter {
            target: Some("inspector:XZ-J09".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("roster.upsert", "叙州区")
    );
}

#[tokio::test]
async fn an_assistants_merchants_and_patrols_and_a_patrol_that_regrades_at_once() {
    let app = spawn_app().await;
    // The demo: 74 merchants of 511504 over three assistants of 30 places.
    let (status, grid) = get(&app, "/api/v1/admin/grid").await;
    assert_eq!(status, 200, "{grid}");
    assert_eq!(grid["run"]["assistants"], 3);
    assert_eq!(grid["run"]["unassigned"], 0);
    assert_eq!(grid["unassigned"], json!([]));
    let mut sizes = Vec::new();
    for a in ["XZ-A01", "XZ-A02", "XZ-J02"] {
        let (status, mine) = get(&app, &format!("/api/v1/admin/grid?assistant={a}")).await;
        assert_eq!(status, 200, "{mine}");
        sizes.push(mine["total"].as_u64().unwrap());
    }
    sizes.sort();
    assert_eq!(sizes, vec![24, 25, 25], "balanced within the region");
    let (status, res) = get(&app, "/api/v1/admin/grid?assistant=NOBODY").await;
    assert_eq!((status, res["error"].as_str()), (404, Some("not_found")));
    let (status, res) = get(&app, "/api/v1/admin/grid?assistant=bad%20id").await;
    assert_eq!(status, 400, "{res}");

    // Never patrolled: everyone is due today.
    let today = yisaozhi::clock::today();
    let (status, due) = get(&app, "/api/v1/admin/patrols?assistant=XZ-A01").await;
    assert_eq!(status, 200, "{due}");
    let list = due["due"].as_array().unwrap();
    assert_eq!(list.len(), 25);
    assert!(list.iter().all(|d| d["last_patrol"].is_null()
        && d["due_on"] == json!(today)
        && d["overdue_days"] == 0));

    // A green merchant of XZ-A01's, patrolled today with a hazard found: the
    // record regrades it at once (Y4, yellow), and its next patrol is due in
    // 90 days (yellow), so it leaves today's list.
    let green = list
        .iter()
        .find(|d| d["grade"] == "green")
        .expect("a green merchant")["merchant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patrol = json!({"id": "PATROL-1", "merchant": green, "kind": "inspection", "date": today,
        "source": "patrol", "hazards": 1, "deadline": today.checked_add(jiff::Span::new().days(7)).unwrap(),
        "rectified": false});
    let (status, res) = post(
        &app,
        "/api/v1/admin/records",
        &app.token,
        &patrol.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        app.scan(&green).await["grade"],
        "yellow",
        "regraded at once"
    );
    let (_, due) = get(&app, "/api/v1/admin/patrols?assistant=XZ-A01").await;
    assert_eq!(due["due"].as_array().unwrap().len(), 24);
    assert!(due["due"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["merchant_id"] != json!(green)));
    let (_, later) = get(&app, "/api/v1/admin/patrols?assistant=XZ-A01&within=90").await;
    let mine = entry_of(&later, &green);
    assert_eq!(mine["last_patrol"], json!(today));
    assert_eq!(mine["grade"], "yellow");
    assert_eq!(
        mine["due_on"],
        json!(today.checked_add(jiff::Span::new().days(90)).unwrap())
    );

    // 100 days on, it is overdue by the days past its due date.
    let next_year = today.checked_add(jiff::Span::new().days(100)).unwrap();
    let (_, then) = get(
        &app,
        &format!("/api/v1/admin/patrols?assistant=XZ-A01&as_of={next_year}"),
    )
    .await;
    let mine = entry_of(&then, &green);
    assert_eq!(mine["overdue_days"], 10);
    assert!(
        then["due"][0]["overdue_days"].as_i64().unwrap() >= 10,
        "most overdue first"
    );

    for bad in [
        "",
        "?assistant=XZ-A01&as_of=2026-13-01",
        "?assistant=XZ-A01&within=999",
    ] {
        let (status, res) = get(&app, &format!("/api/v1/admin/patrols{bad}")).await;
        assert_eq!(
            (status, res["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {res}"
        );
    }
    let (status, _) = app
        .admin(
            Method::GET,
            "/api/v1/admin/patrols?assistant=XZ-A01",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_command_line_imports_a_csv_roster_and_reassigns_the_grid_moving_no_one_needlessly() {
    let app = spawn_app().await;
    let dir = app.dir.path();
    // A fourth assistant joins, one goes off duty, a bad row.
    let csv = "id,name,unit,region,role,active\n\
               XZ-A03,钟协管,观音镇网格站,511504,assistant,\n\
               XZ-A02,陈协管,南岸街道网格站,511504,assistant,否\n\
               XZ-A04,错,网格站,51150,assistant,\n";
    std::fs::write(dir.join("more.csv"), csv).unwrap();
    let out = cli(dir, &["inspectors", "import", "more.csv"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("imported 2, unchanged 0, rejected 1"),
        "{stdout}"
    );
    assert!(stderr.contains("more.csv:4: field `region`"), "{stderr}");

    let (_, before) = get(&app, "/api/v1/admin/grid?assistant=XZ-A01").await;
    let out = cli(dir, &["grid", "assign", "--per-assistant", "30"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // XZ-A02's 25 go to the newcomer (the least loaded); nobody else moves.
    assert!(
        stdout.contains("assistants 3, assigned 74, unassigned 0"),
        "{stdout}"
    );
    assert!(stdout.contains("kept 49, moved 25"), "{stdout}");
    let (_, after) = get(&app, "/api/v1/admin/grid?assistant=XZ-A01").await;
    assert_eq!(before["merchants"], after["merchants"]);
    let (status, _) = get(&app, "/api/v1/admin/grid?assistant=XZ-A02").await;
    assert_eq!(status, 404, "off duty: no grid");

    let out = cli(dir, &["grid", "assign", "--per-assistant", "0"]);
    assert!(!out.status.success());
    let out = cli(dir, &["inspectors", "import", "missing.jsonl"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing.jsonl") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
