//! The workbench over HTTP: sessions (login, logout, idle expiry, revoked
//! tokens, every replica), the form token against cross-site requests, the
//! security headers, and the way from the scan page to a merchant's page.
//! Pages, actions and scope: `workbench_pages`; a real browser:
//! `workbench_browser`.

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use yisaozhi::auth::{new_token, Scope};
use yisaozhi::store::{SharedStore, StoreSpec};

use crate::helpers::{spawn_app, TestApp};

/// A client that does not follow redirects (the tests look at each 303)
/// and keeps no cookies of its own (the tests send them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// What one answer was.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn of(res: reqwest::Response) -> Answer {
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap())
    }

    /// Every `Set-Cookie` of the answer.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value `Set-Cookie` gives cookie `name`, with its attributes.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

/// A logged-in member of staff: the session cookie and the form token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub async fn request(
    base: &str,
    method: Method,
    path: &str,
    cookies: &[String],
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let mut req = client().request(method, format!("{base}{path}"));
    if !cookies.is_empty() {
        req = req.header("cookie", cookies.join("; "));
    }
    if let Some(form) = form {
        req = req.form(form);
    }
    Answer::of(req.send().await.expect("request")).await
}

impl Session {
    pub fn cookies(&self) -> Vec<String> {
        vec![format!("ysz_session={}", self.cookie)]
    }

    pub async fn get(&self, base: &str, path: &str) -> Answer {
        request(base, Method::GET, path, &self.cookies(), None).await
    }

    /// Posts a form with this session's `csrf` added.
    pub async fn post(&self, base: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = fields.to_vec();
        all.push(("csrf", &self.csrf));
        request(base, Method::POST, path, &self.cookies(), Some(&all)).await
    }
}

/// The value of the first `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in:\n{page}"))
        + "name=\"csrf\" value=\"".len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

