//! A hostile client: random and hostile paths, queries, headers and bodies,
//! with every method, on every route of the route table, against the real
//! `yisaozhi` binary (its log is a file, so a panic in any thread shows).
//! With the store up no answer is a 5xx; with Redis killed only 503 is.
//! Every request gets an answer (a panicking handler drops its connection),
//! a `HEAD` answer has no body, an error in JSON is the envelope, and the
//! log never says `panicked`.
//!
//! Requests come from many loopback addresses (127.0.0.2–254), so the
//! per-address limit on failed authentication does not turn the rest of
//! the run into 429s; valid tokens still exercise the regulator handlers.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::raw::{exchange_from, RawError, RawResponse};
use crate::redis_helpers::DurableRedis;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
/// Random cases per run; with the fixed sweep of every route this keeps a
/// run to well under a minute on two cores with a debug build.
const CASES: u32 = 128;
/// A request that takes longer is a hung handler, not a slow one.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// What the cases need to know of the service under test.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    api_token: String,
    scan_token: String,
    merchant: String,
}

/// One request.
#[derive(Clone)]
struct Case {
    /// Last byte of the 127.0.0.x client address.
    from: u8,
    method: String,
    /// Path and query, as sent.
    target: Vec<u8>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

/// Shown as the request it sends (bytes that are not UTF-8 escaped).
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| {
            let mut s = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
            if b.len() > 300 {
                s.push_str(&format!("… ({} bytes)", b.len()));
            }
            s
        };
        writeln!(f, "from 127.0.0.{}:", self.from)?;
        writeln!(f, "{} {}", self.method, text(&self.target))?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {}", text(value))?;
        }
        write!(f, "\n{}", text(&self.body))
    }
}

/// `yisaozhi` started as a child process, its output in a log file.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(mut cmd: Command, log: PathBuf) -> Service {
        let file = File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .env("YSZ_LOG", "info");
        Service {
            child: cmd.spawn().expect("start yisaozhi"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive_without_panic(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the service exited:\n{}",
            self.log()
        );
        let log = self.log();
        assert!(!log.contains("panicked"), "the service panicked:\n{log}");
    }
}

fn yisaozhi(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("YSZ_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir);
    cmd
}

fn run_ok(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(host: &str, path: &str) -> Result<RawResponse, RawError> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    exchange_from(None, host, head.as_bytes(), b"", Duration::from_secs(5)).await
}

async fn wait_ready(service: &Service, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches!(get(host, "/readyz").await, Ok(r) if r.status == 200) {
        assert!(
            Instant::now() < deadline,
            "the service did not become ready:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scan_token(host: &str, merchant: &str) -> String {
    let res = get(host, &format!("/api/v1/merchants/{merchant}/code"))
        .await
        .expect("code");
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
    res.json()["token"].as_str().unwrap().to_owned()
}

// ---- the cases ---------------------------------------------------------

const METHODS: &[&str] = &[
    "GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get",
    "FOO",
];

/// Hostile values for a query parameter.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "-1",
            "0",
            "1",
            "2",
            "99999999999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "-9223372036854775809",
            "4294967296",
            "1e309",
            "NaN",
            "%FF%FE",
            "%00",
            "%C0%AF",
            "%",
            "%zz",
            "green",
            "red",
            "shop",
            "511504",
            "2026-01-01",
            "2026-13-45",
            "9999-12-31T23:59:59Z",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9%._~+-]{0,30}",
        (1usize..5000).prop_map(|n| "a".repeat(n)),
    ]
}

/// A query string: known and unknown keys, repeated keys, hostile values.
fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "q", "grade", "region", "category", "kind", "page", "per_page", "target", "actor", "since",
        "limit", "x", "page[]", "%FF",
    ]);
    prop::collection::vec((key, query_value()), 0..6).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// A hostile path segment (`valid` is a real value for the parameter).
fn segment(valid: String) -> impl Strategy<Value = Vec<u8>> {
    let flipped = {
        let mut t = valid.clone().into_bytes();
        if let Some(b) = t.last_mut() {
            *b = if *b == b'1' { b'2' } else { b'1' };
        }
        t
    };
    let junk = prop::collection::vec(
        prop::sample::select(vec![
            "%", "%zz", "%FF", "%C0%AF", "%00", "%2F", "%25", "..", ".", "%E4%B8", "\u{202e}", "名",
        ]),
        1..8,
    )
    .prop_map(|parts| parts.concat().into_bytes());
    prop_oneof![
        3 => Just(valid.clone().into_bytes()),
        1 => Just(flipped),
        1 => Just(valid.into_bytes()).prop_map(|mut v| { v.truncate(v.len() / 2); v }),
        2 => "[A-Za-z0-9._~-]{1,40}".prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 1..64),
        2 => junk,
        1 => (1usize..40_000).prop_map(|n| vec![b'9'; n]),
        1 => "[0-9]{1,400}".prop_map(String::into_bytes),
    ]
}

