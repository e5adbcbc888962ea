//! Random inspection plans as regulators draw them and the public reads
//! them: the command line, the admin API, the public answer and page (teams
//! by unit, never by name), results, and bad input.

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::store::{SharedStore, StoreSpec};

use crate::helpers::{spawn_app, TestApp};
use crate::scope::token;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
/// The demo roster's names: never on a public answer.
const NAMES: [&str; 6] = ["李执法", "王执法", "张执法", "赵执法", "周执法", "孙执法"];

async fn store_of(app: &TestApp) -> SharedStore {
    StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap()
}

async fn post_plan(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.admin(Method::POST, "/api/v1/admin/plans", Some(token), Some(body))
        .await
}

pub(crate) fn cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--store")
        .arg(format!("embedded:{}", dir.display()))
        .current_dir(dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_demo_plan_is_public_with_seed_weights_merchants_and_teams_by_unit_only() {
    let app = spawn_app().await;
    let (status, plan) = app.get("/api/v1/plans/demo").await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["seed"], format!("demo-{}", yisaozhi::clock::today()));
    assert_eq!(plan["weights"], json!({"red": 4, "yellow": 2, "green": 1}));
    assert_eq!(plan["drawn"], 8);
    let merchants = plan["merchants"].as_array().unwrap();
    assert_eq!(merchants.len(), 8);
    for m in merchants {
        let team = m["team"]
            .as_array()
            .expect("six inspectors cover the county");
        assert_eq!(team.len(), 2);
        for member in team {
            assert_eq!(
                member.as_object().unwrap().keys().collect::<Vec<_>>(),
                vec!["unit"]
            );
        }
        assert!(m["name"].is_string() && m["grade"].is_string());
    }
    assert_eq!(
        plan["results"],
        json!({"inspected": 0, "with_hazards": 0, "pending": 8})
    );
    let text = plan.to_string();
    for secret in NAMES.iter().chain(["XZ-J01", "XZ-J03", "YB-J01"].iter()) {
        assert!(!text.contains(secret), "the public plan shows `{secret}`");
    }

    let (status, ctype, page) = app.get_text("/plans/demo").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(page.contains("双随机抽查计划") && page.contains(plan["seed"].as_str().unwrap()));
    assert!(page.contains("检查组：") && page.contains("结果：待检查"));
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    for secret in NAMES {
        assert!(!page.contains(secret), "the plan page shows `{secret}`");
    }
    let (status, _, page) = app.get_text("/plans/nope").await;
    assert_eq!(status, 404);
    assert!(page.contains("未找到"));
    let (status, res) = app.get("/api/v1/plans/nope").await;
    assert_eq!((status, res["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn a_plan_drawn_through_the_api_is_stored_once_scoped_and_shows_its_results() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let body = json!({"name": "2026-第23周", "seed": "福彩3D 2026152 517", "size": 5,
        "region": "511504", "weights": "red=4,yellow=2,green=1", "inspectors_per_check": 2});
    let (status, res) = post_plan(&app, &app.token, body.clone()).await;
    assert_eq!(status, 201, "{res}");
    let plan = &res["plan"];
    assert_eq!(plan["entries"].as_array().unwrap().len(), 5);
    assert_eq!(plan["created_by"], "demo-admin");
    // Regulators see the team by id and name.
    assert!(plan["entries"][0]["team"][0]["name"].is_string(), "{plan}");

    // Drawn once: the same name again is a conflict, whatever the seed.
    let mut again = body.clone();
    again["seed"] = json!("another");
    let (status, res) = post_plan(&app, &app.token, again).await;
    assert_eq!(
        (status, res["error"].as_str()),
        (409, Some("conflict")),
        "{res}"
    );

    // Scope: a read token, and a district's token over another district.
    let plain = token(&store, "viewer", "read").await;
    let (status, _) = post_plan(
        &app,
        &plain,
        json!({"name": "x", "seed": "s", "size": 1, "region": "511504"}),
    )
    .await;
    assert_eq!(status, 403);
    let plain = token(&store, "翠屏", "write:511502").await;
    for region in [json!("511504"), json!("510000"), Value::Null] {
        let (status, res) = post_plan(
            &app,
            &plain,
            json!({"name": "y", "seed": "s", "size": 1, "region": region}),
        )
        .await;
        assert_eq!(status, 403, "{region}: {res}");
    }

    // Results: inspections naming the plan, for drawn merchants.
    let name = "2026-第23周";
    let first = plan["entries"][0]["merchant_id"].as_str().unwrap();
    let second = plan["entries"][1]["merchant_id"].as_str().unwrap();
    let today = yisaozhi::clock::today();
    let lines = [
        json!({"id": "PLAN-R1", "merchant": first, "kind": "inspection", "date": today, "hazards": 0,
            "rectified": true, "plan": name}),
        json!({"id": "PLAN-R2", "merchant": second, "kind": "inspection", "date": today, "hazards": 2,
            "rectified": false, "plan": name}),
        json!({"id": "PLAN-R3", "merchant": second, "kind": "inspection", "date": today, "hazards": 1,
            "rectified": false, "plan": "another-plan"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let res = app
        .client
        .post(format!("{}/api/v1/admin/records", app.base))
        .bearer_auth(&app.token)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let path = format!("/api/v1/admin/plans/{}", urlencode(name));
    let (status, admin) = app.admin(Method::GET, &path, Some(&app.token), None).await;
    assert_eq!(status, 200, "{admin}");
    assert_eq!(
        admin["summary"],
        json!({"inspected": 2, "with_hazards": 1, "pending": 3})
    );
    assert_eq!(admin["results"].as_array().unwrap().len(), 2);

    let (status, public) = app.get(&format!("/api/v1/plans/{}", urlencode(name))).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(public["results"], admin["summary"]);
    assert_eq!(public["merchants"][1]["results"][0]["hazards"], 2);
    assert_eq!(
        public["merchants"][1]["results"].as_array().unwrap().len(),
        1
    );
    let (_, _, page) = app.get_text(&format!("/plans/{}", urlencode(name))).await;
    assert!(
        page.contains("发现隐患 2 处，整改中") && page.contains("未发现问题"),
        "{page}"
    );

    let (status, list) = app
        .admin(Method::GET, "/api/v1/admin/plans", Some(&app.token), None)
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&name) && names.contains(&"demo"),
        "{names:?}"
    );
    let audit = store
        .audit(yisaozhi::store::AuditFilter {
            target: Some(format!("plan:{name}")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "plan.create");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn bad_plan_requests_get_one_line_reasons_and_never_a_panic() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "a", "seed": "s", "size": 0}),
            "size 0: expected 1 to 5000",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "weights": "red=4,purple=1"}),
            "field `weights`: unknown grade `purple`",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "weights": "red=0,yellow=0,green=0"}),
            "at least one grade",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "weights": "red=-1"}),
            "expected a number from 0 to 1000",
        ),
        (json!({"name": "a b", "seed": "s", "size": 3}), "plan name"),
        (json!({"name": "a", "seed": " s", "size": 3}), "seed"),
        (
            json!({"name": "a", "seed": "s\u{202e}", "size": 3}),
            "seed: contains an invisible",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "inspectors_per_check": 11}),
            "inspectors per check 11",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "region": "51"}),
            "field `region`",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "region": "440300"}),
            "no merchant to draw",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"name": "a", "seed": "s", "size": 3, "as_of": "2026-02-30"}),
            "field `as_of`",
        ),
    ];
    for (body, want) in cases {
        let (status, res) = post_plan(&app, &app.token, body.clone()).await;
        assert_eq!(status, 400, "{body}: {res}");
        let message = res["message"].as_str().unwrap();
        assert!(message.contains(want), "{body}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
    // A region where too few inspectors cover: explicit "no team" entries.
    let (status, res) = post_plan(
        &app,
        &app.token,
        json!({"name": "big-teams", "seed": "s", "size": 3,
        "region": "511504", "inspectors_per_check": 7}),
    )
    .await;
    assert_eq!(status, 201, "{res}");
    for e in res["plan"]["entries"].as_array().unwrap() {
        assert_eq!(
            (e["team"].clone(), e["no_team"].as_str()),
            (Value::Null, Some("too_few_inspectors"))
        );
    }
    let (_, _, page) = app.get_text("/plans/big-teams").await;
    assert!(page.contains("无法组队：覆盖该地区的执法人员不足"));
}

#[tokio::test]
async fn the_command_line_draws_prints_and_stores_a_plan_and_explains_bad_input_in_one_line() {
    let app = spawn_app().await;
    let dir = app.dir.path();
    let out = cli(
        dir,
        &[
            "plan",
            "--name",
            "cli-1",
            "--seed",
            "2026-W23",
            "--size",
            "4",
            "--region",
            "511504",
            "--weights",
            "red=5,yellow=2.5,green=1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("plan cli-1: seed `2026-W23`, weights red=5,yellow=2.5,green=1, 4 of 74 candidates drawn"), "{stdout}");
    let (status, plan) = app.get("/api/v1/plans/cli-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        plan["weights"],
        json!({"red": 5, "yellow": 2.5, "green": 1})
    );
    for e in plan["merchants"].as_array().unwrap() {
        assert!(
            stdout.contains(e["merchant_id"].as_str().unwrap()),
            "{stdout}"
        );
    }

    let cases: [(&[&str], &str); 6] = [
        (&["--size", "0"], "--size 0: expected 1 to 5000"),
        (&["--size", "3", "--weights", "red=x"], "--weights: red=`x`"),
        (
            &["--size", "3", "--weights", "red=0,yellow=0,green=0"],
            "--weights: at least one grade",
        ),
        (
            &["--size", "3", "--region", "5115"],
            "--region: region `5115`",
        ),
        (
            &["--size", "3", "--inspectors-per-check", "0"],
            "--inspectors-per-check 0",
        ),
        (
            &["--size", "3", "--as-of", "yesterday"],
            "--as-of `yesterday`",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["plan", "--name", "bad", "--seed", "s"];
        args.extend_from_slice(extra);
        let out = cli(dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    // The name is taken.
    let out = cli(
        dir,
        &["plan", "--name", "cli-1", "--seed", "x", "--size", "1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan `cli-1` already exists"));
    // Nobody covers a team of ten: the plan is drawn with explicit no-team entries.
    let out = cli(
        dir,
        &[
            "plan",
            "--name",
            "no-teams",
            "--seed",
            "x",
            "--size",
            "2",
            "--inspectors-per-check",
            "10",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("no team: 无法组队").count(), 2, "{stdout}");
}

/// The public plan page on a phone, in a real browser: styled by its own
/// sheet under the content security policy, nothing fetched but itself,
/// no sideways scrolling at 390 px, no inspector's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_page_fits_a_phone_and_fetches_nothing_but_itself() {
    use crate::browser::cdp::{require, Browser};
    use crate::browser::{shots_dir, visit, PHONE};
    require("chromium", "chromium");
    let app = spawn_app().await;
    let url = format!("{}/plans/demo", app.base);
    let shot = shots_dir().join("plan-demo.png");
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let seen = visit(&mut browser, &url, &shot);
        assert_eq!(seen.http, 200);
        assert_eq!(
            seen.layout["background"], "rgb(244, 245, 247)",
            "not styled"
        );
        assert_eq!(
            seen.requests,
            vec![url.clone()],
            "fetched more than the page"
        );
        assert!(
            seen.layout["scrollWidth"].as_u64().unwrap() <= u64::from(PHONE.0),
            "the plan page scrolls sideways on a phone: {}",
            seen.layout
        );
        for want in ["双随机抽查计划", "随机种子", "检查组：", "结果：待检查"]
        {
            assert!(seen.text.contains(want), "no {want:?} in:\n{}", seen.text);
        }
        for secret in NAMES {
            assert!(!seen.text.contains(secret), "shows {secret}");
        }
    })
    .await
    .unwrap();
}
