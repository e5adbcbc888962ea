//! The shop's side in a real browser (Debian's headless `chromium`) at a
//! phone's 390×844: sign in with the activation code, sign the commitment
//! and reply to a reason on `/shop`, then, once a regulator accepts the
//! reply, see both on the scan page. Every page: no horizontal scroll, no
//! console error, no request off the host. Screenshots land in
//! `$CARGO_TARGET_TMPDIR/browser/shop-*.png`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::browser::cdp::{require, Browser};
use crate::helpers::spawn_app;
use crate::shop::{decide, issue_code, seed, Y};

const PHONE: (u32, u32) = (390, 844);

fn shot(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("shop-{name}.png"))
}

/// One tab that keeps its cookies across the steps.
struct Tab {
    browser: Browser,
    session: String,
    base: String,
}

impl Tab {
    fn open(base: &str) -> Tab {
        let mut browser = Browser::launch();
        let (_, session) = browser.new_tab();
        let s = Some(session.as_str());
        for domain in ["Page", "Network", "Runtime", "Log"] {
            browser.call(s, &format!("{domain}.enable"), json!({}));
        }
        browser.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": PHONE.0, "height": PHONE.1, "deviceScaleFactor": 2, "mobile": true}),
        );
        Tab {
            browser,
            session,
            base: base.to_owned(),
        }
    }

    fn eval(&mut self, js: &str) -> Value {
        self.browser.eval(&self.session, js)
    }

    /// Runs `js` (which navigates), waits for the new page and checks it.
    fn then_load(&mut self, js: &str, name: &str) -> String {
        self.eval(js);
        self.loaded(name)
    }

    fn goto(&mut self, path: &str, name: &str) -> String {
        let url = format!("{}{path}", self.base);
        self.browser
            .call(Some(&self.session), "Page.navigate", json!({"url": url}));
        self.loaded(name)
    }

    /// After a load: the layout fits the phone, nothing was logged as an
    /// error, nothing was requested off the host; a screenshot is saved.
    /// Returns the page's text.
    fn loaded(&mut self, name: &str) -> String {
        self.browser
            .wait_event(&self.session, "Page.loadEventFired");
        self.browser.settle(Duration::from_millis(300));
        let probe = self.eval(
            "({text: document.body.innerText, scrollWidth: document.documentElement.scrollWidth, \
              innerWidth: window.innerWidth, path: location.pathname, \
              resources: performance.getEntriesByType('resource').map((e) => e.name)})",
        );
        let height = self
            .browser
            .call(Some(&self.session), "Page.getLayoutMetrics", json!({}))["cssContentSize"]
            ["height"]
            .as_f64()
            .unwrap_or(PHONE.1 as f64);
        let png = self.browser.call(
            Some(&self.session),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": PHONE.0, "height": height, "scale": 1}}),
        );
        let png = data_encoding::BASE64
            .decode(png["data"].as_str().unwrap().as_bytes())
            .unwrap();
        std::fs::write(shot(name), png).unwrap();
        let events = self.browser.take_events(&self.session);
        let mut problems = Vec::new();
        for e in &events {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or_default() {
                "Network.requestWillBeSent" => {
                    let url = p["request"]["url"].as_str().unwrap_or_default();
                    // `data:` is in the page (the date field's own icon), not a request.
                    if !url.starts_with(&self.base) && !url.starts_with("data:") {
                        problems.push(format!("request off the host: {url}"));
                    }
                }
                "Runtime.consoleAPICalled" if p["type"] == "error" => {
                    problems.push(format!("console error: {}", p["args"]))
                }
                "Runtime.exceptionThrown" => problems.push(format!("exception: {p}")),
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    problems.push(format!("logged: {}", p["entry"]["text"]))
                }
                _ => {}
            }
        }
        for r in probe["resources"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            if !r.starts_with(&self.base) && !r.starts_with("data:") {
                problems.push(format!("resource off the host: {r}"));
            }
        }
        let width = probe["scrollWidth"].as_u64().unwrap();
        if width > u64::from(PHONE.0) {
            problems.push(format!("horizontal scroll: {width} px wide"));
        }
        assert!(
            problems.is_empty(),
            "{name} ({}): {problems:#?}",
            probe["path"]
        );
        probe["text"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_signs_in_signs_the_commitment_and_replies_on_a_phone() {
    require("chromium", "chromium");
    let app = spawn_app().await;
    seed(&app).await;
    let code = issue_code(&app, Y).await;
    let base = app.base.clone();
    let tab = tokio::task::spawn_blocking(move || {
        let mut tab = Tab::open(&base);
        let text = tab.goto("/shop", "login");
        assert!(text.contains("激活码"), "{text}");
        let text = tab.then_load(
            &format!(
                "document.querySelector('#merchant_id').value = '{Y}';\
                 document.querySelector('#activation_code').value = '{}';\
                 document.querySelector('form').requestSubmit()",
                code.to_lowercase()
            ),
            "page",
        );
        assert!(
            text.contains("黄码") && text.contains("有行政处罚信息正在公示期内"),
            "{text}"
        );
        assert!(text.contains("预计") && text.contains("怎么做"), "{text}");
        let text = tab.then_load(
            "document.querySelector('#accept').checked = true;\
             document.querySelector('#sign').form.requestSubmit()",
            "commitment",
        );
        assert!(
            text.contains("承诺书已签署") && text.contains("签署质量承诺"),
            "{text}"
        );
        let text = tab.then_load(
            "const f = document.querySelector('input[name=rule][value=Y2]').form;\
             f.querySelector('textarea').value = '罚款已缴清，问题已整改。';\
             f.requestSubmit()",
            "reply",
        );
        assert!(
            text.contains("等待市场监管部门审核") && text.contains("待审核"),
            "{text}"
        );
        tab
    })
    .await
    .unwrap();

    let (s, q) = app
        .admin(
            Method::GET,
            "/api/v1/admin/reviews?kind=reply&status=pending",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let id = q["reviews"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(decide(&app, &id, "accept", "已核实").await.0, 200);
    let scan = format!("/s/{}", app.token_of(Y).await);

    tokio::task::spawn_blocking(move || {
        let mut tab = tab;
        let text = tab.goto(&scan, "scan");
        assert!(text.contains("已签署质量承诺"), "{text}");
        assert!(
            text.contains("商户回复") && text.contains("罚款已缴清，问题已整改。"),
            "{text}"
        );
        let text = tab.goto("/shop", "decided");
        assert!(text.contains("已通过：已核实"), "{text}");
    })
    .await
    .unwrap();
}
