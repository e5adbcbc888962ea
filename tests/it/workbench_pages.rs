//! The workbench's pages and actions over HTTP: the dashboard, search with
//! filters and paging, a merchant's page, reclassifying and codes through
//! the JSON API's code (same scan change, same audit entries), the audit
//! log, imports by upload with their rejected lines, and a region's token
//! seeing and changing only its region everywhere.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::workbench::{add_token, login, store_of, Answer, Session};

/// A merchant of 翠屏区 (511502), outside the demo county 叙州区 (511504).
pub(crate) const FOREIGN: &str = "CP-0001";

/// Registers [`FOREIGN`] (with personal data) through the API.
pub(crate) async fn register_foreign(app: &TestApp) {
    let line = json!({"id": FOREIGN, "name": "翠屏区放心肉店", "kind": "shop",
        "address": "翠屏区南岸西路 1 号", "region": "511502", "categories": ["肉类销售"],
        "contact_name": "王小二", "contact_phone": "13800001111", "id_number": "511502198001011234"});
    let res = app
        .client
        .post(format!("{}/api/v1/admin/merchants", app.base))
        .bearer_auth(&app.token)
        .body(line.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// The visible text of a page, roughly: tags dropped.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The merchant ids a search page lists, in order.
fn listed(page: &Answer) -> Vec<String> {
    page.body
        .split("<li><a href=\"/admin/merchants/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn the_dashboard_shows_counts_by_grade_a_chart_by_region_and_the_queues() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    // An override: the merchant's printed code shows another grade.
    let res = staff
        .post(
            &app.base,
            "/admin/merchants/XZ-0001/override",
            &[("grade", "red"), ("reason", "现场检查发现问题")],
        )
        .await;
    assert_eq!(res.status, 303);
    let (_, stats) = app
        .admin(Method::GET, "/api/v1/admin/stats", Some(&app.token), None)
        .await;
    let page = staff.get(&app.base, "/admin").await;
    assert_eq!(page.status, 200);
    let t = text(&page.body);
    assert!(t.contains(&format!("商户总数{}", stats["total"])), "{t}");
    for g in ["green", "yellow", "red"] {
        let n = stats["by_grade"][g].as_u64().unwrap_or(0);
        assert!(page.body.contains(&format!("<b>{n}</b>")), "{g} {n}");
    }
    // The chart: inline SVG, one bar per grade present in 511504, labelled.
    assert!(page.body.contains("<svg"), "an inline chart");
    assert!(
        page.body.contains("各辖区信用等级分布"),
        "a text alternative"
    );
    assert!(t.contains("511504"));
    assert!(page.body.contains("近12周信用等级趋势"));
    assert!(t.contains("本周等级变化"));
    assert!(
        page.body.contains("/admin/merchants/XZ-0001"),
        "on the reprint queue"
    );
    assert!(t.contains("待重新打印的码"), "{t}");
    assert!(
        t.contains("件待审核") && t.contains("户逾期未巡查"),
        "reviews and patrols: counts"
    );
    // XZ-0001's printed code is green, its grade now red: a reprint.
    assert!(
        t.contains("待重新打印的码（") && !t.contains("待重新打印的码（0）"),
        "{t}"
    );
}

#[tokio::test]
async fn search_filters_and_pages_like_the_api() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    for query in [
        "",
        "grade=red",
        "grade=yellow&kind=shop",
        "kind=vendor",
        "q=XZ-0004",
        "region=5115",
        "region=52",
        "category=%E9%A4%90%E9%A5%AE%E6%9C%8D%E5%8A%A1",
        "page=2",
        "page=4",
    ] {
        let page = staff
            .get(&app.base, &format!("/admin/merchants?{query}"))
            .await;
        assert_eq!(page.status, 200, "{query}");
        let (_, api) = app
            .admin(
                Method::GET,
                &format!("/api/v1/admin/merchants?{query}"),
                Some(&app.token),
                None,
            )
            .await;
        let want: Vec<String> = api["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed(&page), want, "{query}");
        assert!(
            text(&page.body).contains(&format!("结果：{} 户", api["total"])),
            "{query}"
        );
    }
    // Paging links keep the filters.
    let page = staff.get(&app.base, "/admin/merchants?kind=shop").await;
    assert!(
        page.body
            .contains("href=\"/admin/merchants?kind=shop&amp;page=2\""),
        "{}",
        page.body
    );
    // Bad filters: 400, as a page.
    let bad = staff.get(&app.base, "/admin/merchants?grade=purple").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("输入有误") && bad.body.contains("purple"));
}

#[tokio::test]
async fn the_merchant_page_shows_identity_grade_records_history_codes_and_audit() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    let (_, public) = app.get("/api/v1/merchants/XZ-0005").await;
    let page = staff.get(&app.base, "/admin/merchants/XZ-0005").await;
    assert_eq!(page.status, 200);
    let t = text(&page.body);
    let m = &public["merchant"];
    for field in ["name", "address", "region"] {
        assert!(t.contains(m[field].as_str().unwrap()), "{field}: {t}");
    }
    assert!(t.contains("红码 重点监管"), "XZ-0005 is red: {t}");
    for r in public["reasons"].as_array().unwrap() {
        assert!(t.contains(r["text"].as_str().unwrap()), "reason {r}");
    }
    for section in [
        "当前等级",
        "改判",
        "信用码",
        "记录（",
        "等级历史",
        "操作记录",
    ] {
        assert!(t.contains(section), "{section}");
    }
    // Every record is on the timeline, by id.
    let store = store_of(&app).await;
    let id = yisaozhi::model::MerchantId::parse("XZ-0005").unwrap();
    let records = store.records(&id).await.unwrap();
    assert!(!records.is_empty());
    for r in &records {
        assert!(t.contains(&r.id), "record {}", r.id);
    }
    // An unknown merchant: 404 as a page.
    let missing = staff.get(&app.base, "/admin/merchants/NOPE-1").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("未找到"));
}

