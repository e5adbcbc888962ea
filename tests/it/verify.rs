//! The offline verifier (`/verify`, CONTRACT §8) in headless Chromium:
//! after one visit, with the network emulated offline and the service
//! stopped, it still tells valid, forged, malformed, revoked, superseded
//! and expired codes apart, also for a scan address opened offline; and
//! its checks agree with the `codes` crate on every test vector.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::cdp::{Browser, CHROMIUM_FLAGS};
use crate::browser::expired_token;
use crate::feed::start_service;
use crate::helpers::{flip_digit, spawn_app};

/// A phone (iPhone 12–14 class) in portrait.
const PHONE: (u32, u32) = (390, 844);

/// Evaluates `expression` in the tab, awaiting a promise, as JSON.
fn eval(browser: &mut Browser, tab: &str, expression: &str) -> Value {
    let res = browser.call(
        Some(tab),
        "Runtime.evaluate",
        json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
    );
    if let Some(ex) = res.get("exceptionDetails") {
        panic!("evaluating {expression} threw: {ex}");
    }
    res["result"]["value"].clone()
}

/// Waits until `expression` is true in the tab.
fn wait_for(browser: &mut Browser, tab: &str, expression: &str) {
    let started = Instant::now();
    while eval(browser, tab, expression) != json!(true) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never true: {expression}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens `url` in a new phone-sized tab, with the network emulated
/// offline if `offline`, and waits for the verifier to be ready.
fn open(browser: &mut Browser, url: &str, offline: bool) -> (String, String) {
    let (target, tab) = browser.new_phone_tab(PHONE);
    let s = Some(tab.as_str());
    if offline {
        browser.call(
            s,
            "Network.emulateNetworkConditions",
            json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        );
    }
    browser.call(s, "Page.navigate", json!({"url": url}));
    browser.wait_event(&tab, "Page.loadEventFired");
    wait_for(
        browser,
        &tab,
        "document.body !== null && document.body.dataset.ready === '1'",
    );
    (target, tab)
}

/// Types `code` into the page's form, submits it and returns the status
/// shown and the text of the result.
fn check_in_page(browser: &mut Browser, tab: &str, code: &str) -> (String, String) {
    let script = format!(
        "(async () => {{
           const r = document.getElementById('result');
           delete r.dataset.status;
           document.getElementById('code').value = {code};
           document.getElementById('form').requestSubmit();
           for (let i = 0; i < 400 && !r.dataset.status; i++) await new Promise((ok) => setTimeout(ok, 25));
           return [r.dataset.status || '', r.innerText];
         }})()",
        code = json!(code)
    );
    let v = eval(browser, tab, &script);
    (
        v[0].as_str().unwrap().to_owned(),
        v[1].as_str().unwrap().to_owned(),
    )
}

