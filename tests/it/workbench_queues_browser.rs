//! The review queue and the patrol list in a real browser at a phone's
//! 390×844: a repair application accepted by keyboard (Tab to the button,
//! Enter), a patrol recorded by taps at the shop's door, each changing what
//! the API and the scan say; the reviews, patrols and plans pages with data
//! on them without sideways scrolling, console errors or a request to
//! another host. Screenshots land in `$CARGO_TARGET_TMPDIR/workbench/`
//! (`queue-*`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::browser::cdp::{require, Browser};
use crate::helpers::spawn_app;
use crate::shop::{as_shop, seed, shop_token, Y};
use crate::workbench::{add_token, store_of};
use crate::workbench_browser::{Tab, PHONE};
use crate::workbench_grid::{green_merchants, patrolled_400_days_ago};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_accepted_and_a_patrol_recorded_on_a_phone() {
    require("chromium", "chromium");
    let app = spawn_app().await;
    seed(&app).await;
    let shop = shop_token(&app, Y).await;
    let (s, repair) = as_shop(
        &app,
        &shop,
        Method::POST,
        "/api/v1/shop/repairs",
        Some(json!({"record_id": "y-pen", "commitment": true, "statement": "已缴清罚款并整改，承诺守法经营"})),
    )
    .await;
    assert_eq!(s, 201, "{repair}");
    let repair = repair["id"].as_str().unwrap().to_owned();
    // A green merchant of assistant XZ-A01, its last patrol 400 days ago.
    let late = green_merchants(&app).await[0].clone();
    patrolled_400_days_ago(&app, &late).await;
    assert_eq!(app.scan(&late).await["grade"], "green");
    assert!(crate::shop::rules_of(&app.scan(Y).await).contains(&"Y2".to_owned()));

    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区市场监管局", "write:511504").await;
    let base = app.base.clone();
    let (late_b, repair_b) = (late.clone(), repair.clone());
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let b = &mut browser;
        let mut tab = Tab::open(b, &base, PHONE);
        tab.go(b, "/admin/login");
        tab.tab_to(b, "token");
        tab.type_text(b, &token);
        tab.key(b, "Enter", 13, Some("\r"));
        tab.wait_load(b);
        assert_eq!(tab.path(b), "/admin");

        // The queue, then accept by keyboard.
        tab.go(b, "/admin/reviews");
        let text = tab.text(b);
        assert!(
            text.contains("信用修复申请") && text.contains("已缴清罚款并整改"),
            "{text}"
        );
        tab.check(b, "queue-reviews");
        tab.tab_to(b, &format!("accept-{repair_b}"));
        tab.key(b, "Enter", 13, Some("\r"));
        tab.wait_load(b);
        assert_eq!(tab.path(b), "/admin/reviews?done=accept");
        assert!(tab.text(b).contains("已通过"));
        tab.check(b, "queue-reviews-accepted");

        // The patrol list: the overdue merchant first; record by taps.
        tab.go(b, "/admin/patrols");
        tab.check(b, "queue-patrols-choose");
        tab.act(
            b,
            r#"(() => {
                document.getElementById('pa-assistant').value = 'XZ-A01';
                document.querySelector('form[action="/admin/patrols"] button').click();
            })()"#,
        );
        assert_eq!(tab.path(b), "/admin/patrols?assistant=XZ-A01&within=0");
        let first = tab.eval(b, "document.querySelector('li.patrol').id");
        assert_eq!(first, format!("patrol-{late_b}"));
        assert!(tab.text(b).contains("逾期 35 天"), "{}", tab.text(b));
        tab.check(b, "queue-patrols");
        tab.eval(b, "document.querySelector('li.patrol summary').click()");
        tab.eval(b, "document.getElementById('p0-deadline').click()");
        let deadline = (yisaozhi::clock::today() + jiff::Span::new().days(7)).to_string();
        tab.eval(
            b,
            &format!("document.getElementById('p0-due').value = '{deadline}'"),
        );
        tab.eval(b, "document.getElementById('p0-hazards').focus()");
        tab.tab_to(b, "p0-note");
        tab.type_text(b, "冷柜温度超标，已告知");
        tab.screenshot(b, "queue-patrol-form-390x844");
        tab.act(b, "document.querySelector('li.patrol form button').click()");
        assert_eq!(tab.path(b), "/admin/patrols?assistant=XZ-A01&done=patrol");
        assert!(tab.text(b).contains("已记录巡查"));
        tab.check(b, "queue-patrols-recorded");

        // The shop's activation code on its letter, from the merchant's page.
        tab.go(b, "/admin/merchants/SHOP-Y");
        tab.act(b, "document.querySelector('form[action=\"/admin/merchants/SHOP-Y/access\"] button').click()");
        let code = tab.eval(b, "document.getElementById('activation-code').textContent");
        assert_eq!(code.as_str().unwrap().len(), 11, "{code}");
        tab.check(b, "queue-access-letter");

        tab.go(b, "/admin/plans");
        tab.check(b, "queue-plans");
        tab.close(b);
    })
    .await
    .unwrap();

    // What the API and the scan say now.
    let (_, accepted) = app
        .admin(
            Method::GET,
            "/api/v1/admin/reviews?status=accepted",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(accepted["reviews"][0]["id"], Value::String(repair));
    assert!(!crate::shop::rules_of(&app.scan(Y).await).contains(&"Y2".to_owned()));
    let scan = app.scan(&late).await;
    assert_eq!(scan["grade"], "yellow", "{scan}");
    let records = store
        .records(&yisaozhi::model::MerchantId::parse(&late).unwrap())
        .await
        .unwrap();
    assert!(records
        .iter()
        .any(|r| r.id != "old-patrol" && r.source.as_deref() == Some("patrol")));
}
