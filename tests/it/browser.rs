//! The consumer's and the shop's pages in a real browser (Debian's headless
//! `chromium`): the scan page for every code status at a phone's viewport,
//! checked on the text a person sees; and the print page printed to PDF,
//! rasterised (`pdftoppm`) and its QR decoded (`zbarimg`) back to the exact
//! code URL. Screenshots land in `$CARGO_TARGET_TMPDIR/browser/`.

#[path = "cdp.rs"]
pub(crate) mod cdp;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{flip_digit, spawn_app, TestApp};
use cdp::{require, Browser, CHROMIUM_FLAGS};

/// A phone (iPhone 12–14 class) in portrait.
pub(crate) const PHONE: (u32, u32) = (390, 844);
const MAX_PAGE_BYTES: u64 = 15 * 1024;

const GRADE_WORDS: [(&str, &str); 3] = [
    ("green", "绿码 良好"),
    ("yellow", "黄码 关注"),
    ("red", "红码 重点监管"),
];

fn grade_words(grade: &str) -> &'static str {
    GRADE_WORDS
        .iter()
        .find(|(g, _)| *g == grade)
        .unwrap_or_else(|| panic!("unknown grade {grade}"))
        .1
}

/// Where screenshots and rasterised pages are kept for people to look at.
pub(crate) fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// One scan to check: the token, and what the consumer must be told.
struct Case {
    name: &'static str,
    token: String,
    http: u16,
    /// Title and message of the warning shown for a code that is not valid.
    warning: Option<(&'static str, &'static str)>,
    /// The merchant shown (name, address) and its live grade.
    merchant: Option<(String, String, &'static str)>,
}

async fn merchant_of(app: &TestApp, id: &str) -> (String, String, &'static str) {
    let (status, body) = app.get(&format!("/api/v1/merchants/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let m = &body["merchant"];
    (
        m["name"].as_str().unwrap().to_owned(),
        m["address"].as_str().unwrap().to_owned(),
        grade_words(body["grade"].as_str().unwrap()),
    )
}

/// Signs and stores a code for `id` that expired on 2025-01-01, in the
/// embedded store (and with the keys) of `dir`.
pub(crate) async fn expired_token(dir: &Path, id: &str) -> String {
    let store = yisaozhi::store::StoreSpec::Embedded(dir.to_owned())
        .open()
        .await
        .unwrap();
    let keys = yisaozhi::keys::Keyring::load(&dir.join("keys")).unwrap();
    let (kid, key) = keys.active().unwrap();
    let serial = store.next_serial().await.unwrap();
    let issued = jiff::civil::date(2024, 1, 1);
    let expires = jiff::civil::date(2025, 1, 1);
    let claims = yisaozhi_codes::Claims {
        kid,
        merchant: id.into(),
        serial,
        issued: yisaozhi::clock::to_day(issued).unwrap(),
        expires: yisaozhi::clock::to_day(expires).unwrap(),
        grade: yisaozhi::model::Grade::Green,
    };
    let token = yisaozhi_codes::sign(&claims, key).unwrap();
    store
        .issue_code(
            yisaozhi::model::IssuedCode {
                serial,
                merchant: yisaozhi::model::MerchantId::parse(id).unwrap(),
                kid: kid.0,
                token: token.clone(),
                issued_at: issued,
                expires_at: expires,
                printed_grade: yisaozhi::model::Grade::Green,
                status: yisaozhi::model::CodeStatus::Active,
            },
            None,
        )
        .await
        .unwrap();
    token.to_string()
}

/// The tokens of every status of CONTRACT §2, with what each page must say.
async fn cases(app: &TestApp) -> Vec<Case> {
    let mut cases = Vec::new();
    for (id, grade) in [
        ("XZ-0001", "green"),
        ("XZ-0004", "yellow"),
        ("XZ-0005", "red"),
    ] {
        let merchant = merchant_of(app, id).await;
        assert_eq!(
            merchant.2,
            grade_words(grade),
            "demo data: {id} should be {grade}"
        );
        cases.push(Case {
            name: match grade {
                "green" => "valid-green",
                "yellow" => "valid-yellow",
                _ => "valid-red",
            },
            token: app.token_of(id).await,
            http: 200,
            warning: None,
            merchant: Some(merchant),
        });
    }
    let good = app.token_of("XZ-0001").await;
    cases.push(Case {
        name: "forged",
        token: flip_digit(&good, good.len() - 5),
        http: 400,
        warning: Some((
            "警告：伪造的码",
            "此码不是市场监管部门签发的，可能是伪造的。请勿相信码上信息，可拨打12315举报。",
        )),
        merchant: None,
    });
    cases.push(Case {
        name: "malformed",
        token: good[..good.len() - 17].to_owned(),
        http: 400,
        warning: Some((
            "无法识别的码",
            "无法识别此码：它不完整或已损坏。请重新扫描，或向店家核实。",
        )),
        merchant: None,
    });
    // Reissuing supersedes the old code; revoking the new one leaves none valid.
    let old = app.token_of("XZ-0003").await;
    let (status, issued) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants/XZ-0003/codes",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let serial = issued["serial"].as_u64().unwrap();
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/api/v1/admin/codes/{serial}/revoke"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    cases.push(Case {
        name: "revoked",
        token: issued["token"].as_str().unwrap().to_owned(),
        http: 410,
        warning: Some((
            "此码已注销",
            "此码已被市场监管部门注销，不能再作为信用凭证。请谨慎消费，可拨打12315咨询。",
        )),
        merchant: None,
    });
    cases.push(Case {
        name: "superseded",
        token: old,
        http: 410,
        warning: Some((
            "此码已被取代",
            "此码已被新码取代，店家应张贴最新的码。下面显示的是该商户当前的信用等级。",
        )),
        merchant: Some(merchant_of(app, "XZ-0003").await),
    });
    cases.push(Case {
        name: "expired",
        token: expired_token(app.dir.path(), "XZ-0008").await,
        http: 410,
        warning: Some((
            "此码已过期",
            "此码已过有效期，店家应更换新码。下面显示的是该商户当前的信用等级。",
        )),
        merchant: Some(merchant_of(app, "XZ-0008").await),
    });
    // The service caches merchant views; let the new codes show.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for case in &cases {
        let (status, body) = app.get(&format!("/api/v1/scan/{}", case.token)).await;
        assert_eq!(status, case.http, "{}: {body}", case.name);
    }
    cases
}