/// Path and query: a route of the table with hostile segments, or a path
/// of no route.
fn target(t: &Target) -> impl Strategy<Value = Vec<u8>> {
    let routes: Vec<&'static str> = yisaozhi::web::ROUTES.iter().map(|r| r.path).collect();
    let filled = (
        prop::sample::select(routes),
        segment(t.merchant.clone()),
        segment(t.scan_token.clone()),
        segment("1".into()),
    )
        .prop_map(|(pattern, id, token, serial)| {
            let mut out = Vec::new();
            for part in pattern.split('/').skip(1) {
                out.push(b'/');
                match part {
                    "{id}" => out.extend_from_slice(&id),
                    "{token}" => out.extend_from_slice(&token),
                    "{serial}" => out.extend_from_slice(&serial),
                    p => out.extend_from_slice(p.as_bytes()),
                }
            }
            if out.is_empty() {
                out.push(b'/');
            }
            out
        });
    let elsewhere = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
            v.insert(0, b'/');
            v
        }),
        (1usize..20_000).prop_map(|n| format!("/{}", "a/".repeat(n)).into_bytes()),
        Just(b"//api/v1//keys".to_vec()),
        Just(b"/api/v1/../v1/keys".to_vec()),
        Just(b"/%2e%2e/%2e%2e/etc/passwd".to_vec()),
        Just(b"*".to_vec()),
        Just(b"http://example.org/api/v1/keys".to_vec()),
    ];
    (
        prop_oneof![4 => filled, 1 => elsewhere],
        prop::option::of(query()),
    )
        .prop_map(|(mut path, query)| {
            if let Some(q) = query {
                path.push(b'?');
                path.extend_from_slice(q.as_bytes());
            }
            // Keep the request line one line of three parts.
            for b in &mut path {
                if b.is_ascii_control() || *b == b' ' {
                    *b = b'_';
                }
            }
            path
        })
}

fn header_value(choices: Vec<String>) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop_oneof![
        4 => prop::sample::select(choices).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..100),
    ])
}

fn headers(t: &Target) -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let token = &t.api_token;
    let auth = vec![
        format!("Bearer {token}"),
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER  {token} "),
        format!("Bearer {token}x"),
        format!("Basic {token}"),
        "Bearer ysz_00000000_0000000000000000000000000000000000000000000000000000000000000000"
            .into(),
        "Bearer ".into(),
        "Bearer".into(),
        format!("Bearer {}", "a".repeat(10_000)),
        format!("Bearer ysz_{}", "f".repeat(5000)),
    ];
    let accept = [
        "application/json",
        "text/html",
        "*/*",
        "application/json, text/html",
        "text/html;q=0, application/json;q=0",
        "image/svg+xml",
        ";;;",
    ];
    let encoding = [
        "gzip",
        "br",
        "deflate",
        "identity;q=0",
        "*;q=0",
        "gzip;q=abc",
        "gzip, deflate, br, zstd",
        "x-unknown",
    ];
    let ctype = [
        "application/json",
        "application/x-ndjson",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin1",
        "",
    ];
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    (
        header_value(auth),
        header_value(owned(&accept)),
        header_value(owned(&encoding)),
        header_value(owned(&ctype)),
        header_value(owned(&[
            "1.2.3.4",
            "127.0.0.1, 10.0.0.1",
            "not an address",
            "::1",
        ])),
        header_value(owned(&[
            "bytes=0-10",
            "bytes=-1",
            "bytes=99999999999999999999-",
        ])),
    )
        .prop_map(|(auth, accept, encoding, ctype, forwarded, range)| {
            [
                ("Authorization", auth),
                ("Accept", accept),
                ("Accept-Encoding", encoding),
                ("Content-Type", ctype),
                ("X-Forwarded-For", forwarded),
                ("Range", range),
            ]
            .into_iter()
            .filter_map(|(name, v)| {
                let mut v = v?;
                for b in &mut v {
                    if b.is_ascii_control() {
                        *b = b' ';
                    }
                }
                Some((name, v))
            })
            .collect()
        })
}

