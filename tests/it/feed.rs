//! The change feed over HTTP (`GET /api/v1/changes`, CONTRACT §8): paging
//! by `next`, errors in the envelope, and two service processes writing at
//! once on one store while a client follows the feed through both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::graceful::free_port;
use crate::helpers::spawn_app;
use crate::redis_helpers;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = client.get(url).send().await.expect("request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Every change after `since`, `limit` a page, through `bases` in turn (a
/// cursor from one replica used on the next).
async fn follow(
    client: &reqwest::Client,
    bases: &[&str],
    since: Option<String>,
    limit: u32,
) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut since = since;
    for turn in 0.. {
        let base = bases[turn % bases.len()];
        let url = match &since {
            Some(c) => format!("{base}/api/v1/changes?since={c}&limit={limit}"),
            None => format!("{base}/api/v1/changes?limit={limit}"),
        };
        let (status, body) = get(client, &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let page = body["changes"].as_array().unwrap().clone();
        assert!(page.len() <= limit as usize);
        let next = body["next"].as_str().unwrap().to_owned();
        if let Some(last) = page.last() {
            assert_eq!(
                last["cursor"],
                json!(next),
                "next is the last change's cursor"
            );
        } else {
            return (out, next);
        }
        out.extend(page);
        since = Some(next);
    }
    unreachable!()
}

fn position(cursor: &Value) -> u64 {
    yisaozhi::feed::Cursor::parse(cursor.as_str().unwrap())
        .expect("a cursor")
        .position()
}

/// Positions strictly increase: in one order, none twice.
fn assert_in_order(changes: &[Value]) {
    for w in changes.windows(2) {
        assert!(
            position(&w[0]["cursor"]) < position(&w[1]["cursor"]),
            "{} then {}",
            w[0],
            w[1]
        );
    }
}

#[tokio::test]
async fn the_feed_pages_by_next_and_shows_each_regulator_write_once() {
    let app = spawn_app().await;
    let client = &app.client;
    let base = app.base.as_str();
    let (all, next) = follow(client, &[base], None, 1000).await;
    assert_in_order(&all);
    let kinds: BTreeSet<&str> = all.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["code_issued", "grade", "merchant"]),
        "the demo's load: merchants, their first grades, their codes"
    );
    for c in &all {
        assert!(
            c["at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(),
            "{c}"
        );
        match c["kind"].as_str().unwrap() {
            "grade" => assert!(c["grade"].is_string() && c.get("serial").is_none(), "{c}"),
            "code_issued" => assert!(c["serial"].is_u64() && c.get("grade").is_none(), "{c}"),
            _ => assert!(c.get("grade").is_none() && c.get("serial").is_none(), "{c}"),
        }
    }
    for limit in [1, 7] {
        let (paged, paged_next) = follow(client, &[base], None, limit).await;
        assert_eq!(paged, all, "pages of {limit}");
        assert_eq!(paged_next, next);
    }
    let (nothing, same) = follow(client, &[base], Some(next.clone()), 10).await;
    assert!(nothing.is_empty());
    assert_eq!(same, next, "nothing new: the same cursor");

    let (status, body) = app
        .admin(
            Method::PUT,
            "/api/v1/admin/merchants/XZ-0001/override",
            Some(&app.token),
            Some(json!({"grade": "red", "reason": "现场检查发现过期食品"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (after, _) = follow(client, &[base], Some(next.clone()), 10).await;
    let seen: Vec<(&str, &str, &str)> = after
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap(),
                c["merchant_id"].as_str().unwrap(),
                c["grade"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("grade", "XZ-0001", "red"), ("override", "XZ-0001", "red")]
    );
}

#[tokio::test]
async fn bad_cursors_and_limits_are_refused_in_the_envelope() {
    let app = spawn_app().await;
    let (_, body) = app.get("/api/v1/changes?limit=1").await;
    let first = body["next"].as_str().unwrap().to_owned();
    let beyond = yisaozhi::feed::Cursor::parse(&first).unwrap().position() + 1_000_000;
    let beyond = data_encoding::BASE64URL_NOPAD.encode(&beyond.to_be_bytes());
    for (query, code) in [
        ("since=12345", "bad_cursor"),
        ("since=AAAAAAAAAA%21", "bad_cursor"),
        (&format!("since={beyond}") as &str, "bad_cursor"),
        ("limit=0", "bad_request"),
        ("limit=1001", "bad_request"),
        ("limit=ten", "bad_request"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/changes?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], code, "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains('`'), "{body}");
    }
}

/// A `yisaozhi serve` process; killed when dropped.
pub(crate) struct Service {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_service(store: &str, key_dir: &Path, log: &Path) -> Service {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--store", store, "--key-dir"])
        .arg(key_dir)
        .env("YSZ_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let service = Service {
        child,
        base: format!("http://{addr}"),
    };
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(res) = client.get(format!("{}/readyz", service.base)).send().await {
            if res.status() == 200 {
                return service;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two service processes on `store` take regulator writes at once (code
/// issues and overrides on both) while a client follows the feed through
/// both; afterwards every write is in the feed exactly once, in one order,
/// and nothing is there that was not written.
async fn two_processes_write_and_the_feed_has_each_change_once(
    store: &str,
    token: &str,
    key_dir: &Path,
) {
    const MERCHANTS: [&str; 4] = ["XZ-0001", "XZ-0002", "XZ-0003", "XZ-0004"];
    const ROUNDS: usize = 6;
    let logs = tempfile::tempdir().unwrap();
    let a = start_service(store, key_dir, &logs.path().join("a.log")).await;
    let b = start_service(store, key_dir, &logs.path().join("b.log")).await;
    let client = reqwest::Client::new();
    let bases = [a.base.as_str(), b.base.as_str()];
    let (_, start) = follow(&client, &bases, None, 1000).await;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let client = client.clone();
        let bases: Vec<String> = bases.iter().map(|b| b.to_string()).collect();
        let done = done.clone();
        let start = start.clone();
        tokio::spawn(async move {
            let bases: Vec<&str> = bases.iter().map(String::as_str).collect();
            let mut seen = Vec::new();
            let mut cursor = start;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let (page, next) = follow(&client, &bases, Some(cursor.clone()), 5).await;
                seen.extend(page);
                cursor = next;
                if finished {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Each merchant is written through one process and the next merchant
    // through the other, all at once.
    let writers: Vec<_> = MERCHANTS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let client = client.clone();
            let base = bases[i % 2].to_owned();
            let token = token.to_owned();
            let m = m.to_string();
            tokio::spawn(async move {
                let mut serials = Vec::new();
                for round in 0..ROUNDS {
                    let res = client
                        .post(format!("{base}/api/v1/admin/merchants/{m}/codes"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                    let body: Value = res.json().await.unwrap();
                    serials.push(body["serial"].as_u64().unwrap());
                    let grade = ["red", "yellow"][round % 2];
                    let res = client
                        .put(format!("{base}/api/v1/admin/merchants/{m}/override"))
                        .bearer_auth(&token)
                        .json(&json!({"grade": grade, "reason": format!("第{round}次复查")}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                }
                (m, serials)
            })
        })
        .collect();
    let mut issued = BTreeMap::new();
    for w in writers {
        let (m, serials) = w.await.unwrap();
        issued.insert(m, serials);
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let seen = reader.await.unwrap();
    assert_in_order(&seen);
    let (again, _) = follow(&client, &bases, Some(start), 1000).await;
    assert_eq!(seen, again, "followed while written = read afterwards");

    for m in MERCHANTS {
        let of = |kind: &str| -> Vec<&Value> {
            seen.iter()
                .filter(|c| c["merchant_id"] == m && c["kind"] == kind)
                .collect()
        };
        let serials: Vec<u64> = of("code_issued")
            .iter()
            .map(|c| c["serial"].as_u64().unwrap())
            .collect();
        assert_eq!(
            serials, issued[m],
            "{m}: each issue once, in the order made"
        );
        let overrides: Vec<&str> = of("override")
            .iter()
            .map(|c| c["grade"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = (0..ROUNDS).map(|r| ["red", "yellow"][r % 2]).collect();
        assert_eq!(
            overrides, want,
            "{m}: each override once, in the order made"
        );
    }
    let others: Vec<&Value> = seen
        .iter()
        .filter(|c| !["code_issued", "override", "grade"].contains(&c["kind"].as_str().unwrap()))
        .collect();
    assert!(others.is_empty(), "nothing else was written: {others:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_service_processes_on_one_embedded_store_feed_each_change_once() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let store = format!("embedded:{}", dir.path().display());
    two_processes_write_and_the_feed_has_each_change_once(
        &store,
        &prepared.token,
        &dir.path().join("keys"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_service_processes_on_one_redis_cluster_feed_each_change_once() {
    // The demo's files, keys and token, loaded into a cluster of this
    // test's own (the service uses the default key prefix).
    let dir = tempfile::tempdir().unwrap();
    yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let cluster = redis_helpers::RedisCluster::unjoined().unwrap_or_else(|e| panic!("{e}"));
    cluster.join().unwrap_or_else(|e| panic!("{e}"));
    let nodes: Vec<String> = cluster
        .urls()
        .iter()
        .map(|u| u.trim_start_matches("redis://").to_owned())
        .collect();
    let store = format!("redis+cluster://{}", nodes.join(","));
    let out = Command::new(BIN)
        .args([
            "refresh",
            "--merchants",
            "merchants.jsonl",
            "--records",
            "records.jsonl",
        ])
        .args(["--store", &store])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let redis = yisaozhi::store::StoreSpec::parse(&store)
        .unwrap()
        .open()
        .await
        .unwrap();
    let scope = yisaozhi::auth::Scope::Write {
        region_prefix: String::new(),
    };
    let (token, stored) =
        yisaozhi::auth::new_token("feed-test", &scope, yisaozhi::clock::now()).unwrap();
    redis.put_token(stored).await.unwrap();
    two_processes_write_and_the_feed_has_each_change_once(&store, &token, &dir.path().join("keys"))
        .await;
}

#[tokio::test]
async fn the_feed_and_the_open_data_are_described_in_openapi() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let changes = &doc["paths"]["/api/v1/changes"]["get"];
    let params: Vec<&str> = changes["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["since", "limit"]);
    assert_eq!(
        changes["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Changes"
    );
    assert!(changes["responses"]["400"].is_object());
    let kinds = &doc["components"]["schemas"]["Change"]["properties"]["kind"]["enum"];
    assert_eq!(
        kinds,
        &json!([
            "grade",
            "override",
            "code_issued",
            "code_revoked",
            "merchant"
        ])
    );
    for path in ["/open-data/index.json", "/open-data/{file}"] {
        let op = &doc["paths"][path]["get"];
        assert!(op["responses"]["304"].is_object(), "{path}: {op}");
        assert!(
            op["responses"]["200"]["headers"]["ETag"].is_object(),
            "{path}"
        );
    }
    let files = &doc["components"]["schemas"]["OpenDataIndex"]["properties"]["files"];
    assert_eq!(
        files["items"]["required"],
        json!(["name", "sha256", "bytes", "rows"])
    );
}