fn screenshot(browser: &mut Browser, tab: &str, name: &str) {
    let png = browser.call(
        Some(tab),
        "Page.captureScreenshot",
        json!({"format": "png"}),
    );
    let png = data_encoding::BASE64
        .decode(png["data"].as_str().unwrap().as_bytes())
        .unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_one_visit_the_verifier_tells_codes_apart_with_no_network() {
    // The service as its own process, so that it can be stopped.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prepared = yisaozhi::demo::prepare(&data, 365).await.unwrap();
    let service = start_service(
        &format!("embedded:{}", data.display()),
        &data.join("keys"),
        &dir.path().join("service.log"),
    )
    .await;
    let base = service.base.clone();
    let client = reqwest::Client::new();
    let token_of = |id: &str| {
        let (client, url) = (client.clone(), format!("{base}/api/v1/merchants/{id}/code"));
        async move {
            let code: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            code["token"].as_str().unwrap().to_owned()
        }
    };
    let valid = token_of("XZ-0001").await;
    let superseded = token_of("XZ-0003").await;
    let post = |path: String| {
        let client = client.clone();
        let token = prepared.token.clone();
        async move {
            let res = client.post(path).bearer_auth(token).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            res.json::<Value>().await.unwrap()
        }
    };
    let issued = post(format!("{base}/api/v1/admin/merchants/XZ-0003/codes")).await;
    let revoked = issued["token"].as_str().unwrap().to_owned();
    post(format!(
        "{base}/api/v1/admin/codes/{}/revoke",
        issued["serial"]
    ))
    .await;
    let expired = expired_token(&data, "XZ-0008").await;
    let cases = [
        ("valid", valid.clone(), Some("绿码 良好")),
        ("forged", flip_digit(&valid, valid.len() - 5), None),
        ("malformed", valid[..valid.len() - 17].to_owned(), None),
        ("revoked", revoked, Some("商户编号XZ-0003")),
        ("superseded", superseded, Some("商户编号XZ-0003")),
        ("expired", expired, Some("有效期至2025-01-01")),
    ];

    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let (target, tab) = open(&mut browser, &format!("{base}/verify"), false);
        // The worker keeps the page, its files, the keys and the status list.
        wait_for(
            &mut browser,
            &tab,
            "navigator.serviceWorker.ready.then(() => caches.open('ysz-verify-v1'))
               .then((c) => c.keys()).then((k) => k.length === 5)",
        );
        wait_for(
            &mut browser,
            &tab,
            "navigator.serviceWorker.controller !== null",
        );
        let synced = eval(
            &mut browser,
            &tab,
            "document.getElementById('synced').textContent",
        );
        assert!(
            synced.as_str().unwrap().starts_with("数据同步于"),
            "{synced}"
        );
        browser.close_tab(&target);

        // No network: emulated offline, and the service gone.
        drop(service);
        let (target, tab) = open(&mut browser, &format!("{base}/verify"), true);
        let offline = eval(
            &mut browser,
            &tab,
            "fetch('/api/v1/merchants/XZ-0001').then(() => 'reached', () => 'offline')",
        );
        assert_eq!(offline, "offline", "the network really is gone");
        let synced = eval(
            &mut browser,
            &tab,
            "document.getElementById('synced').textContent",
        );
        assert!(
            synced.as_str().unwrap().starts_with("数据同步于"),
            "the kept data, and when it was synced: {synced}"
        );
        for (want, code, shown) in &cases {
            for text in [code.clone(), format!("{base}/S/{code}")] {
                let (status, page) = check_in_page(&mut browser, &tab, &text);
                assert_eq!(&status, want, "{text}: {page}");
                if let Some(shown) = shown {
                    let flat = |s: &str| s.split_whitespace().collect::<String>();
                    assert!(flat(&page).contains(&flat(shown)), "{want}: {page}");
                }
            }
            screenshot(&mut browser, &tab, &format!("verify-offline-{want}.png"));
        }
        browser.close_tab(&target);

        // A scan address opened with no network gets the verifier.
        let (_, valid_code, _) = &cases[0];
        let (target, tab) = open(&mut browser, &format!("{base}/S/{valid_code}"), true);
        let status = eval(
            &mut browser,
            &tab,
            "document.getElementById('result').dataset.status",
        );
        assert_eq!(status, "valid");
        browser.close_tab(&target);
        drop(browser);
    })
    .await
    .unwrap();
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {v}"))
}

fn unhex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

/// The `codes` crate's verdict on a code vector, for its token and its URL.
fn crate_verdicts(v: &Value) -> [String; 2] {
    use yisaozhi_codes::{verify, Day, KeyId, PublicKey};
    let kid = KeyId(v["key_id"].as_u64().unwrap() as u16);
    let pk: [u8; 32] = unhex(field(v, "public_key_hex")).try_into().unwrap();
    let pk = PublicKey::from_bytes(&pk).unwrap();
    let at: jiff::civil::Date = field(v, "verify_at").parse().unwrap();
    let today = Day::from_ymd(at.year() as i32, at.month() as u8, at.day() as u8).unwrap();
    ["token", "url"].map(|f| {
        verify(field(v, f), |k| (k == kid).then_some(pk), today)
            .name()
            .to_owned()
    })
}