/// A JSON string value that is hostile to a handler.
fn json_text() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "red",
            "green",
            "purple",
            "2026-01-01",
            "1999-01-01",
            "99999-01-01",
            "M1",
            "511504",
            "\u{0}",
            "\u{202e}abc",
            "\u{feff}",
        ])
        .prop_map(|s| serde_json::Value::String(s.into())),
        "\\PC{0,50}".prop_map(serde_json::Value::String),
        (1usize..20_000).prop_map(|n| serde_json::Value::String("长".repeat(n))),
        prop::sample::select(vec![
            serde_json::json!(null),
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
            serde_json::json!(1e308),
            serde_json::json!(i64::MIN),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!(true),
        ]),
    ]
}

/// A body: random bytes, deep nesting, huge strings, or JSON and JSONL in
/// the shapes the regulator routes read, with hostile values.
fn body(t: &Target) -> impl Strategy<Value = Vec<u8>> {
    let merchant = t.merchant.clone();
    let object = prop::collection::btree_map(
        prop::sample::select(vec![
            "id",
            "grade",
            "reason",
            "expires_at",
            "name",
            "kind",
            "address",
            "region",
            "categories",
            "merchant",
            "date",
            "fine_cny",
            "uscc",
            "contact_phone",
            "result",
            "hazards",
        ]),
        json_text(),
        0..10,
    )
    .prop_map(|m| serde_json::to_vec(&m).unwrap());
    let lines = prop::collection::vec(
        (json_text(), json_text(), json_text()).prop_map(move |(a, b, c)| {
            serde_json::json!({"id": a, "merchant": merchant, "kind": "inspection",
                "date": b, "result": c, "name": a, "region": "511504",
                "address": c, "categories": [b]})
            .to_string()
        }),
        1..10,
    )
    .prop_map(|l| l.join("\n").into_bytes());
    prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(any::<u8>(), 0..4096),
        1 => (1usize..100_000)
            .prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (1usize..100_000).prop_map(|n| format!("{}1", "{\"a\":".repeat(n)).into_bytes()),
        3 => object,
        3 => lines,
        1 => Just(br#"{"grade":"red","grade":"green","reason":"x"}"#.to_vec()),
        1 => Just(b"\xEF\xBB\xBF{\"grade\":\"red\",\"reason\":\"x\"}".to_vec()),
    ]
}

fn case(t: &Target) -> impl Strategy<Value = Case> {
    (
        2u8..=254,
        prop::sample::select(METHODS),
        target(t),
        headers(t),
        body(t),
    )
        .prop_map(|(from, method, target, headers, body)| Case {
            from,
            method: method.to_owned(),
            target,
            headers,
            body,
        })
}

// ---- the checks --------------------------------------------------------

/// Sends `case` and checks the answer; `Err` says what is wrong.
async fn check(t: &Target, case: &Case, store_down: bool) -> Result<u16, String> {
    let mut head = case.method.as_bytes().to_vec();
    head.push(b' ');
    head.extend_from_slice(&case.target);
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(t.host.as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &case.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("Content-Length: {}\r\n", case.body.len()).as_bytes());
    let from = Ipv4Addr::new(127, 0, 0, case.from);
    let res = exchange_from(Some(from), &t.host, &head, &case.body, ANSWER_WITHIN)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status;
    if status >= 500 && !(store_down && status == 503) {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&res.body)
        ));
    }
    // Whatever the app answered (anything with a type: not actix-http's
    // bare refusal of a request head it cannot parse) has the headers.
    if res.header("content-type").is_some()
        && !(res.header("x-content-type-options") == Some("nosniff")
            && res
                .header("content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'")))
    {
        return Err(format!(
            "status {status}: no security headers: {:?}",
            res.headers
        ));
    }
    if case.method == "HEAD" && !res.body.is_empty() {
        return Err(format!(
            "HEAD answered with a body of {} bytes",
            res.body.len()
        ));
    }
    let json = res
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if status >= 400 && json && case.method != "HEAD" {
        let body = res.json();
        if !(body["error"].is_string() && body["message"].is_string()) {
            return Err(format!("status {status}: not the error envelope: {body}"));
        }
    }
    Ok(status)
}