/// What the browser saw of one page.
pub(crate) struct Seen {
    pub(crate) text: String,
    pub(crate) http: u16,
    /// Every URL the tab requested, over the network or as a resource entry.
    pub(crate) requests: Vec<String>,
    /// Bytes over the wire for the page (headers and possibly compressed body).
    pub(crate) transferred: u64,
    /// The page's markup, in UTF-8 bytes, as the browser holds it.
    pub(crate) markup: u64,
    pub(crate) layout: Value,
}

const PROBE: &str = r#"(() => {
  const box = (sel) => { const e = document.querySelector(sel);
    if (!e) return null; const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
  return {
    text: document.body.innerText,
    resources: performance.getEntriesByType('resource').map((e) => e.name),
    markup: new TextEncoder().encode(document.documentElement.outerHTML).length,
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    name: box('h1'), address: box('.addr'),
    background: getComputedStyle(document.body).backgroundColor,
  };
})()"#;

pub(crate) fn visit(browser: &mut Browser, url: &str, shot: &Path) -> Seen {
    let (target, tab) = browser.new_phone_tab(PHONE);
    let s = Some(tab.as_str());
    browser.call(s, "Page.navigate", json!({"url": url}));
    browser.wait_event(&tab, "Page.loadEventFired");
    // Anything the page would fetch late (fonts, icons) shows up here.
    browser.settle(Duration::from_millis(300));
    let probe = browser.eval(&tab, PROBE);
    let metrics = browser.call(s, "Page.getLayoutMetrics", json!({}));
    let height = metrics["cssContentSize"]["height"]
        .as_f64()
        .unwrap_or(PHONE.1 as f64);
    let png = browser.call(
        s,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true,
               "clip": {"x": 0, "y": 0, "width": PHONE.0, "height": height, "scale": 1}}),
    );
    let png = data_encoding::BASE64
        .decode(png["data"].as_str().unwrap().as_bytes())
        .expect("screenshot base64");
    std::fs::write(shot, png).expect("write screenshot");

    let events = browser.take_events(&tab);
    browser.close_tab(&target);
    let mut requests: Vec<String> = events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .map(|e| e["params"]["request"]["url"].as_str().unwrap().to_owned())
        .collect();
    for resource in probe["resources"].as_array().unwrap() {
        let resource = resource.as_str().unwrap().to_owned();
        if !requests.contains(&resource) {
            requests.push(resource);
        }
    }
    let document = events
        .iter()
        .find(|e| e["method"] == "Network.responseReceived" && e["params"]["type"] == "Document")
        .unwrap_or_else(|| panic!("no response for {url}"));
    let request_id = &document["params"]["requestId"];
    let finished = events
        .iter()
        .find(|e| {
            e["method"] == "Network.loadingFinished" && e["params"]["requestId"] == *request_id
        })
        .unwrap_or_else(|| panic!("{url} never finished loading"));
    Seen {
        text: probe["text"].as_str().unwrap().to_owned(),
        http: document["params"]["response"]["status"].as_u64().unwrap() as u16,
        requests,
        transferred: finished["params"]["encodedDataLength"].as_f64().unwrap() as u64,
        markup: probe["markup"].as_u64().unwrap(),
        layout: probe,
    }
}

