//! The workbench in a real browser (Debian's headless `chromium` over the
//! DevTools protocol): from the shop's code to the login page and back to
//! the merchant, log in and search by keyboard, reclassify with a reason
//! and see the scan JSON change, revoke a code, find both in the audit
//! log, a form without its CSRF token changing nothing, log out; and every
//! page at a phone's 390×844 and a desktop's 1366×768 without sideways
//! scrolling, console errors or a request to another host, every form field
//! labelled. Screenshots land in `$CARGO_TARGET_TMPDIR/workbench/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::browser::cdp::{require, Browser};
use crate::helpers::spawn_app;
use crate::workbench::{add_token, store_of};

pub(crate) const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1366, 768);
/// The tallest piece of a screenshot, in CSS pixels.
const SHOT_HEIGHT: f64 = 1200.0;

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workbench");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// One tab at one viewport, and what it has seen since the last check.
pub(crate) struct Tab {
    target: String,
    pub(crate) session: String,
    base: String,
    viewport: (u32, u32),
    /// Every URL requested, every console error, since the last `check`.
    requests: Vec<String>,
    pub(crate) errors: Vec<String>,
}

impl Tab {
    pub(crate) fn open(browser: &mut Browser, base: &str, viewport: (u32, u32)) -> Tab {
        let (target, session) = browser.new_tab();
        let s = Some(session.as_str());
        for domain in [
            "Page.enable",
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
        ] {
            browser.call(s, domain, json!({}));
        }
        browser.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": viewport.0, "height": viewport.1, "deviceScaleFactor": 1,
                   "mobile": viewport.0 < 600}),
        );
        browser.call(
            s,
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        );
        Tab {
            target,
            session,
            base: base.to_owned(),
            viewport,
            requests: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn eval(&self, browser: &mut Browser, expr: &str) -> Value {
        browser.eval(&self.session, expr)
    }

    /// Waits for the page that an action started loading, and collects
    /// what happened on the way.
    pub(crate) fn wait_load(&mut self, browser: &mut Browser) {
        browser.wait_event(&self.session, "Page.loadEventFired");
        browser.settle(Duration::from_millis(150));
        for e in browser.take_events(&self.session) {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Network.requestWillBeSent" => self
                    .requests
                    .push(p["request"]["url"].as_str().unwrap().to_owned()),
                "Runtime.exceptionThrown" => self.errors.push(p.to_string()),
                "Runtime.consoleAPICalled" if p["type"] == "error" => {
                    self.errors.push(p.to_string())
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    self.errors.push(p["entry"].to_string())
                }
                _ => {}
            }
        }
    }

    pub(crate) fn go(&mut self, browser: &mut Browser, path: &str) {
        let url = format!("{}{path}", self.base);
        browser.call(Some(&self.session), "Page.navigate", json!({"url": url}));
        self.wait_load(browser);
    }

    /// Runs `expr` (which starts a navigation) and waits for the new page.
    pub(crate) fn act(&mut self, browser: &mut Browser, expr: &str) {
        self.eval(browser, expr);
        self.wait_load(browser);
    }

    pub(crate) fn path(&self, browser: &mut Browser) -> String {
        self.eval(browser, "location.pathname + location.search")
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn text(&self, browser: &mut Browser) -> String {
        self.eval(browser, "document.body.innerText")
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn key(&self, browser: &mut Browser, key: &str, code: u32, text: Option<&str>) {
        let s = Some(self.session.as_str());
        let mut down =
            json!({"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code});
        if let Some(t) = text {
            down["text"] = json!(t);
        }
        browser.call(s, "Input.dispatchKeyEvent", down);
        browser.call(
            s,
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code}),
        );
    }

    pub(crate) fn type_text(&self, browser: &mut Browser, text: &str) {
        browser.call(
            Some(&self.session),
            "Input.insertText",
            json!({"text": text}),
        );
    }

    /// Presses Tab until the element `id` has the focus (at most 20 times).
    pub(crate) fn tab_to(&self, browser: &mut Browser, id: &str) {
        for _ in 0..20 {
            if self.eval(
                browser,
                "document.activeElement && document.activeElement.id",
            ) == id
            {
                return;
            }
            self.key(browser, "Tab", 9, None);
        }
        panic!("#{id} is not reachable by the Tab key");
    }

    /// The page as people see it: no sideways scrolling, no console error,
    /// nothing fetched from another host, every form field labelled; and a
    /// screenshot to look at.
    pub(crate) fn check(&mut self, browser: &mut Browser, name: &str) {
        let probe = self.eval(
            browser,
            r#"(() => ({
                inner: window.innerWidth,
                scroll: document.documentElement.scrollWidth,
                unlabelled: Array.from(document.querySelectorAll('input,select,textarea'))
                    .filter(e => e.type !== 'hidden')
                    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                    .map(e => e.outerHTML),
                resources: performance.getEntriesByType('resource').map(e => e.name),
                styled: getComputedStyle(document.body).backgroundColor,
            }))()"#,
        );
        let (w, h) = self.viewport;
        assert_eq!(probe["inner"], w, "{name}: laid out at {w} px");
        assert!(
            probe["scroll"].as_u64().unwrap() <= u64::from(w),
            "{name} at {w}×{h}: scrolls sideways: {probe}"
        );
        assert_eq!(
            probe["styled"], "rgb(244, 245, 247)",
            "{name}: the style sheet did not apply (blocked by the policy?)"
        );
        assert_eq!(
            probe["unlabelled"],
            json!([]),
            "{name}: fields without a label"
        );
        let mut requests = std::mem::take(&mut self.requests);
        requests.extend(
            probe["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned()),
        );
        let away: Vec<&String> = requests
            .iter()
            .filter(|r| !r.starts_with(&self.base) && !r.starts_with("data:"))
            .collect();
        assert!(
            away.is_empty(),
            "{name}: requests that leave the host: {away:?}"
        );
        let errors = std::mem::take(&mut self.errors);
        assert!(
            errors.is_empty(),
            "{name} at {w}×{h}: console errors: {errors:#?}"
        );
        self.screenshot(browser, &format!("{name}-{w}x{h}"));
    }

    /// The whole page, in pieces of at most [`SHOT_HEIGHT`] pixels
    /// (`NAME.png`, then `NAME-2.png`, ...) so each is readable at once.
    pub(crate) fn screenshot(&self, browser: &mut Browser, name: &str) {
        let s = Some(self.session.as_str());
        let metrics = browser.call(s, "Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(f64::from(self.viewport.1));
        let mut top = 0.0;
        let mut piece = 1;
        while top < height {
            let h = (height - top).min(SHOT_HEIGHT);
            let png = browser.call(
                s,
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": top, "width": self.viewport.0, "height": h, "scale": 1}}),
            );
            let png = data_encoding::BASE64
                .decode(png["data"].as_str().unwrap().as_bytes())
                .unwrap();
            let file = match piece {
                1 => format!("{name}.png"),
                n => format!("{name}-{n}.png"),
            };
            std::fs::write(shots_dir().join(file), png).unwrap();
            top += h;
            piece += 1;
        }
    }

    pub(crate) fn close(self, browser: &mut Browser) {
        browser.close_tab(&self.target);
    }
}