/// Every route of the table, each with a few hostile requests and a valid
/// token: a route cannot be missed by chance.
fn sweep(t: &Target) -> Vec<Case> {
    let bodies: [&[u8]; 4] = [
        b"",
        b"\xff\xfe\x00garbage",
        br#"{"grade":"red","reason":"\u0000\u202e","expires_at":"99999-01-01"}"#,
        b"{\"id\":\"X\",\"merchant\":\"NOPE\",\"kind\":\"penalty\",\"date\":\"2026-01-01\",\"fine_cny\":1e400}",
    ];
    let mut cases = Vec::new();
    for (i, route) in yisaozhi::web::ROUTES.iter().enumerate() {
        let path = route
            .path
            .replace("{id}", &t.merchant)
            .replace("{token}", &t.scan_token)
            .replace("{serial}", "1");
        let queries = [
            "",
            "?page=18446744073709551615&per_page=18446744073709551615&limit=-1&since=x",
        ];
        for (j, body) in bodies.iter().enumerate() {
            for query in queries {
                cases.push(Case {
                    // Valid tokens only: one address is enough.
                    from: 2 + (i % 200) as u8,
                    method: route.method.to_ascii_uppercase(),
                    target: format!("{path}{query}").into_bytes(),
                    headers: vec![
                        (
                            "Authorization",
                            format!("Bearer {}", t.api_token).into_bytes(),
                        ),
                        ("Content-Type", b"application/json".to_vec()),
                    ],
                    body: body.to_vec(),
                });
                if j == 0 && route.method == "get" {
                    cases.push(Case {
                        method: "HEAD".into(),
                        ..cases.last().unwrap().clone()
                    });
                }
            }
        }
    }
    cases
}

/// The sweep, then `CASES` random cases; panics with the (shrunk) failing
/// case, or if the service logged a panic.
fn drive(rt: &tokio::runtime::Runtime, service: &mut Service, t: &Target, store_down: bool) {
    let started = Instant::now();
    let sweep = sweep(t);
    let swept = sweep.len();
    for case in sweep {
        if let Err(e) = rt.block_on(check(t, &case, store_down)) {
            panic!("{e}\n{case:?}\nlog:\n{}", service.log());
        }
    }
    service.assert_alive_without_panic();
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 200,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(t), |case| {
        rt.block_on(check(t, &case, store_down))
            .map(|_| ())
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}\nlog:\n{}", service.log());
    }
    service.assert_alive_without_panic();
    eprintln!(
        "{swept} sweep and {CASES} random requests in {:?}",
        started.elapsed()
    );
}

#[test]
fn hostile_requests_on_every_route_get_no_5xx_and_no_panic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let mut cmd = yisaozhi(dir.path());
    cmd.args(["demo", "--listen", &host, "--data-dir", "county"]);
    let mut service = Service::start(cmd, dir.path().join("serve.log"));
    rt.block_on(wait_ready(&service, &host));
    let api_token = std::fs::read_to_string(dir.path().join("county/admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let merchant = "XZ-0001".to_owned();
    let scan_token = rt.block_on(scan_token(&host, &merchant));
    let t = Target {
        host,
        api_token,
        scan_token,
        merchant,
    };
    drive(&rt, &mut service, &t, false);
}

#[test]
fn hostile_requests_with_redis_down_get_no_5xx_but_503_and_no_panic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut redis = DurableRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = redis.url();
    std::fs::write(
        d.join("merchants.jsonl"),
        (1..=5)
            .map(|i| {
                format!(
                    "{{\"id\":\"M{i}\",\"name\":\"店{i}\",\"kind\":\"shop\",\"address\":\"路{i}号\",\"region\":\"511504\",\"categories\":[\"食品\"]}}\n"
                )
            })
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(d.join("records.jsonl"), "").unwrap();
    let with_store = |args: &[&str]| {
        let mut c = yisaozhi(d);
        c.args(args).args(["--store", &store, "--key-dir", "keys"]);
        c
    };
    run_ok(with_store(&["keys", "generate"]));
    run_ok(with_store(&[
        "refresh",
        "--merchants",
        "merchants.jsonl",
        "--records",
        "records.jsonl",
    ]));
    run_ok(with_store(&["codes", "issue", "--all", "--out", "codes"]));
    let api_token = run_ok(with_store(&[
        "tokens", "add", "--name", "county", "--scope", "write",
    ]))
    .trim()
    .to_owned();
    let host = format!("127.0.0.1:{}", free_port());
    let mut service = Service::start(
        with_store(&["serve", "--listen", &host]),
        d.join("serve.log"),
    );
    rt.block_on(wait_ready(&service, &host));
    let merchant = "M1".to_owned();
    let scan_token = rt.block_on(scan_token(&host, &merchant));
    redis.kill();
    let t = Target {
        host,
        api_token,
        scan_token,
        merchant,
    };
    drive(&rt, &mut service, &t, true);
}