/// The `codes` crate's outcome on a status list vector.
fn crate_status_outcome(v: &Value) -> &'static str {
    use yisaozhi_codes::{verify_status_list, KeyId, PublicKey, StatusListError};
    let kid = KeyId(v["key_id"].as_u64().unwrap() as u16);
    let pk: [u8; 32] = unhex(field(v, "public_key_hex")).try_into().unwrap();
    let pk = PublicKey::from_bytes(&pk).unwrap();
    let sig: [u8; 64] = unhex(field(v, "signature_hex")).try_into().unwrap();
    match verify_status_list(&unhex(field(v, "payload_hex")), &sig, |k| {
        (k == kid).then_some(pk)
    }) {
        Ok(_) => "valid",
        Err(StatusListError::Malformed(_)) => "malformed",
        Err(StatusListError::UnknownKey(_) | StatusListError::BadSignature(_)) => "forged",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browsers_verifier_and_the_codes_crate_agree_on_every_test_vector() {
    let app = spawn_app().await;
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("codes/testdata");
    let read = |name: &str| -> Vec<Value> {
        serde_json::from_slice(&std::fs::read(testdata.join(name)).unwrap()).unwrap()
    };
    let codes = read("vectors.json");
    let lists = read("status_vectors.json");
    assert!(codes.len() >= 12 && lists.len() >= 9);
    let base = app.base.clone();
    assert!(CHROMIUM_FLAGS.contains(&"--headless"));
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let (_, tab) = open(&mut browser, &format!("{base}/verify"), false);
        let webcrypto = eval(
            &mut browser,
            &tab,
            "crypto.subtle.importKey('raw', new Uint8Array(32).fill(9), {name: 'Ed25519'}, false, ['verify'])
               .then(() => 'Ed25519', (e) => String(e))",
        );
        assert_eq!(webcrypto, "Ed25519", "this Chromium verifies Ed25519 in WebCrypto");
        for v in &codes {
            let name = field(v, "name");
            let b64 = data_encoding::BASE64URL_NOPAD.encode(&unhex(field(v, "public_key_hex")));
            let keys = json!({"keys": [{"kid": v["key_id"], "alg": "Ed25519", "public_key": b64}]});
            let at: jiff::civil::Date = field(v, "verify_at").parse().unwrap();
            let day = at.since(jiff::civil::date(1970, 1, 1)).unwrap().get_days();
            for (i, text) in [field(v, "token"), field(v, "url")].into_iter().enumerate() {
                let browser_says = eval(
                    &mut browser,
                    &tab,
                    &format!(
                        "yszVerify.verifyCode({}, {keys}, null, {day}).then((r) => r.status)",
                        json!(text)
                    ),
                );
                let crate_says = &crate_verdicts(v)[i];
                assert_eq!(browser_says, json!(crate_says), "{name} ({text})");
                assert_eq!(crate_says, field(v, "expected"), "{name}");
            }
        }
        for v in &lists {
            let name = field(v, "name");
            let b64 = data_encoding::BASE64URL_NOPAD.encode(&unhex(field(v, "public_key_hex")));
            let keys = json!({"keys": [{"kid": v["key_id"], "alg": "Ed25519", "public_key": b64}]});
            let browser_says = eval(
                &mut browser,
                &tab,
                &format!(
                    "yszVerify.verifyStatusPayload(yszVerify.fromHex({}), yszVerify.fromHex({}),
                       yszVerify.keyMap({keys})).then((r) => r)",
                    json!(field(v, "payload_hex")),
                    json!(field(v, "signature_hex")),
                ),
            );
            let crate_says = crate_status_outcome(v);
            assert_eq!(browser_says["status"], crate_says, "{name}: {browser_says}");
            assert_eq!(crate_says, field(v, "expected"), "{name}");
            if crate_says == "valid" {
                assert_eq!(browser_says["revoked"], v["revoked"], "{name}");
                assert_eq!(browser_says["superseded"], v["superseded"], "{name}");
                assert_eq!(browser_says["issuedAt"], v["issued_at"], "{name}");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn only_the_verifier_may_run_script_and_only_its_own_files() {
    let app = spawn_app().await;
    let csp = |res: &reqwest::Response| {
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    for path in [
        "/verify",
        "/verify/app.js",
        "/verify/sw.js",
        "/verify/style.css",
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let policy = csp(&res);
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        if path == "/verify/sw.js" {
            assert_eq!(res.headers()["service-worker-allowed"], "/");
        }
        if path == "/verify" {
            let page = res.text().await.unwrap();
            let scripts: Vec<&str> = page.split("<script").skip(1).collect();
            assert_eq!(scripts.len(), 1, "{page}");
            assert!(
                scripts[0].starts_with(r#" src="/verify/app.js""#),
                "no inline script: {page}"
            );
        }
    }
    for path in ["/", "/api/v1/keys", "/open-data/index.json"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let policy = csp(&res);
        assert!(!policy.contains("script-src"), "{path}: {policy}");
    }
}