fn position(text: &str, needle: &str, case: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{case}: the page does not show {needle:?}; it shows:\n{text}"))
}

/// Checks one scan page; returns the extra requests the browser made for an
/// icon the page does not declare (`/favicon.ico`), reported at the end.
fn check_scan_page(case: &Case, url: &str, seen: &Seen) -> Vec<String> {
    let name = case.name;
    let text = &seen.text;
    assert_eq!(seen.http, case.http, "{name}: HTTP status");
    // The page's own style sheet applies under its content security policy.
    assert_eq!(
        seen.layout["background"], "rgb(244, 245, 247)",
        "{name}: the page is not styled (its style sheet blocked by the policy?)"
    );
    let (icons, others): (Vec<&String>, Vec<&String>) = seen
        .requests
        .iter()
        .filter(|r| *r != url)
        .partition(|r| r.ends_with("/favicon.ico"));
    assert!(
        seen.requests.iter().any(|r| r == url) && others.is_empty(),
        "{name}: the page must fetch nothing but itself; it fetched {:?}",
        seen.requests
    );
    assert!(
        seen.transferred <= MAX_PAGE_BYTES,
        "{name}: {} bytes over the wire (limit {MAX_PAGE_BYTES})",
        seen.transferred
    );
    assert_eq!(
        seen.layout["innerWidth"], PHONE.0,
        "{name}: not laid out at phone width"
    );
    assert!(
        seen.layout["scrollWidth"].as_u64().unwrap() <= u64::from(PHONE.0),
        "{name}: the page scrolls sideways on a phone: {}",
        seen.layout
    );
    position(text, "12315", name);

    let titles = ["伪造", "无法识别", "注销", "取代", "过期"];
    match case.warning {
        Some((title, message)) => {
            let at = position(text, title, name);
            position(text, message, name);
            if let Some((merchant, _, _)) = &case.merchant {
                assert!(
                    at < position(text, merchant, name),
                    "{name}: the warning must come before the merchant:\n{text}"
                );
            }
        }
        None => {
            for t in titles {
                assert!(
                    !text.contains(t),
                    "{name}: a valid code's page says {t:?}:\n{text}"
                );
            }
        }
    }

    match &case.merchant {
        Some((merchant, address, grade)) => {
            position(text, grade, name);
            let n = position(text, merchant, name);
            let a = position(text, address, name);
            let check = position(text, "请核对", name);
            let reasons = position(text, "评定理由", name);
            assert!(
                n < a && a < check && check < reasons,
                "{name}: name, address and the 请核对 line must come first, before the reasons:\n{text}"
            );
            // Visible on the first screen, without scrolling.
            for part in ["name", "address"] {
                let bottom = seen.layout[part]["bottom"].as_f64().unwrap();
                assert!(
                    bottom <= f64::from(PHONE.1),
                    "{name}: the merchant's {part} is below the first screen ({bottom}px)"
                );
            }
            for (_, other) in GRADE_WORDS.iter().filter(|(_, w)| w != grade) {
                // A superseded code's page may name the printed grade too.
                if case.warning.is_none() {
                    assert!(!text.contains(other), "{name}: also shows {other}:\n{text}");
                }
            }
        }
        None => {
            for (_, words) in GRADE_WORDS {
                assert!(
                    !text.contains(words),
                    "{name}: a code that vouches for no one shows {words}:\n{text}"
                );
            }
            assert!(
                !text.contains("请核对"),
                "{name}: no merchant to compare:\n{text}"
            );
        }
    }
    icons.into_iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_page_for_every_code_status_on_a_phone() {
    require("chromium", "chromium");
    let started = Instant::now();
    let app = spawn_app().await;
    let cases = cases(&app).await;
    let base = app.base.clone();
    let dir = shots_dir();
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        let mut icons = Vec::new();
        for case in &cases {
            let url = format!("{base}/s/{}", case.token);
            let seen = visit(
                &mut browser,
                &url,
                &dir.join(format!("scan-{}.png", case.name)),
            );
            eprintln!(
                "{}: HTTP {}, {} bytes over the wire, {} bytes of markup",
                case.name, seen.http, seen.transferred, seen.markup
            );
            icons.extend(check_scan_page(case, &url, &seen));
        }
        // A page without an icon makes the browser fetch /favicon.ico: one
        // more round trip on a slow network, answered with a 404.
        assert!(
            icons.is_empty(),
            "every scan page made the browser fetch {:?}: declare an inline icon in the \
             page head (e.g. `link rel=\"icon\" href=\"data:,\";` in `layout` in \
             src/web/pages.rs) so the page is the only request",
            icons.first()
        );
    })
    .await
    .unwrap();
    eprintln!("scan pages checked in {:?}", started.elapsed());
}