/// The `serial` of a code listed active on a merchant's page.
fn active_serial(page: &str) -> u64 {
    let at = page.find(" · 在用").expect("an active code");
    let before = &page[..at];
    let start = before.rfind("第 ").unwrap() + "第 ".len();
    before[start..]
        .trim_end_matches(" 号")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn reclassify_issue_and_revoke_from_the_workbench_change_the_scan_and_are_audited() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区市场监管局", "write:511504").await;
    let staff = login(&app.base, &token).await;
    let scan_token = app.token_of("XZ-0001").await;
    assert_eq!(app.scan("XZ-0001").await["grade"], "green");

    // Reclassify with a reason and an expiry.
    let res = staff
        .post(
            &app.base,
            "/admin/merchants/XZ-0001/override",
            &[
                ("grade", "red"),
                ("reason", "群众举报销售过期食品"),
                ("expires_at", "2099-12-31"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        Some("/admin/merchants/XZ-0001?done=override")
    );
    let scan = app.scan("XZ-0001").await;
    assert_eq!(scan["grade"], "red");
    assert_eq!(scan["override"]["reason"], "群众举报销售过期食品");
    let page = staff
        .get(&app.base, "/admin/merchants/XZ-0001?done=override")
        .await;
    assert!(text(&page.body).contains("已改判"));
    assert!(text(&page.body).contains("撤销改判"));

    // Bad input is refused with the API's message, and changes nothing.
    for (fields, says) in [
        (vec![("grade", "purple"), ("reason", "x")], "purple"),
        (vec![("grade", "red"), ("reason", "  ")], "reason"),
        (
            vec![
                ("grade", "red"),
                ("reason", "x"),
                ("expires_at", "2001-01-01"),
            ],
            "past",
        ),
    ] {
        let res = staff
            .post(&app.base, "/admin/merchants/XZ-0001/override", &fields)
            .await;
        assert_eq!(res.status, 400, "{fields:?}");
        assert!(res.body.contains(says), "{}", res.body);
    }

    // Clear it.
    let res = staff
        .post(&app.base, "/admin/merchants/XZ-0001/override/clear", &[])
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(app.scan("XZ-0001").await["grade"], "green");

    // Issue a new code: the old one is superseded.
    let res = staff
        .post(&app.base, "/admin/merchants/XZ-0001/codes", &[])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let (status, old) = app.get(&format!("/api/v1/scan/{scan_token}")).await;
    assert_eq!(
        (status, old["code"]["status"].as_str()),
        (410, Some("superseded"))
    );

    // Revoke the new one (the box ticked), then again (409).
    let page = staff.get(&app.base, "/admin/merchants/XZ-0001").await;
    let serial = active_serial(&text(&page.body));
    let path = format!("/admin/codes/{serial}/revoke");
    let res = staff.post(&app.base, &path, &[]).await;
    assert_eq!(res.status, 400, "the confirmation box: {}", res.body);
    let res = staff.post(&app.base, &path, &[("confirm", "yes")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.location(),
        Some("/admin/merchants/XZ-0001?done=revoked")
    );
    let (_, code) = app.get("/api/v1/merchants/XZ-0001/code").await;
    assert_ne!(
        code["serial"],
        json!(serial),
        "no active code is the revoked one"
    );
    let res = staff.post(&app.base, &path, &[("confirm", "yes")]).await;
    assert_eq!(res.status, 409);

    // All of it in the audit log under the token's name, as through the API.
    let (_, audit) = app
        .admin(
            Method::GET,
            "/api/v1/admin/audit?target=XZ-0001",
            Some(&app.token),
            None,
        )
        .await;
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    for action in [
        "code.revoke",
        "code.issue",
        "override.clear",
        "override.set",
    ] {
        assert!(
            actions.contains(&(action, "叙州区市场监管局")),
            "{action}: {actions:?}"
        );
    }
    // And on the audit page, with its filters.
    let page = staff
        .get(&app.base, "/admin/audit?target=XZ-0001&actor=%E5%8F%99%E5%B7%9E%E5%8C%BA%E5%B8%82%E5%9C%BA%E7%9B%91%E7%AE%A1%E5%B1%80")
        .await;
    let t = text(&page.body);
    for label in ["改判", "撤销改判", "签发新码", "注销码"] {
        assert!(t.contains(label), "{label}: {t}");
    }
    assert!(t.contains("群众举报销售过期食品"), "the reason");
}

/// A `multipart/form-data` body of `fields` and one file.
fn multipart(fields: &[(&str, &str)], file: (&str, &str)) -> (String, Vec<u8>) {
    let boundary = "----ysz-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.1.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    app: &TestApp,
    staff: &Session,
    fields: &[(&str, &str)],
    file: (&str, &str),
) -> Answer {
    let (ctype, body) = multipart(fields, file);
    let res = crate::workbench::client()
        .post(format!("{}/admin/import", app.base))
        .header("cookie", staff.cookies().join("; "))
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}

#[tokio::test]
async fn an_uploaded_file_is_imported_with_its_rejected_lines_shown() {
    let app = spawn_app().await;
    register_foreign(&app).await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区市场监管局", "write:511504").await;
    let staff = login(&app.base, &token).await;
    let today = yisaozhi::clock::today();
    let records = [
        json!({"id": "UP-1", "merchant": "XZ-0001", "kind": "penalty", "date": today,
               "decision_no": "叙市监罚〔2026〕9号", "severity": "severe", "fine_cny": 20000}),
        json!({"id": "UP-2", "merchant": "XZ-0002", "kind": "inspection", "date": "2026-13-01",
               "hazards": 0, "rectified": true}),
        json!({"id": "UP-3", "merchant": FOREIGN, "kind": "complaint", "date": today, "substantiated": true}),
        json!({"id": "UP-4", "merchant": "NOBODY", "kind": "complaint", "date": today, "substantiated": true}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let records = format!("{records}\nnot json\n");
    let res = upload(
        &app,
        &staff,
        &[("csrf", &staff.csrf), ("kind", "records")],
        ("records.jsonl", &records),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let t = text(&res.body);
    assert!(t.contains("导入完成"), "{t}");
    for line in 2..=5 {
        assert!(
            t.contains(&format!("第 {line} 行")),
            "line {line} rejected: {t}"
        );
    }
    assert!(!t.contains("第 1 行"), "{t}");
    assert!(t.contains("2026-13-01") && t.contains("NOBODY"), "{t}");
    assert_eq!(
        app.scan("XZ-0001").await["grade"],
        "red",
        "imported and graded at once"
    );

    // CSV merchants: a new vendor gets a code; a foreign one is refused.
    let csv = "id,name,kind,address,region,categories\n\
               XZ-9001,流动果蔬摊,vendor,南岸街口,511504,果蔬销售\n\
               CP-9001,外区小店,shop,翠屏区某路,511502,食品销售\n";
    let res = upload(
        &app,
        &staff,
        &[("csrf", &staff.csrf), ("kind", "merchants")],
        ("merchants.csv", csv),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let t = text(&res.body);
    assert!(t.contains("XZ-9001") && t.contains("打印"), "{t}");
    assert!(t.contains("第 3 行"), "{t}");
    assert_eq!(app.get("/api/v1/merchants/XZ-9001/code").await.0, 200);
    assert_eq!(app.get("/api/v1/merchants/CP-9001").await.0, 404);

    // Without the form token: 403, nothing imported.
    let other = json!({"id": "UP-9", "merchant": "XZ-0003", "kind": "complaint", "date": today, "substantiated": true});
    let res = upload(
        &app,
        &staff,
        &[("kind", "records")],
        ("r.jsonl", &other.to_string()),
    )
    .await;
    assert_eq!(res.status, 403);
    let id = yisaozhi::model::MerchantId::parse("XZ-0003").unwrap();
    assert!(!store
        .records(&id)
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == "UP-9"));
    // Too large: refused whether its length is declared or it comes in
    // chunks (then once the limit is passed).
    let big = "\n".repeat(5 * 1024 * 1024);
    let (ctype, body) = multipart(
        &[("csrf", &staff.csrf), ("kind", "records")],
        ("big.jsonl", &big),
    );
    let host = app.base.trim_start_matches("http://");
    let cookie = staff.cookies().join("; ");
    let declared = format!(
        "POST /admin/import HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\n",
        body.len()
    );
    let mut chunked = Vec::new();
    for part in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let streamed = format!(
        "POST /admin/import HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\
         Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n"
    );
    for (head, body) in [(declared, &body), (streamed, &chunked)] {
        let res = crate::raw::exchange(
            host,
            head.as_bytes(),
            body,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(
            res.status,
            413,
            "{head}: {}",
            String::from_utf8_lossy(&res.body)
        );
    }
}

#[tokio::test]
async fn a_township_token_sees_and_changes_only_its_region() {
    let app = spawn_app().await;
    register_foreign(&app).await;
    let store = store_of(&app).await;
    let township = add_token(&store, "翠屏区白沙所", "write:511502").await;
    let staff = login(&app.base, &township).await;

    // Search: only its region, whatever the filters.
    for query in ["", "region=51", "region=5115", "q=XZ-0001", "region=511504"] {
        let page = staff
            .get(&app.base, &format!("/admin/merchants?{query}"))
            .await;
        let ids = listed(&page);
        let want: Vec<String> = if query.contains("XZ") || query.contains("511504") {
            vec![]
        } else {
            vec![FOREIGN.into()]
        };
        assert_eq!(ids, want, "{query}");
    }
    // Dashboard: its region's counts only.
    let page = staff.get(&app.base, "/admin").await;
    let t = text(&page.body);
    assert!(t.contains("商户总数1"), "{t}");
    assert!(t.contains("511502") && !t.contains("511504"), "{t}");
    // Merchant pages: its own, with personal data; others refused.
    let own = staff
        .get(&app.base, &format!("/admin/merchants/{FOREIGN}"))
        .await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("13800001111") && own.body.contains("511502198001011234"));
    let other = staff.get(&app.base, "/admin/merchants/XZ-0001").await;
    assert_eq!(other.status, 403);
    let (_, xz) = app.get("/api/v1/merchants/XZ-0001").await;
    for field in ["name", "address"] {
        let value = xz["merchant"][field].as_str().unwrap();
        assert!(
            !other.body.contains(value),
            "{field} shown to another region"
        );
    }
    // Actions on others: refused, nothing changed.
    let before = app.scan("XZ-0001").await;
    let serial = app.get("/api/v1/merchants/XZ-0001/code").await.1["serial"].to_string();
    for (path, fields) in [
        (
            "/admin/merchants/XZ-0001/override".to_owned(),
            vec![("grade", "red"), ("reason", "越权")],
        ),
        ("/admin/merchants/XZ-0001/codes".to_owned(), vec![]),
        (
            format!("/admin/codes/{serial}/revoke"),
            vec![("confirm", "yes")],
        ),
    ] {
        let res = staff.post(&app.base, &path, &fields).await;
        assert_eq!(res.status, 403, "{path}: {}", res.body);
    }
    assert_eq!(app.scan("XZ-0001").await, before);
    // Audit log: entries about its region (and its own), none about others.
    let page = staff.get(&app.base, "/admin/audit?limit=1000").await;
    let t = text(&page.body);
    assert!(t.contains(FOREIGN), "{t}");
    assert!(!t.contains("XZ-0"), "{t}");

    // A read-only token sees every region but no personal data, and no forms.
    let viewer = add_token(&store, "市局只读", "read").await;
    let viewer = login(&app.base, &viewer).await;
    let page = viewer
        .get(&app.base, &format!("/admin/merchants/{FOREIGN}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("13800001111") && !page.body.contains("511502198001011234"));
    assert!(page.body.contains("138****1111"), "masked");
    assert!(!page.body.contains("/override\""), "no override form");
    let res = viewer
        .post(
            &app.base,
            &format!("/admin/merchants/{FOREIGN}/override"),
            &[("grade", "red"), ("reason", "只读")],
        )
        .await;
    assert_eq!(res.status, 403);
    let all = viewer.get(&app.base, "/admin/merchants?region=51").await;
    assert!(listed(&all).contains(&FOREIGN.to_owned()) && listed(&all).len() > 1);
}
