//! The shop's side over HTTP (CONTRACT §6): activation codes used once and
//! limited against guessing, a shop bound to its own merchant, its
//! submissions reviewed once by a regulator in scope and graded at once,
//! replies and the commitment shown on the scan page and JSON, credit
//! repair ending Y2 and the abnormal list, audit entries, and all of it
//! read back after a restart.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{serve, spawn_app, TestApp};

pub(crate) const Y: &str = "SHOP-Y";
const R: &str = "SHOP-R";
pub(crate) const OTHER: &str = "SHOP-O";

fn day(offset: i64) -> String {
    use jiff::ToSpan;
    yisaozhi::clock::today()
        .checked_add(offset.days())
        .unwrap()
        .to_string()
}

/// Sends `body` as is with the regulator's token.
async fn raw(app: &TestApp, method: Method, path: &str, body: String) -> (u16, Value) {
    let res = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&app.token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Three merchants: `SHOP-Y` yellow (a penalty in publicity, Y2, and an
/// abnormal-list entry, Y1), `SHOP-R` red (a severe penalty, R2 and Y2;
/// the serious list, R1), and `SHOP-O`, someone else.
pub(crate) async fn seed(app: &TestApp) {
    let merchant = |id: &str| {
        json!({"id": id, "name": format!("商户{id}"), "kind": "shop",
        "address": "叙州区南岸东路1号", "region": "511504", "categories": ["食品"]})
    };
    let (s, b) = raw(
        app,
        Method::POST,
        "/api/v1/admin/merchants",
        jsonl(&[merchant(Y), merchant(R), merchant(OTHER)]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let rec = |id: &str, m: &str, date: String, body: Value| {
        let mut v = json!({"id": id, "merchant": m, "date": date});
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        v
    };
    let lines = [
        rec(
            "y-pen",
            Y,
            day(-30),
            json!({"kind": "penalty", "decision_no": "叙市监罚〔2026〕1号", "severity": "minor", "fine_cny": 500, "publicity_until": day(60)}),
        ),
        rec(
            "y-list",
            Y,
            day(-20),
            json!({"kind": "list", "list": "abnormal", "action": "add"}),
        ),
        rec(
            "y-insp",
            Y,
            day(-400),
            json!({"kind": "inspection", "hazards": 0, "rectified": true}),
        ),
        rec(
            "r-pen",
            R,
            day(-10),
            json!({"kind": "penalty", "decision_no": "叙市监罚〔2026〕2号", "severity": "severe", "fine_cny": 20000, "publicity_until": day(90)}),
        ),
        rec(
            "r-list",
            R,
            day(-5),
            json!({"kind": "list", "list": "serious", "action": "add"}),
        ),
        rec(
            "o-pen",
            OTHER,
            day(-10),
            json!({"kind": "penalty", "decision_no": "叙市监罚〔2026〕3号", "severity": "minor", "fine_cny": 100, "publicity_until": day(30)}),
        ),
    ];
    let (s, b) = raw(app, Method::POST, "/api/v1/admin/records", jsonl(&lines)).await;
    assert_eq!(s, 200, "{b}");
}

pub(crate) async fn issue_code(app: &TestApp, id: &str) -> String {
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/api/v1/admin/merchants/{id}/access"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["activation_code"].as_str().unwrap().to_owned()
}

pub(crate) async fn login_token(app: &TestApp, id: &str, code: &str) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}/api/v1/shop/token", app.base))
        .form(&[("merchant_id", id), ("activation_code", code)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn shop_token(app: &TestApp, id: &str) -> String {
    let code = issue_code(app, id).await;
    let (s, b) = login_token(app, id, &code).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

pub(crate) async fn as_shop(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.admin(method, path, Some(token), body).await
}

pub(crate) async fn decide(app: &TestApp, id: &str, decision: &str, reason: &str) -> (u16, Value) {
    app.admin(
        Method::POST,
        &format!("/api/v1/admin/reviews/{id}"),
        Some(&app.token),
        Some(json!({"decision": decision, "reason": reason})),
    )
    .await
}

/// The actions of the audit log about `target`, newest first.
pub(crate) async fn audit_actions(app: &TestApp, target: &str) -> Vec<String> {
    let path = format!("/api/v1/admin/audit?target={target}&limit=100");
    let (_, log) = app.admin(Method::GET, &path, Some(&app.token), None).await;
    let entries = log["entries"].as_array().unwrap().iter();
    entries
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn rules_of(scan: &Value) -> Vec<String> {
    scan["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_activation_code_is_used_once_and_binds_the_shop_to_its_merchant() {
    let app = spawn_app().await;
    seed(&app).await;
    let old = issue_code(&app, Y).await;
    assert_eq!(old.len(), 11, "{old}: two groups of five");
    let code = issue_code(&app, Y).await;
    assert_eq!(
        login_token(&app, Y, &old).await.0,
        401,
        "a new code replaces the old"
    );
    assert_eq!(
        login_token(&app, OTHER, &code).await.0,
        401,
        "a code is bound to its merchant"
    );

    // Of concurrent logins with one code, exactly one wins.
    let (a, b) = tokio::join!(login_token(&app, Y, &code), login_token(&app, Y, &code));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 401]);
    let token = if a.0 == 201 { a.1 } else { b.1 }["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("yszm_"));

    let (s, me) = as_shop(&app, &token, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["merchant_id"], Y);
    let reasons: Vec<&str> = me["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Y1", "Y2"]);
    assert!(
        me["reasons"][1]["clears"]
            .as_str()
            .unwrap()
            .contains(&day(61)),
        "{me}"
    );
    assert!(me["reasons"][1]["todo"]
        .as_str()
        .unwrap()
        .contains("信用修复"));
    assert!(me["code"]["print_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/merchants/{Y}/print")));
    assert_eq!(me["repairable"].as_array().unwrap().len(), 2);

    // Nothing of another merchant: its records are not this shop's.
    for (path, body) in [
        (
            "/api/v1/shop/replies",
            json!({"record_id": "o-pen", "text": "不是我的"}),
        ),
        (
            "/api/v1/shop/repairs",
            json!({"record_id": "o-pen", "commitment": true, "statement": "x"}),
        ),
    ] {
        let (s, b) = as_shop(&app, &token, Method::POST, path, Some(body)).await;
        assert_eq!(s, 400, "{path}: {b}");
        assert_eq!(b["error"], "bad_request");
    }
    // Without a session, or with a regulator's token: 401.
    assert_eq!(app.get("/api/v1/shop/me").await.0, 401);
    assert_eq!(
        as_shop(&app, &app.token, Method::GET, "/api/v1/shop/me", None)
            .await
            .0,
        401
    );

    // Revoking access ends the token.
    let (s, b) = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/admin/merchants/{Y}/access"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        as_shop(&app, &token, Method::GET, "/api/v1/shop/me", None)
            .await
            .0,
        401
    );

    // Audited, without the code.
    let actions = audit_actions(&app, Y).await;
    for a in ["shop.access.issue", "shop.activate", "shop.access.revoke"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let path = format!("/api/v1/admin/audit?target={Y}");
    let (_, log) = app.admin(Method::GET, &path, Some(&app.token), None).await;
    assert!(!log.to_string().contains(&code[..5]));
}

#[tokio::test]
async fn guessing_activation_codes_is_limited_per_client() {
    let app = spawn_app().await;
    seed(&app).await;
    let code = issue_code(&app, Y).await;
    for _ in 0..yisaozhi::auth::MAX_FAILURES_PER_MINUTE {
        assert_eq!(login_token(&app, Y, "AAAAA-AAAAA").await.0, 401);
    }
    // Past the limit even the right code is refused unchecked, and stays usable.
    assert_eq!(login_token(&app, Y, &code).await.0, 429);
    assert_eq!(login_token(&app, R, "AAAAA-AAAAA").await.0, 429);
}

#[tokio::test]
async fn a_regulator_outside_the_scope_cannot_give_access_or_decide() {
    let app = spawn_app().await;
    seed(&app).await;
    let store = yisaozhi::store::StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap();
    let scope = yisaozhi::auth::Scope::parse("write:5116").unwrap();
    let (other, stored) =
        yisaozhi::auth::new_token("elsewhere", &scope, yisaozhi::clock::now()).unwrap();
    store.put_token(stored).await.unwrap();
    let path = format!("/api/v1/admin/merchants/{Y}/access");
    assert_eq!(
        app.admin(Method::POST, &path, Some(&other), None).await.0,
        403
    );
    assert_eq!(
        app.admin(Method::DELETE, &path, Some(&other), None).await.0,
        403
    );
    assert_eq!(app.admin(Method::POST, &path, None, None).await.0, 401);
    let token = shop_token(&app, Y).await;
    let (_, r) = as_shop(
        &app,
        &token,
        Method::POST,
        "/api/v1/shop/replies",
        Some(json!({"rule": "Y1", "text": "已补报年报"})),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/api/v1/admin/reviews/{id}"),
            Some(&other),
            Some(json!({"decision": "accept"})),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // A read-scope token lists the queue; one of another region does not
    // see this merchant's submission in it.
    let (reader, stored) = yisaozhi::auth::new_token(
        "reader",
        &yisaozhi::auth::Scope::Read,
        yisaozhi::clock::now(),
    )
    .unwrap();
    store.put_token(stored).await.unwrap();
    for (token, listed) in [(&reader, json!(id)), (&other, Value::Null)] {
        let (s, q) = app
            .admin(
                Method::GET,
                "/api/v1/admin/reviews?status=pending",
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, 200, "{q}");
        assert_eq!(q["reviews"][0]["id"], listed, "{q}");
    }
}

#[tokio::test]
async fn submissions_are_validated_reviewed_once_and_graded_at_once() {
    let app = spawn_app().await;
    seed(&app).await;
    let token = shop_token(&app, Y).await;
    let post = |path: &'static str, body: Value| {
        let (app, token) = (&app, token.clone());
        async move { as_shop(app, &token, Method::POST, path, Some(body)).await }
    };

    // Clear errors in the envelope.
    for (path, body, words) in [
        (
            "/api/v1/shop/self-reports",
            json!({"report_type": "bill", "date": day(0)}),
            "field `report_type`",
        ),
        (
            "/api/v1/shop/self-reports",
            json!({"report_type": "invoice", "date": day(1)}),
            "after today",
        ),
        (
            "/api/v1/shop/replies",
            json!({"rule": "Y2", "text": "好".repeat(301)}),
            "field `text`",
        ),
        (
            "/api/v1/shop/replies",
            json!({"rule": "Y2", "text": "a\u{202e}b"}),
            "field `text`",
        ),
        (
            "/api/v1/shop/replies",
            json!({"rule": "R9", "text": "x"}),
            "not among",
        ),
        (
            "/api/v1/shop/repairs",
            json!({"record_id": "y-pen", "commitment": false, "statement": "x"}),
            "field `commitment`",
        ),
        (
            "/api/v1/shop/repairs",
            json!({"record_id": "y-insp", "commitment": true, "statement": "x"}),
            "cannot be repaired",
        ),
    ] {
        let (s, b) = post(path, body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(
            b["message"].as_str().unwrap().contains(words),
            "{body}: {b}"
        );
    }

    let (s, report) = post(
        "/api/v1/shop/self-reports",
        json!({"report_type": "incoming_check", "date": day(-1),
        "supplier": "宜宾某批发部", "product": "散装白酒", "batch": "20260301",
        "items": [{"item": "票证齐全", "ok": true}, {"item": "感官检查", "ok": false}]}),
    )
    .await;
    assert_eq!((s, &report["status"]), (201, &json!("pending")), "{report}");
    let (_, reply) = post(
        "/api/v1/shop/replies",
        json!({"rule": "Y2", "text": "罚款已于当日缴清，已整改。"}),
    )
    .await;
    let (_, reply_rec) = post(
        "/api/v1/shop/replies",
        json!({"record_id": "y-pen", "text": "对处罚无异议。"}),
    )
    .await;
    let (_, repair_pen) = post(
        "/api/v1/shop/repairs",
        json!({"record_id": "y-pen", "commitment": true, "statement": "已缴清罚款并整改"}),
    )
    .await;
    let (_, repair_list) = post(
        "/api/v1/shop/repairs",
        json!({"record_id": "y-list", "commitment": true, "statement": "已补报年报"}),
    )
    .await;

    // The queue, filtered.
    let (s, q) = app
        .admin(
            Method::GET,
            "/api/v1/admin/reviews?kind=repair&status=pending",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{q}");
    let ids: Vec<&str> = q["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            repair_pen["id"].as_str().unwrap(),
            repair_list["id"].as_str().unwrap()
        ]
    );
    assert_eq!(
        app.admin(
            Method::GET,
            "/api/v1/admin/reviews?kind=x",
            Some(&app.token),
            None
        )
        .await
        .0,
        400
    );

    // Nothing shows before a decision.
    let scan = app.scan(Y).await;
    assert!(scan["reasons"][1].get("reply").is_none(), "{scan}");

    // A decision is made once; rejecting needs a reason.
    let rid = reply["id"].as_str().unwrap();
    assert_eq!(decide(&app, rid, "reject", "").await.0, 400);
    let (a, b) = tokio::join!(
        decide(&app, rid, "accept", "属实"),
        decide(&app, rid, "reject", "不属实")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", a.1, b.1);
    let accepted = if a.0 == 200 {
        a.1["status"] == "accepted"
    } else {
        b.1["status"] == "accepted"
    };
    assert_eq!(
        decide(&app, reply_rec["id"].as_str().unwrap(), "accept", "")
            .await
            .0,
        200
    );
    assert_eq!(
        decide(&app, report["id"].as_str().unwrap(), "accept", "已核实")
            .await
            .0,
        200
    );

    let scan = app.scan(Y).await;
    let y2 = scan["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "Y2")
        .unwrap();
    if accepted {
        assert_eq!(y2["reply"]["text"], "罚款已于当日缴清，已整改。", "{scan}");
        assert_eq!(y2["reply"]["at"], day(0));
    } else {
        assert!(y2.get("reply").is_none());
    }
    assert_eq!(
        scan["records"]["penalties"][0]["reply"]["text"],
        "对处罚无异议。"
    );
    let self_report = &scan["records"]["self_reports"][0];
    assert_eq!(
        (
            self_report["report_type"].as_str(),
            self_report["date"].as_str()
        ),
        (Some("incoming_check"), Some(day(-1).as_str()))
    );
    let page = app
        .get_text(&format!("/s/{}", app.token_of(Y).await))
        .await
        .2;
    assert!(
        page.contains("对处罚无异议。"),
        "the scan page shows the reply"
    );

    // Credit repair: the penalty's publicity ends (Y2), then the list entry counts as removed (Y1).
    assert_eq!(
        decide(
            &app,
            repair_pen["id"].as_str().unwrap(),
            "accept",
            "符合修复条件"
        )
        .await
        .0,
        200
    );
    let scan = app.scan(Y).await;
    assert_eq!(rules_of(&scan), ["Y1"], "{scan}");
    assert_eq!(
        decide(
            &app,
            repair_list["id"].as_str().unwrap(),
            "accept",
            "已移出"
        )
        .await
        .0,
        200
    );
    let scan = app.scan(Y).await;
    assert_eq!(
        (scan["grade"].as_str(), rules_of(&scan)),
        (Some("green"), vec!["G".to_owned()]),
        "{scan}"
    );

    // A red merchant: the severe penalty's publicity is repairable (Y2), R2 stays; the serious list is not.
    let red = shop_token(&app, R).await;
    let (s, b) = as_shop(
        &app,
        &red,
        Method::POST,
        "/api/v1/shop/repairs",
        Some(json!({"record_id": "r-list", "commitment": true, "statement": "x"})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (_, rp) = as_shop(
        &app,
        &red,
        Method::POST,
        "/api/v1/shop/repairs",
        Some(json!({"record_id": "r-pen", "commitment": true, "statement": "已缴清"})),
    )
    .await;
    assert_eq!(
        decide(&app, rp["id"].as_str().unwrap(), "accept", "公示期修复")
            .await
            .0,
        200
    );
    let scan = app.scan(R).await;
    assert_eq!(
        (scan["grade"].as_str(), rules_of(&scan)),
        (Some("red"), vec!["R1".to_owned(), "R2".to_owned()])
    );

    // The shop sees its decisions; every submission and decision is audited.
    let (_, me) = as_shop(&app, &token, Method::GET, "/api/v1/shop/me", None).await;
    let statuses: Vec<&str> = me["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 5);
    assert!(!statuses.contains(&"pending"), "{statuses:?}");
    let actions = audit_actions(&app, Y).await;
    for a in [
        "shop.submit.self_report",
        "shop.submit.reply",
        "shop.submit.repair",
        "review.accept",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| a.starts_with("review.")).count(),
        5
    );

    // A restart reads it all back: sessions, reviews, records.
    let again = TestApp {
        base: serve(app.dir.path()).await,
        ..app
    };
    let (s, me2) = as_shop(&again, &token, Method::GET, "/api/v1/shop/me", None).await;
    assert_eq!(s, 200);
    assert_eq!(me2["submissions"], me["submissions"]);
    assert_eq!(again.scan(Y).await["grade"], "green");
}

#[tokio::test]
async fn the_commitment_is_signed_once_a_day_and_shown_on_the_scan_page() {
    let app = spawn_app().await;
    seed(&app).await;
    let token = shop_token(&app, OTHER).await;
    let (s, text) = as_shop(&app, &token, Method::GET, "/api/v1/shop/commitment", None).await;
    assert_eq!(s, 200);
    assert!(text["text"][0].as_str().unwrap().contains("承诺"));
    assert_eq!(text["signed_on"], Value::Null);
    assert_eq!(
        as_shop(
            &app,
            &token,
            Method::POST,
            "/api/v1/shop/commitment",
            Some(json!({"accept": false}))
        )
        .await
        .0,
        400
    );
    let (s, b) = as_shop(
        &app,
        &token,
        Method::POST,
        "/api/v1/shop/commitment",
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = as_shop(
        &app,
        &token,
        Method::POST,
        "/api/v1/shop/commitment",
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(s, 201, "signing again the same day changes nothing");
    let scan = app.scan(OTHER).await;
    assert_eq!(scan["records"]["commitment"]["date"], day(0));
    let page = app
        .get_text(&format!("/s/{}", app.token_of(OTHER).await))
        .await
        .2;
    assert!(
        page.contains(&format!("已签署质量承诺（{}）", day(0))),
        "{page}"
    );
    let (_, log) = app
        .admin(
            Method::GET,
            &format!("/api/v1/admin/audit?target={OTHER}&actor=shop:{OTHER}"),
            Some(&app.token),
            None,
        )
        .await;
    let n = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "shop.commitment")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_command_line_prints_an_activation_code_that_signs_in() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yisaozhi"))
        .args(["merchants", "access", "XZ-0001", "--store"])
        .arg(format!("embedded:{}", app.dir.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(login_token(&app, "XZ-0001", &code).await.0, 201);
}