/// Runs a command to completion within `limit`, or fails the test.
fn run(cmd: &mut Command, limit: Duration) -> String {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Page sizes in millimetres, from `pdfinfo`.
fn page_sizes(pdf: &Path) -> Vec<(f64, f64)> {
    let info = run(
        Command::new("pdfinfo")
            .args(["-f", "1", "-l", "99"])
            .arg(pdf),
        Duration::from_secs(10),
    );
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .expect("pdfinfo Pages")
        .trim()
        .parse()
        .unwrap();
    let sizes: Vec<(f64, f64)> = info
        .lines()
        .filter(|l| l.starts_with("Page ") && l.contains(" size:"))
        .map(|l| {
            let dims: Vec<f64> = l
                .split("size:")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            let mm = |pt: f64| pt * 25.4 / 72.0;
            (mm(dims[0]), mm(dims[1]))
        })
        .collect();
    assert_eq!(sizes.len(), pages, "{info}");
    sizes
}

fn print_and_decode(base: &str, id: &str, code_url: &str, name: &str, grade: &str) {
    let chromium = require("chromium", "chromium");
    let work = tempfile::tempdir().unwrap();
    let pdf = work.path().join("print.pdf");
    run(
        Command::new(chromium)
            .args(CHROMIUM_FLAGS)
            .arg(format!(
                "--user-data-dir={}",
                work.path().join("profile").display()
            ))
            .arg("--no-pdf-header-footer")
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("{base}/merchants/{id}/print")),
        Duration::from_secs(40),
    );
    let sizes = page_sizes(&pdf);
    let want = [
        ("A6 sticker", (105.0, 148.0)),
        ("A5 poster", (148.0, 210.0)),
    ];
    assert_eq!(
        sizes.len(),
        2,
        "{id}: the print page must be one A6 page then one A5 page, got pages of {sizes:?} mm"
    );
    for (i, ((what, (w, h)), (gw, gh))) in want.iter().zip(&sizes).enumerate() {
        assert!(
            (gw - w).abs() <= 1.0 && (gh - h).abs() <= 1.0,
            "{id}: page {} should be the {what}, {w}×{h} mm, but is {gw:.1}×{gh:.1} mm",
            i + 1
        );
    }
    let prefix = work.path().join("page");
    run(
        Command::new("pdftoppm")
            .args(["-r", "200", "-png"])
            .arg(&pdf)
            .arg(&prefix),
        Duration::from_secs(30),
    );
    for (i, (what, _)) in want.iter().enumerate() {
        let page = i + 1;
        let png = work.path().join(format!("page-{page}.png"));
        std::fs::copy(&png, shots_dir().join(format!("print-{id}-{page}.png"))).unwrap();
        let decoded = run(
            Command::new("zbarimg").args(["--raw", "-q"]).arg(&png),
            Duration::from_secs(30),
        );
        assert_eq!(
            decoded.trim_end_matches('\n'),
            code_url,
            "{id}: the QR on the {what} (page {page}) must decode to exactly the code URL"
        );
        let text = run(
            Command::new("pdftotext")
                .args(["-f", &page.to_string(), "-l", &page.to_string()])
                .arg(&pdf)
                .arg("-"),
            Duration::from_secs(10),
        );
        for want in [name, grade, "12315"] {
            assert!(
                text.contains(want),
                "{id}: the {what} does not show {want:?}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_page_is_an_a6_sticker_and_an_a5_poster_whose_qr_decodes() {
    require("chromium", "chromium");
    require("pdftoppm", "poppler-utils");
    require("pdfinfo", "poppler-utils");
    require("zbarimg", "zbar-tools");
    let fonts = Command::new("fc-list")
        .arg(":lang=zh")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    assert!(
        !fonts.is_empty(),
        "no Chinese font: the printed sticker would show empty boxes; install Debian's `fonts-noto-cjk`"
    );
    let started = Instant::now();
    let app = spawn_app().await;
    let mut jobs = Vec::new();
    for id in ["XZ-0001", "XZ-0004", "XZ-0005"] {
        let (status, code) = app.get(&format!("/api/v1/merchants/{id}/code")).await;
        assert_eq!(status, 200, "{code}");
        let url = code["url"].as_str().unwrap().to_owned();
        let (name, _, grade) = merchant_of(&app, id).await;
        jobs.push((id, url, name, grade));
    }
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        for (id, url, name, grade) in jobs {
            print_and_decode(&base, id, &url, &name, grade);
        }
    })
    .await
    .unwrap();
    eprintln!("print pages checked in {:?}", started.elapsed());
}