/// Logs in with `token`; the session it opened.
pub async fn login(base: &str, token: &str) -> Session {
    let res = request(
        base,
        Method::POST,
        "/admin/login",
        &[],
        Some(&[("token", token)]),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin"));
    let set = res.cookie("ysz_session").expect("a session cookie");
    let value = set["ysz_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = request(
        base,
        Method::GET,
        "/admin",
        &[format!("ysz_session={value}")],
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    Session {
        csrf: csrf_of(&page.body),
        cookie: value,
    }
}

/// The store of a test app (the same directory the server uses).
pub async fn store_of(app: &TestApp) -> SharedStore {
    StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap()
}

/// Stores a new token; its plaintext.
pub async fn add_token(store: &SharedStore, name: &str, scope: &str) -> String {
    let (plain, stored) =
        new_token(name, &Scope::parse(scope).unwrap(), jiff::Timestamp::now()).unwrap();
    store.put_token(stored).await.unwrap();
    plain
}

/// Starts a service with `overrides` on a free port; its base URL.
pub async fn serve_with(overrides: yisaozhi::settings::Overrides) -> String {
    let settings = yisaozhi::settings::Settings::load(yisaozhi::settings::Overrides {
        listen: Some("127.0.0.1:0".into()),
        ..overrides
    })
    .unwrap();
    let server = yisaozhi::startup::Application::build(settings)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    base
}

/// Starts a service on `store` (e.g. a Redis URL) with the signing keys
/// of `keys`; its base URL.
pub async fn serve_store(store: &str, keys: &std::path::Path) -> String {
    serve_with(yisaozhi::settings::Overrides {
        store: Some(store.to_owned()),
        key_dir: Some(keys.to_owned()),
        ..Default::default()
    })
    .await
}

/// Every page of the workbench (GET), with a merchant for `{id}`.
pub fn pages() -> Vec<String> {
    let pages: Vec<String> = yisaozhi::web::ROUTES
        .iter()
        .filter(|r| r.tag == "workbench" && r.method == "get" && r.path != "/admin/login")
        .map(|r| r.path.replace("{id}", "XZ-0001"))
        .collect();
    assert!(pages.len() >= 8, "{pages:?}");
    pages
}

#[tokio::test]
async fn every_workbench_page_without_a_session_answers_303_to_the_login_page() {
    let app = spawn_app().await;
    let stale = "ysz_session=".to_owned() + &"0".repeat(64);
    for page in pages() {
        for cookies in [vec![], vec![stale.clone()], vec!["ysz_session=junk".into()]] {
            let res = request(&app.base, Method::GET, &page, &cookies, None).await;
            assert_eq!(res.status, 303, "{page} {cookies:?}");
            assert_eq!(res.location(), Some("/admin/login"), "{page}");
        }
    }
    // Forms too, before anything is read or changed.
    let before = app.scan("XZ-0001").await;
    for path in [
        "/admin/merchants/XZ-0001/override",
        "/admin/merchants/XZ-0001/codes",
        "/admin/logout",
    ] {
        let res = request(
            &app.base,
            Method::POST,
            path,
            &[],
            Some(&[("grade", "red"), ("reason", "x")]),
        )
        .await;
        assert_eq!(res.status, 303, "{path}");
        assert_eq!(res.location(), Some("/admin/login"));
    }
    assert_eq!(app.scan("XZ-0001").await, before);
    let login = request(&app.base, Method::GET, "/admin/login", &[], None).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("name=\"token\""), "{}", login.body);
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_cookie_and_stores_only_its_hash() {
    let app = spawn_app().await;
    let res = request(
        &app.base,
        Method::POST,
        "/admin/login",
        &[],
        Some(&[("token", &app.token)]),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin"));
    let cookie = res.cookie("ysz_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let secret = cookie["ysz_session=".len()..].split(';').next().unwrap();
    assert_eq!(secret.len(), 64, "{cookie}");
    // The store holds the session, not the secret (nor the form token).
    let store = store_of(&app).await;
    let sessions = store.documents(SESSIONS, None, 100).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let (key, json) = &sessions[0];
    let page = request(
        &app.base,
        Method::GET,
        "/admin",
        &[format!("ysz_session={secret}")],
        None,
    )
    .await;
    let csrf = csrf_of(&page.body);
    for stored in [key, json] {
        assert!(
            !stored.contains(secret) && !stored.contains(&csrf),
            "{stored}"
        );
    }
    let session: Value = serde_json::from_str(json).unwrap();
    assert_eq!(session["name"], "demo-admin");
    assert_eq!(session["scope"], "write");
    // The login is audited under the token's name.
    let (status, audit) = app
        .admin(
            Method::GET,
            "/api/v1/admin/audit?actor=demo-admin",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "session.login"),
        "{audit}"
    );
}

const SESSIONS: yisaozhi::store::documents::Collection =
    yisaozhi::store::documents::Collection::new("staff_sessions");

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_base_url_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let base = serve_with(yisaozhi::settings::Overrides {
        store: Some(format!("embedded:{}", dir.path().display())),
        public_base_url: Some("https://ysz.example.gov.cn".into()),
        ..Default::default()
    })
    .await;
    let res = request(
        &base,
        Method::POST,
        "/admin/login",
        &[],
        Some(&[("token", &prepared.token)]),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let cookie = res.cookie("ysz_session").unwrap();
    assert!(
        cookie.ends_with("; Secure") || cookie.contains("; Secure;"),
        "{cookie}"
    );
}

#[tokio::test]
async fn workbench_pages_send_the_security_headers_and_are_not_cached() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    let mut answers = vec![(
        "/admin/login".to_owned(),
        request(&app.base, Method::GET, "/admin/login", &[], None).await,
    )];
    for page in pages() {
        answers.push((page.clone(), staff.get(&app.base, &page).await));
    }
    for (page, res) in answers {
        assert_eq!(res.status, 200, "{}", res.body);
        let h = |name: &str| {
            res.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let csp = h("content-security-policy");
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(
            !csp.contains("unsafe") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-store");
        // The ledger is the one workbench download: a spreadsheet, not a page.
        let wanted = if page.ends_with(".csv") {
            "text/csv"
        } else {
            "text/html"
        };
        assert!(h("content-type").starts_with(wanted), "{page}");
        assert!(!res.body.contains("<script"), "no script");
        assert!(
            !res.body.contains("http://") && !res.body.contains("https://"),
            "no external asset:\n{}",
            res.body
        );
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_failures_are_limited_as_the_api_limits_them() {
    let app = spawn_app().await;
    let last = if app.token.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &app.token[..app.token.len() - 1]);
    let limit = yisaozhi::web::MAX_AUTH_FAILURES_PER_MINUTE as usize;
    for i in 0..limit {
        let token = if i % 2 == 0 {
            wrong.as_str()
        } else {
            "nonsense"
        };
        let res = request(
            &app.base,
            Method::POST,
            "/admin/login",
            &[],
            Some(&[("token", token)]),
        )
        .await;
        assert_eq!(res.status, 401, "attempt {i}");
        assert!(res.cookie("ysz_session").is_none());
        assert!(res.body.contains("令牌无效"), "{}", res.body);
    }
    let res = request(
        &app.base,
        Method::POST,
        "/admin/login",
        &[],
        Some(&[("token", &wrong)]),
    )
    .await;
    assert_eq!(res.status, 429, "past the limit");
    assert!(res.body.contains("一分钟"), "{}", res.body);
    // The API counts the same failures: its next failure is 429 too.
    let (status, _) = app
        .admin(Method::GET, "/api/v1/admin/stats", Some(&wrong), None)
        .await;
    assert_eq!(status, 429);
    // A valid token is never refused for others' failures.
    login(&app.base, &app.token).await;
}

#[tokio::test]
async fn a_login_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let res = client()
        .post(format!("{}/admin/login", app.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    let other = login(&app.base, &app.token).await;
    // Without the form token, logging out is refused like any form.
    let res = request(
        &app.base,
        Method::POST,
        "/admin/logout",
        &staff.cookies(),
        Some(&[]),
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(staff.get(&app.base, "/admin").await.status, 200);
    let res = staff.post(&app.base, "/admin/logout", &[]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/login"));
    let cleared = res.cookie("ysz_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie, sent again, opens nothing.
    assert_eq!(staff.get(&app.base, "/admin").await.status, 303);
    // Another session of the same token lives on.
    assert_eq!(other.get(&app.base, "/admin").await.status, 200);
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let app = spawn_app().await;
    let store = store_of(&app).await;
    let token = add_token(&store, "乡镇所", "write:511504").await;
    let staff = login(&app.base, &token).await;
    assert_eq!(staff.get(&app.base, "/admin/merchants").await.status, 200);
    let id = yisaozhi::auth::token_id(&token).unwrap();
    let mut stored = store.token(id).await.unwrap().unwrap();
    stored.revoked = true;
    store.put_token(stored).await.unwrap();
    let res = staff.get(&app.base, "/admin/merchants").await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/login"));
    // Its form posts change nothing either.
    let res = staff
        .post(
            &app.base,
            "/admin/merchants/XZ-0001/override",
            &[("grade", "red"), ("reason", "吊销后")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(app.scan("XZ-0001").await["grade"], "green");
}

#[tokio::test]
async fn an_idle_session_expires_and_a_used_one_does_not() {
    let app = spawn_app().await;
    let idle = login(&app.base, &app.token).await;
    let used = login(&app.base, &app.token).await;
    let store = store_of(&app).await;
    // Eight hours and a minute without a request, for one of them.
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(8 * 60 + 1);
    let recent = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(8 * 60 - 5);
    let sessions = store.documents(SESSIONS, None, 100).await.unwrap();
    assert_eq!(sessions.len(), 2);
    for (i, (key, text)) in sessions.into_iter().enumerate() {
        let mut s: Value = serde_json::from_str(&text).unwrap();
        s["last_seen"] = json!(if i == 0 { long_ago } else { recent });
        let ok = yisaozhi::store::documents::replace(
            store.as_ref(),
            SESSIONS,
            &key,
            text,
            Some(&s),
            None,
        )
        .await
        .unwrap();
        assert!(ok);
    }
    let answers = [
        idle.get(&app.base, "/admin").await.status,
        used.get(&app.base, "/admin").await.status,
    ];
    // Which cookie got which time is the store's key order: one of each.
    let mut sorted = answers;
    sorted.sort();
    assert_eq!(sorted, [200, 303], "{answers:?}");
    let (alive, dead) = if answers[0] == 200 {
        (&idle, &used)
    } else {
        (&used, &idle)
    };
    // The expired one is gone from the store; the live one was touched.
    let left = store.documents(SESSIONS, None, 100).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    let touched: Value = serde_json::from_str(&left[0].1).unwrap();
    let seen: jiff::Timestamp = touched["last_seen"].as_str().unwrap().parse().unwrap();
    assert!(seen > recent, "{touched}");
    assert_eq!(dead.get(&app.base, "/admin").await.status, 303);
    assert_eq!(alive.get(&app.base, "/admin").await.status, 200);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let staff = login(&app.base, &app.token).await;
    let other = login(&app.base, &app.token).await;
    let store = store_of(&app).await;
    let serial = app.get("/api/v1/merchants/XZ-0002/code").await.1["serial"].to_string();
    let audit_len = || async {
        app.admin(
            Method::GET,
            "/api/v1/admin/audit?limit=1000",
            Some(&app.token),
            None,
        )
        .await
        .1["entries"]
            .as_array()
            .unwrap()
            .len()
    };
    let before_audit = audit_len().await;
    let before_scan = (app.scan("XZ-0001").await, app.scan("XZ-0002").await);
    let codes_before = store
        .codes_of(&yisaozhi::model::MerchantId::parse("XZ-0001").unwrap())
        .await
        .unwrap();
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/merchants/XZ-0001/override".into(),
            vec![("grade", "red"), ("reason", "伪造的请求")],
        ),
        ("/admin/merchants/XZ-0001/override/clear".into(), vec![]),
        ("/admin/merchants/XZ-0001/codes".into(), vec![]),
        (
            format!("/admin/codes/{serial}/revoke"),
            vec![("confirm", "yes")],
        ),
    ];
    for (path, fields) in &forms {
        let wrong = [
            None,
            Some(String::new()),
            Some("x".repeat(43)),
            Some(other.csrf.clone()),
        ];
        for csrf in wrong {
            let mut all = fields.clone();
            if let Some(c) = &csrf {
                all.push(("csrf", c));
            }
            let res = request(&app.base, Method::POST, path, &staff.cookies(), Some(&all)).await;
            assert_eq!(res.status, 403, "{path} {csrf:?}: {}", res.body);
            assert!(res.body.contains("csrf"), "{}", res.body);
        }
        // Twice the right one is not right either.
        let mut twice = fields.clone();
        twice.push(("csrf", &staff.csrf));
        twice.push(("csrf", &staff.csrf));
        let res = request(
            &app.base,
            Method::POST,
            path,
            &staff.cookies(),
            Some(&twice),
        )
        .await;
        assert_eq!(res.status, 403, "{path}: repeated csrf");
    }
    assert_eq!(
        (app.scan("XZ-0001").await, app.scan("XZ-0002").await),
        before_scan
    );
    assert_eq!(
        store
            .codes_of(&yisaozhi::model::MerchantId::parse("XZ-0001").unwrap())
            .await
            .unwrap(),
        codes_before
    );
    assert_eq!(
        audit_len().await,
        before_audit,
        "nothing audited: nothing done"
    );
    // With the token, the same form works.
    let res = staff
        .post(
            &app.base,
            "/admin/merchants/XZ-0001/override",
            &[("grade", "red"), ("reason", "现场检查发现问题")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.scan("XZ-0001").await["grade"], "red");
}

#[tokio::test]
async fn from_the_scan_page_staff_reach_the_merchant_in_one_tap_or_after_logging_in() {
    let app = spawn_app().await;
    let token = app.token_of("XZ-0004").await;
    let (status, _, page) = app.get_text(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/admin/merchants/XZ-0004\""),
        "the scan page links to the merchant's workbench page:\n{page}"
    );
    // With a session: one tap.
    let staff = login(&app.base, &app.token).await;
    let res = staff.get(&app.base, "/admin/merchants/XZ-0004").await;
    assert_eq!(res.status, 200);
    // Without: the login page, then the merchant.
    let res = request(
        &app.base,
        Method::GET,
        "/admin/merchants/XZ-0004",
        &[],
        None,
    )
    .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/login"));
    let next = res
        .cookie("ysz_next")
        .expect("the page asked for is remembered");
    assert!(
        next.contains("HttpOnly") && next.contains("SameSite=Strict"),
        "{next}"
    );
    let next = next.split(';').next().unwrap().to_owned();
    let res = request(
        &app.base,
        Method::POST,
        "/admin/login",
        &[next],
        Some(&[("token", &app.token)]),
    )
    .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/merchants/XZ-0004"));
    // A remembered page elsewhere is not followed.
    for forged in [
        "ysz_next=//evil.example/admin",
        "ysz_next=https://evil.example/admin",
        "ysz_next=/s/1",
    ] {
        let res = request(
            &app.base,
            Method::POST,
            "/admin/login",
            &[forged.into()],
            Some(&[("token", &app.token)]),
        )
        .await;
        assert_eq!(res.location(), Some("/admin"), "{forged}");
    }
}

#[tokio::test]
async fn a_session_opened_on_one_replica_works_on_another_and_ends_on_both() {
    // Two service processes on one embedded store directory.
    let app = spawn_app().await;
    let other = crate::helpers::serve(app.dir.path()).await;
    let staff = login(&app.base, &app.token).await;
    assert_eq!(staff.get(&other, "/admin/merchants").await.status, 200);
    let res = staff.post(&other, "/admin/logout", &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(staff.get(&app.base, "/admin").await.status, 303);
}

#[tokio::test]
async fn a_session_works_on_every_replica_of_a_redis_store() {
    let redis = crate::redis_helpers::own_standalone();
    let url = redis.url();
    let store = StoreSpec::parse(&url).unwrap().open().await.unwrap();
    let token = add_token(&store, "县局", "write").await;
    let keys = tempfile::tempdir().unwrap();
    let mut bases = Vec::new();
    for _ in 0..2 {
        bases.push(serve_store(&url, keys.path()).await);
    }
    let staff = login(&bases[0], &token).await;
    assert_eq!(staff.get(&bases[1], "/admin").await.status, 200);
    assert_eq!(staff.get(&bases[1], "/admin/audit").await.status, 200);
    let res = staff.post(&bases[1], "/admin/logout", &[]).await;
    assert_eq!(res.status, 303);
    for base in &bases {
        assert_eq!(staff.get(base, "/admin").await.status, 303, "{base}");
    }
}