/// Every page, for the layout checks at each viewport.
const PAGES: [(&str, &str); 11] = [
    ("dashboard", "/admin"),
    ("search", "/admin/merchants"),
    ("search-results", "/admin/merchants?grade=red"),
    ("merchant", "/admin/merchants/XZ-0005"),
    ("merchant-override", "/admin/merchants/XZ-0001"),
    ("audit", "/admin/audit"),
    ("import", "/admin/import"),
    ("reviews", "/admin/reviews"),
    ("patrols", "/admin/patrols"),
    ("plans", "/admin/plans"),
    ("tips", "/admin/tips"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_work_through_the_workbench_in_a_real_browser() {
    require("chromium", "chromium");
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let token = add_token(&store, "叙州区市场监管局", "write:511504").await;
    let scan_token = app.token_of("XZ-0001").await;
    let base = app.base.clone();
    let client = app.client.clone();
    let scan_url = format!("{base}/api/v1/scan/{scan_token}");
    let scan_grade = move || {
        let (client, url) = (client.clone(), scan_url.clone());
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v["grade"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(scan_grade().await, "green");
    let (client, tips_base) = (app.client.clone(), app.base.clone());
    // A merchant's tips as its public answer (spliced like the scan's).
    let public_tips = move |id: &'static str| {
        let (client, base) = (client.clone(), tips_base.clone());
        async move {
            let url = format!("{base}/api/v1/merchants/{id}");
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v["tips"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|t| t["text"].as_str().unwrap().to_owned())
                .collect::<Vec<String>>()
        }
    };
    let handle = tokio::runtime::Handle::current();

    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let b = &mut browser;
        let mut tab = Tab::open(b, &base, PHONE);

        // From the shop's door without a session: the login page...
        tab.go(b, &format!("/s/{scan_token}"));
        tab.check(b, "scan-page");
        tab.act(b, "document.querySelector('a[href=\"/admin/merchants/XZ-0001\"]').click()");
        assert_eq!(tab.path(b), "/admin/login");
        tab.check(b, "login");
        // ...logged in by keyboard: type the token, press Enter...
        tab.tab_to(b, "token");
        tab.type_text(b, &token);
        tab.key(b, "Enter", 13, Some("\r"));
        tab.wait_load(b);
        // ...and back at the merchant.
        assert_eq!(tab.path(b), "/admin/merchants/XZ-0001");
        assert!(tab.text(b).contains("改判"));

        // Search by keyboard.
        tab.go(b, "/admin/merchants");
        tab.tab_to(b, "q");
        tab.type_text(b, "XZ-0001");
        tab.key(b, "Enter", 13, Some("\r"));
        tab.wait_load(b);
        assert_eq!(tab.path(b), "/admin/merchants?q=XZ-0001&grade=&region=&category=&kind=");
        assert!(tab.text(b).contains("结果：1 户"), "{}", tab.text(b));
        tab.check(b, "search-by-keyboard");

        // Open the merchant, reclassify with a reason.
        tab.act(b, "document.querySelector('ul.rows a[href=\"/admin/merchants/XZ-0001\"]').click()");
        assert_eq!(tab.path(b), "/admin/merchants/XZ-0001");
        tab.act(
            b,
            r#"(() => {
                document.getElementById('ov-grade').value = 'red';
                document.getElementById('ov-reason').value = '群众举报销售过期食品，正在调查';
                document.querySelector('form[action="/admin/merchants/XZ-0001/override"] button').click();
            })()"#,
        );
        assert_eq!(tab.path(b), "/admin/merchants/XZ-0001?done=override");
        let text = tab.text(b);
        assert!(text.contains("已改判") && text.contains("群众举报销售过期食品"), "{text}");
        tab.check(b, "reclassified");
        assert_eq!(handle.block_on(scan_grade()), "red", "the scan JSON changed");
        // The scan JSON in the browser too.
        tab.go(b, &format!("/api/v1/scan/{scan_token}"));
        let shown = tab.eval(b, "(document.querySelector('pre') || document.body).textContent");
        let scan: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
        assert_eq!(scan["grade"], "red");
        assert_eq!(scan["override"]["reason"], "群众举报销售过期食品，正在调查");

        // A form posted without its CSRF token changes nothing.
        tab.go(b, "/admin/merchants/XZ-0001");
        tab.act(
            b,
            r#"(() => {
                const form = document.querySelector('form[action="/admin/merchants/XZ-0001/override/clear"]');
                form.querySelector('input[name=csrf]').remove();
                form.querySelector('button').click();
            })()"#,
        );
        assert!(tab.text(b).contains("csrf"), "{}", tab.text(b));
        tab.errors.clear(); // the 403 itself is logged as a failed load
        tab.screenshot(b, "csrf-refused");
        assert_eq!(handle.block_on(scan_grade()), "red", "still reclassified");

        // Revoke the active code.
        tab.go(b, "/admin/merchants/XZ-0001");
        tab.act(
            b,
            r#"(() => {
                const form = document.querySelector('form[action$="/revoke"]');
                form.querySelector('input[type=checkbox]').click();
                form.querySelector('button').click();
            })()"#,
        );
        assert_eq!(tab.path(b), "/admin/merchants/XZ-0001?done=revoked");
        assert!(tab.text(b).contains("已注销"));
        tab.check(b, "revoked");

        // Both in the audit log.
        tab.go(b, "/admin/audit?target=XZ-0001");
        let text = tab.text(b);
        assert!(text.contains("改判") && text.contains("注销码"), "{text}");
        assert!(text.contains("叙州区市场监管局"), "{text}");
        tab.check(b, "audit-trail");

        // Import a records file by upload: one line taken, one rejected.
        let upload = tempfile::tempdir().unwrap();
        let file = upload.path().join("records.jsonl");
        let today = yisaozhi::clock::today();
        std::fs::write(
            &file,
            format!(
                "{}\n{}\n",
                json!({"id": "B-1", "merchant": "XZ-0002", "kind": "complaint", "date": today, "substantiated": true}),
                json!({"id": "B-2", "merchant": "XZ-0002", "kind": "complaint", "date": "2026-02-30", "substantiated": true}),
            ),
        )
        .unwrap();
        tab.go(b, "/admin/import");
        let s = Some(tab.session.as_str());
        let root = b.call(s, "DOM.getDocument", json!({}))["root"]["nodeId"].clone();
        let input = b.call(s, "DOM.querySelector", json!({"nodeId": root, "selector": "#file"}))["nodeId"].clone();
        b.call(
            s,
            "DOM.setFileInputFiles",
            json!({"nodeId": input, "files": [file.display().to_string()]}),
        );
        tab.act(b, "document.querySelector('form[action=\"/admin/import\"] button').click()");
        let text = tab.text(b);
        assert!(text.contains("导入完成") && text.contains("第 2 行"), "{text}");
        assert!(text.contains("2026-02-30"), "the reason names the bad date: {text}");
        tab.check(b, "imported");

        // Publish a consumer tip through the form: the grocery's scan shows it.
        let tip = "中秋将至，购买月饼请查看生产日期和保质期。";
        let until = (today + jiff::Span::new().days(30)).to_string();
        tab.go(b, "/admin/tips");
        tab.act(
            b,
            &format!(
                r#"(() => {{
                    document.getElementById('tip-text').value = '{tip}';
                    document.getElementById('tip-categories').value = '食品';
                    document.getElementById('tip-until').value = '{until}';
                    document.querySelector('form[action="/admin/tips"] button').click();
                }})()"#
            ),
        );
        assert_eq!(tab.path(b), "/admin/tips?done=published");
        assert!(tab.text(b).contains(tip), "{}", tab.text(b));
        tab.check(b, "tip-published");
        assert_eq!(handle.block_on(public_tips("XZ-0002")), vec![tip.to_owned()]);
        assert!(handle.block_on(public_tips("XZ-0001")).is_empty(), "a restaurant");

        // Every page at a phone's size, then at a desktop's.
        for (name, path) in PAGES {
            tab.go(b, path);
            tab.check(b, name);
        }
        tab.close(b);
        let mut desk = Tab::open(b, &base, DESKTOP);
        desk.go(b, "/admin/login");
        desk.check(b, "login");
        for (name, path) in PAGES {
            desk.go(b, path);
            desk.check(b, name);
        }

        // Withdraw the tip: gone from the scan.
        desk.go(b, "/admin/tips");
        desk.act(b, "document.querySelector('form[action$=\"/withdraw\"] button').click()");
        assert_eq!(desk.path(b), "/admin/tips?done=withdrawn");
        desk.check(b, "tip-withdrawn");
        assert!(handle.block_on(public_tips("XZ-0002")).is_empty());

        // Log out: the session is gone.
        desk.go(b, "/admin");
        desk.act(b, "document.querySelector('form[action=\"/admin/logout\"] button').click()");
        assert_eq!(desk.path(b), "/admin/login");
        desk.go(b, "/admin/merchants");
        assert_eq!(desk.path(b), "/admin/login", "no session after logging out");
        desk.check(b, "logged-out");
        desk.close(b);
    })
    .await
    .unwrap();
    eprintln!("screenshots in {}", shots_dir().display());
}
