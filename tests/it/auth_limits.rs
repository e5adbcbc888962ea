//! No one can lock regulators out: failed authentication is limited per
//! client address (through trusted proxies only) and per token id, a valid
//! token is always accepted, and no body is read before authentication.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yisaozhi::settings::{parse_trusted_proxies, Overrides, Settings};
use yisaozhi::startup::Application;
use yisaozhi::web::MAX_AUTH_FAILURES_PER_MINUTE as LIMIT;

use crate::helpers::{spawn_app, TestApp};

/// The demo data served with `trusted` as the trusted proxies.
async fn spawn_behind(trusted: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let prepared = yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let mut settings = Settings::load(Overrides {
        store: Some(format!("embedded:{}", dir.path().display())),
        listen: Some("127.0.0.1:0".into()),
        ..Overrides::default()
    })
    .unwrap();
    settings.trusted_proxies = parse_trusted_proxies(trusted).unwrap();
    let app = Application::build(settings).await.unwrap();
    let base = app.base_url().to_owned();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        token: prepared.token,
        client: reqwest::Client::new(),
        dir,
    }
}

/// `GET /api/v1/admin/audit` with `token`, as if from `forwarded_for`.
async fn attempt(app: &TestApp, token: &str, forwarded_for: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .get(format!("{}/api/v1/admin/audit?limit=1", app.base))
        .bearer_auth(token);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 429 {
        assert_eq!(res.headers()["retry-after"], "60");
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A well-formed token that does not exist (id `n` in hex).
fn wrong_token(n: u32) -> String {
    format!("ysz_{n:08x}_{}", "0".repeat(64))
}

/// The demo token with another secret: same id, wrong token.
fn wrong_secret(valid: &str) -> String {
    let (prefix, secret) = valid.rsplit_once('_').unwrap();
    let flipped = if secret.starts_with('0') { "1" } else { "0" };
    format!("{prefix}_{flipped}{}", &secret[1..])
}

/// Behind the proxy of `deploy/` without trusted proxies every regulator
/// has the proxy's address: an attacker's bad headers from it are limited
/// (401, then 429), and a regulator's valid token from the same address is
/// still accepted, for reading and for writing.
#[tokio::test]
async fn bad_tokens_from_one_address_do_not_lock_out_a_valid_token() {
    let app = spawn_app().await;
    let mut answers = Vec::new();
    for n in 0..LIMIT + 5 {
        let bad = if n % 2 == 0 {
            "nonsense".to_owned()
        } else {
            wrong_token(n)
        };
        answers.push(attempt(&app, &bad, None).await.0);
    }
    let mut expected = vec![401; LIMIT as usize];
    expected.extend([429; 5]);
    assert_eq!(answers, expected);
    let (status, body) = attempt(&app, &app.token, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .admin(
            Method::PUT,
            "/api/v1/admin/merchants/XZ-0001/override",
            Some(&app.token),
            Some(json!({"grade": "red", "reason": "现场检查发现问题"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // And the attacker is still limited.
    assert_eq!(attempt(&app, "nonsense", None).await.0, 429);
}

/// Failures against one token id limit that id whichever address they come
/// from, and no other id; the token's holder is still accepted.
#[tokio::test]
async fn failures_against_one_token_id_limit_that_id() {
    let app = spawn_behind(&["127.0.0.1"]).await;
    let guess = wrong_secret(&app.token);
    for n in 0..LIMIT {
        let from = format!("198.51.100.{n}");
        let (status, err) = attempt(&app, &guess, Some(&from)).await;
        assert_eq!(status, 401, "{n}: {err}");
    }
    let (status, err) = attempt(&app, &guess, Some("198.51.100.200")).await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["error"], "too_many_attempts");
    // Another id from that fresh address: not limited.
    assert_eq!(
        attempt(&app, &wrong_token(7), Some("198.51.100.201"))
            .await
            .0,
        401
    );
    // The holder of the token, from any address.
    for from in [None, Some("198.51.100.0"), Some("203.0.113.9")] {
        let (status, body) = attempt(&app, &app.token, from).await;
        assert_eq!(status, 200, "{from:?}: {body}");
    }
}

/// Through a trusted proxy, each client (its `X-Forwarded-For` hop) has
/// its own count; from a peer that is not a trusted proxy the header is
/// ignored and every failure counts against the peer itself.
#[tokio::test]
async fn x_forwarded_for_counts_only_through_trusted_proxies() {
    // Loopback is the trusted proxy: clients are told apart.
    let trusted = spawn_behind(&["127.0.0.1", "::1"]).await;
    for n in 0..LIMIT {
        assert_eq!(
            attempt(&trusted, &wrong_token(n), Some("203.0.113.7"))
                .await
                .0,
            401
        );
    }
    assert_eq!(
        attempt(&trusted, &wrong_token(99), Some("203.0.113.7"))
            .await
            .0,
        429
    );
    // A client cannot escape its count by writing its own hop to the left.
    let forged = Some("192.0.2.55, 203.0.113.7");
    assert_eq!(attempt(&trusted, &wrong_token(98), forged).await.0, 429);
    assert_eq!(
        attempt(&trusted, &wrong_token(97), Some("203.0.113.8"))
            .await
            .0,
        401
    );

    // Only 192.0.2.1 is trusted: the test's loopback peer is not, so
    // a header naming a new client each time changes nothing.
    let untrusted = spawn_behind(&["192.0.2.1"]).await;
    for n in 0..LIMIT {
        let from = format!("203.0.113.{n}");
        assert_eq!(
            attempt(&untrusted, &wrong_token(n), Some(&from)).await.0,
            401
        );
    }
    let (status, _) = attempt(&untrusted, &wrong_token(99), Some("203.0.113.250")).await;
    assert_eq!(
        status, 429,
        "X-Forwarded-For from an untrusted peer was believed"
    );
}

/// Sends the head of a request declaring `declared` body bytes and then
/// only `sent` of them, and reads what the server answers meanwhile.
async fn answer_before_the_body(app: &TestApp, head: &str, declared: usize, sent: usize) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    conn.write_all(&vec![b' '; sent]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    // Not a latency bound: the server either answers without the body or
    // waits for bytes that never come. 10 s tells the two apart on a slow box.
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
        .await
        .expect("no answer while the body was incomplete: the server waited for it")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// Without a valid token no body is read: every admin write route answers
/// 401 while the client has sent only the start of a large body; with a
/// token outside the merchant's scope, 403 likewise.
#[tokio::test]
async fn an_unauthenticated_large_body_is_refused_before_it_is_read() {
    let declared = 3 * 1024 * 1024;
    let writes: Vec<_> = yisaozhi::web::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/admin/") && r.method != "get")
        .collect();
    // More routes than failures one address may make before 429: a fresh
    // service for each few, so every answer is the 401 of a missing token.
    let mut app = spawn_app().await;
    for (i, route) in writes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            app = spawn_app().await;
        }
        let path = route
            .path
            .replace("{id}", "XZ-0001")
            .replace("{serial}", "1")
            .replace("{review}", "r1")
            .replace("{name}", "p1");
        assert!(!path.contains('{'), "{path}: a new path parameter");
        let head = format!("{} {path} HTTP/1.1", route.method.to_uppercase());
        let answer = answer_before_the_body(&app, &head, declared, 1024).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
        assert!(
            answer.contains("\"error\":\"unauthorized\""),
            "{path}: {answer}"
        );
    }
    let store = yisaozhi::store::StoreSpec::Embedded(app.dir.path().to_owned())
        .open()
        .await
        .unwrap();
    let scope = yisaozhi::auth::Scope::parse("write:44").unwrap();
    let (other, stored) =
        yisaozhi::auth::new_token("广东", &scope, jiff::Timestamp::now()).unwrap();
    store.put_token(stored).await.unwrap();
    let head = format!(
        "PUT /api/v1/admin/merchants/XZ-0001/override HTTP/1.1\r\nAuthorization: Bearer {other}"
    );
    let answer = answer_before_the_body(&app, &head, 60 * 1024, 10).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

/// A body over the limit is 413 in the JSON envelope, whether its length
/// is declared or it comes in chunks; a compressed body is limited by its
/// decompressed size.
#[tokio::test]
async fn a_body_over_the_limit_is_413_in_the_envelope() {
    let app = spawn_app().await;
    let bearer = format!("Authorization: Bearer {}", app.token);
    let cases = [
        ("POST /api/v1/admin/records", 4 * 1024 * 1024 + 1, "4194304"),
        (
            "POST /api/v1/admin/merchants",
            4 * 1024 * 1024 + 1,
            "4194304",
        ),
        (
            "PUT /api/v1/admin/merchants/XZ-0001/override",
            64 * 1024 + 1,
            "65536",
        ),
    ];
    for (request, declared, limit) in cases {
        let head = format!("{request} HTTP/1.1\r\n{bearer}");
        let answer = answer_before_the_body(&app, &head, declared, 1024).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{request}: {answer}");
        assert!(
            answer.contains("\"error\":\"payload_too_large\""),
            "{answer}"
        );
        assert!(answer.contains(limit), "{request}: {answer}");
    }

    // Chunked, no length declared: read up to the limit, then refused.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let head = format!(
        "POST /api/v1/admin/records HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.token
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'\n'; 64 * 1024];
        for _ in 0..(4 * 16 + 1) {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), rd.read(&mut answer))
        .await
        .expect("no answer to a chunked body over the limit")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    writer.abort();

    // Gzip that inflates past the limit: refused, not inflated without end.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b'\n'; 8 * 1024 * 1024]).unwrap();
    let res = app
        .client
        .post(format!("{}/api/v1/admin/records", app.base))
        .bearer_auth(&app.token)
        .body(gz.finish().unwrap())
        .header("content-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
}
