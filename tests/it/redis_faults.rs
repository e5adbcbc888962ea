//! Redis in trouble, with real processes: two `yisaozhi serve` processes on
//! one Redis stay coherent after an override and after a `refresh`; a
//! `redis-server` killed under load leaves cached merchants answering and
//! uncached ones with a quick 503, and the service recovers by itself when it
//! is back; with AOF on, overrides, issued codes and audit entries survive a
//! SIGKILL of Redis; a Redis hung by SIGSTOP is answered within the scan's
//! budget, then at once, and continued by SIGCONT is used again by itself;
//! connecting to a Redis Cluster waits while it settles. Each test has its
//! own `redis-server` ([`DurableRedis`]) or cluster.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

use yisaozhi::model::Merchant;
use yisaozhi::store::redis::{RedisOptions, RedisStore};
use yisaozhi::store::{BatchStore, ScanRead, ServiceWrites};

use crate::redis_helpers::{self, DurableRedis, RedisCluster};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
/// The bound the issue sets for "every replica serves the new grade".
const COHERENCE: Duration = Duration::from_secs(1);
/// The bound the issue sets for a 503 while Redis is down.
const FAIL_FAST: Duration = Duration::from_millis(100);
/// "Recovers by itself within a few seconds".
const RECOVERY: Duration = Duration::from_secs(10);
/// The bound the issue sets for a 503 once the service knows Redis is down.
const KNOWN_DOWN: Duration = Duration::from_millis(10);
/// The service's default budget for a store reply outside the scan path.
const ADMIN_BUDGET: Duration = Duration::from_secs(1);
/// A hung Redis that continues is answering again: the service's probe has
/// had a `PING` waiting since the pause, so "about a second" is generous.
const RECOVERY_AFTER_CONT: Duration = Duration::from_secs(2);
/// Grading date of every refresh here (records are dated before it).
const AS_OF: &str = "2026-06-01";

/// The binary with no `YSZ_*` variable inherited from the test's environment.
fn yisaozhi() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("YSZ_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run_ok(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Merchants, keys, a refresh, codes for everyone and a write token, on a
/// fresh Redis with AOF.
struct Setup {
    dir: TempDir,
    redis: DurableRedis,
    /// `ysz_<id>_<secret>` with scope `write`.
    token: String,
}

impl Setup {
    fn new(merchants: usize) -> Setup {
        let redis = DurableRedis::start();
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (1..=merchants)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"id": merchant(i), "name": format!("测试商店{i}"), "kind": "shop",
                           "address": format!("某路{i}号"), "region": "511504", "categories": ["食品"]})
                )
            })
            .collect();
        std::fs::write(dir.path().join("merchants.jsonl"), lines).unwrap();
        let setup = Setup {
            dir,
            redis,
            token: String::new(),
        };
        let mut keys = setup.cmd(&["keys", "generate"]);
        keys.arg("--key-dir").arg(setup.keys());
        run_ok(keys);
        setup.refresh("");
        let mut issue = setup.cmd(&["codes", "issue", "--all", "--out", "codes"]);
        issue.arg("--key-dir").arg(setup.keys());
        run_ok(issue);
        let out = run_ok(setup.cmd(&["tokens", "add", "--name", "县局", "--scope", "write"]));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(token.starts_with("ysz_"), "{token}");
        Setup { token, ..setup }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// `yisaozhi ARGS --store redis://…`, run in the test's directory.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = yisaozhi();
        c.args(args)
            .args(["--store", &self.redis.url()])
            .current_dir(self.dir.path());
        c
    }

    /// Runs a refresh of the merchants file with `records` (JSONL lines).
    fn refresh(&self, records: &str) -> Output {
        let name = format!("records-{}.jsonl", free_port());
        std::fs::write(self.dir.path().join(&name), records).unwrap();
        let out = run_ok(self.cmd(&[
            "refresh",
            "--merchants",
            "merchants.jsonl",
            "--records",
            &name,
            "--as-of",
            AS_OF,
            "--rejects",
            "rejects.jsonl",
        ]));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("rejected 0"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// The token of every merchant's active code, by merchant id.
    fn tokens(&self) -> std::collections::BTreeMap<String, String> {
        let out = run_ok(self.cmd(&["codes", "list"]));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (id, url) = l.split_once(' ').expect("`ID URL`");
                let token = url.rsplit('/').next().unwrap();
                (id.to_owned(), token.to_owned())
            })
            .collect()
    }

    /// Starts `yisaozhi serve` on this Redis; its log goes to `<name>.log`.
    async fn serve(&self, name: &str) -> Service {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let mut cmd = self.cmd(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        let file = File::create(&log).unwrap();
        cmd.arg("--key-dir")
            .arg(self.keys())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = cmd.spawn().expect("start yisaozhi serve");
        let service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            client: client(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = service.client.get(service.url("/readyz")).send().await {
                if r.status() == 200 {
                    return service;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become ready:\n{}",
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn merchant(i: usize) -> String {
    format!("M{i:03}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// One `yisaozhi serve` process, killed on drop.
struct Service {
    child: Child,
    base: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET with the time it took.
    async fn timed(&self, path: &str, accept: &str) -> (u16, String, String, Duration) {
        let started = Instant::now();
        let res = self
            .client
            .get(self.url(path))
            .header("Accept", accept)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = res.text().await.unwrap();
        (status, ctype, body, started.elapsed())
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The live grade a scan of `token` shows.
    async fn grade(&self, token: &str) -> String {
        let (status, body) = self.get(&format!("/api/v1/scan/{token}")).await;
        assert_eq!(status, 200, "{body}");
        body["grade"].as_str().unwrap().to_owned()
    }

    /// Polls until a scan of `token` shows `grade`; returns how long it took
    /// from `since`, or panics after `limit`.
    async fn wait_for_grade(
        &self,
        token: &str,
        grade: &str,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        loop {
            if self.grade(token).await == grade {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "{} still does not show {grade} after {:?}",
                self.base,
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The process is still the one we started and never panicked.
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

#[tokio::test]
async fn two_service_processes_see_an_override_and_a_refresh_within_a_second() {
    let setup = Setup::new(3);
    let tokens = setup.tokens();
    let a = setup.serve("a").await;
    let b = setup.serve("b").await;
    let (m1, m2) = (&tokens[&merchant(1)], &tokens[&merchant(2)]);
    // Both processes have both merchants cached, green.
    for service in [&a, &b] {
        assert_eq!(service.grade(m1).await, "green");
        assert_eq!(service.grade(m2).await, "green");
    }

    // An override through A.
    let (status, body) = a
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/merchants/{}/override", merchant(1)),
            &setup.token,
            Some(json!({"grade": "red", "reason": "现场检查发现问题"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let written = Instant::now();
    assert_eq!(a.grade(m1).await, "red", "the writing process itself");
    let on_b = b.wait_for_grade(m1, "red", written, COHERENCE * 5).await;
    println!("override through A: B serves the new grade after {on_b:?}");
    assert!(on_b <= COHERENCE, "B took {on_b:?} (bound {COHERENCE:?})");

    // A refresh by the batch job (another process) with a severe penalty.
    let record = json!({"id": "p1", "merchant": merchant(2), "kind": "penalty", "date": "2026-05-01",
                        "decision_no": "川宜市监罚〔2026〕1号", "severity": "severe", "fine_cny": 20000});
    let out = setup.refresh(&format!("{record}\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("regraded 1 merchants"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let written = Instant::now();
    for (name, service) in [("A", &a), ("B", &b)] {
        let took = service
            .wait_for_grade(m2, "red", written, COHERENCE * 5)
            .await;
        println!("refresh: {name} serves the new grade {took:?} after the batch job exited");
        assert!(
            took <= COHERENCE,
            "{name} took {took:?} (bound {COHERENCE:?})"
        );
    }
    // Untouched merchants are unchanged.
    assert_eq!(b.grade(&tokens[&merchant(3)]).await, "green");
}

/// Requests hitting cached merchants in a loop until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    slowest_us: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(base: &str, paths: Vec<String>, workers: usize) -> Load {
        let load = Load {
            stop: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            slowest_us: Arc::default(),
            tasks: Vec::new(),
        };
        let tasks = (0..workers)
            .map(|w| {
                let (stop, ok, failed, slowest) = (
                    load.stop.clone(),
                    load.ok.clone(),
                    load.failed.clone(),
                    load.slowest_us.clone(),
                );
                let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
                let client = client();
                tokio::spawn(async move {
                    let mut problems = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let url = &urls[i % urls.len()];
                        i += 1;
                        let started = Instant::now();
                        let outcome = client.get(url).send().await;
                        slowest.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                        match outcome {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!("{url}: {}", r.status()));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!("{url}: {e}"));
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        Load { tasks, ..load }
    }

    /// Stops the load; returns (ok, failed, slowest, the first problems).
    async fn finish(self) -> (u64, u64, Duration, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut problems = Vec::new();
        for t in self.tasks {
            problems.extend(t.await.unwrap());
        }
        problems.truncate(5);
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            Duration::from_micros(self.slowest_us.load(Ordering::Relaxed)),
            problems,
        )
    }
}

#[tokio::test]
async fn redis_killed_under_load_cached_merchants_answer_others_get_a_quick_503_and_the_service_recovers(
) {
    let mut setup = Setup::new(8);
    let tokens = setup.tokens();
    let mut service = setup.serve("service").await;
    // Merchants 1-4 are scanned (cached); 5-8 never are before Redis dies.
    let mut before = Vec::new();
    for i in 1..=4 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        before.push(body);
    }
    let cached: Vec<String> = (1..=4)
        .flat_map(|i| {
            let t = &tokens[&merchant(i)];
            [format!("/api/v1/scan/{t}"), format!("/s/{t}")]
        })
        .collect();
    let load = Load::start(&service.base, cached, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;

    setup.redis.kill();
    let killed = Instant::now();

    // Uncached merchants: 503 JSON and 503 page, each well within 100 ms,
    // starting with the very first request after the kill.
    let mut slowest = Duration::ZERO;
    for i in 5..=8 {
        let t = &tokens[&merchant(i)];
        let (status, ctype, body, took) = service
            .timed(&format!("/api/v1/scan/{t}"), "application/json")
            .await;
        assert_eq!(status, 503, "{body}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        println!("uncached {} JSON: 503 in {took:?}", merchant(i));
        assert!(took <= FAIL_FAST, "JSON 503 took {took:?}");
        slowest = slowest.max(took);

        let (status, ctype, body, took) = service.timed(&format!("/s/{t}"), "text/html").await;
        assert_eq!(status, 503);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("暂时无法查询"), "{body}");
        println!("uncached {} page: 503 in {took:?}", merchant(i));
        assert!(took <= FAIL_FAST, "page 503 took {took:?}");
        slowest = slowest.max(took);
    }
    println!("slowest 503 while Redis is down: {slowest:?}");

    let (status, body, took) = {
        let (s, _, b, t) = service.timed("/readyz", "application/json").await;
        (s, b, t)
    };
    // Ready all the same: this replica answers its cached merchants
    // (deploy/README.md, "When Redis is down").
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""store":"unreachable""#), "{body}");
    assert!(body.contains(r#""cache":"warm""#), "{body}");
    println!("/readyz while Redis is down: 200 (warm cache) in {took:?}");

    // A regulator's write is refused the same way, not as an internal error.
    let (status, body) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(5)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");

    // Cached merchants still answer with their data.
    for (i, was) in (1..=4).zip(&before) {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["merchant"]["id"], merchant(i));
        assert_eq!(body["grade"], was["grade"]);
        assert_eq!(body["code"]["status"], "valid");
    }
    // Down for a while under load.
    let down = Duration::from_millis(1500).saturating_sub(killed.elapsed());
    tokio::time::sleep(down).await;

    setup.redis.restart();
    let back = Instant::now();
    let uncached = format!("/api/v1/scan/{}", tokens[&merchant(8)]);
    let (mut ready_after, mut scan_after) = (None, None);
    while ready_after.is_none() || scan_after.is_none() {
        assert!(
            back.elapsed() < RECOVERY,
            "not recovered {RECOVERY:?} after Redis came back:\n{}",
            service.log()
        );
        if ready_after.is_none() && service.get("/readyz").await.0 == 200 {
            ready_after = Some(back.elapsed());
        }
        if scan_after.is_none() && service.get(&uncached).await.0 == 200 {
            scan_after = Some(back.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "after Redis restarted: /readyz 200 after {:?}, uncached scan 200 after {:?}",
        ready_after.unwrap(),
        scan_after.unwrap()
    );
    for i in 5..=7 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, ctype, _, _) = service
            .timed(&format!("/s/{}", tokens[&merchant(i)]), "text/html")
            .await;
        assert_eq!(status, 200, "{ctype}");
    }

    let (ok, failed, slowest, problems) = load.finish().await;
    println!("load on cached merchants: {ok} answered 200, {failed} did not, slowest {slowest:?}");
    assert!(ok > 0);
    assert_eq!(failed, 0, "cached merchants failed: {problems:?}");
    // Dozens of 503s and two polls a second of the change stream during an
    // outage of a few seconds: a line or two in the log, not one each.
    let log = service.log();
    let refused = log.matches("store unavailable: answering 503").count();
    assert!((1..=2).contains(&refused), "{refused} lines:\n{log}");
    let polls = log.matches("cannot read store changes").count();
    assert!(polls <= 1, "{polls} lines:\n{log}");
    service.assert_alive_without_panic();
}

#[tokio::test]
async fn overrides_codes_and_audit_entries_survive_a_redis_kill_with_aof() {
    let mut setup = Setup::new(3);
    let tokens = setup.tokens();
    let service = setup.serve("before").await;
    let (status, body) = service
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/merchants/{}/override", merchant(1)),
            &setup.token,
            Some(
                json!({"grade": "yellow", "reason": "消费者投诉较多", "expires_at": "2099-12-31"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, issued) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(2)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let new_token = issued["token"].as_str().unwrap().to_owned();
    let audit_path = "/api/v1/admin/audit?limit=1000";
    let (status, audit_before) = service
        .admin(reqwest::Method::GET, audit_path, &setup.token, None)
        .await;
    assert_eq!(status, 200, "{audit_before}");
    let actions = |audit: &Value| -> Vec<(String, String)> {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let wanted = [
        ("override.set".to_owned(), merchant(1)),
        ("code.issue".to_owned(), merchant(2)),
    ];
    for w in &wanted {
        assert!(
            actions(&audit_before).contains(w),
            "{w:?} not in {audit_before}"
        );
    }
    drop(service);

    setup.redis.kill();
    setup.redis.restart();
    assert!(
        setup
            .redis
            .log()
            .contains("DB loaded from append only file"),
        "{}",
        setup.redis.log()
    );

    // A fresh service process: nothing cached, everything from Redis.
    let service = setup.serve("after").await;
    let (status, body) = service
        .get(&format!("/api/v1/merchants/{}", merchant(1)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grade"], "yellow", "{body}");
    assert_eq!(body["override"]["reason"], "消费者投诉较多", "{body}");

    let (status, body) = service.get(&format!("/api/v1/scan/{new_token}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"]["status"], "valid");
    assert_eq!(body["code"]["serial"], issued["serial"]);
    let (status, body) = service
        .get(&format!("/api/v1/scan/{}", tokens[&merchant(2)]))
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["code"]["status"], "superseded", "{body}");

    // The token still authenticates and the audit log is whole.
    let (status, audit_after) = service
        .admin(reqwest::Method::GET, audit_path, &setup.token, None)
        .await;
    assert_eq!(status, 200, "{audit_after}");
    assert_eq!(audit_after, audit_before);
    for w in &wanted {
        assert!(
            actions(&audit_after).contains(w),
            "{w:?} not in {audit_after}"
        );
    }
}

/// Times sorted, and the value at `q` (0..=1) of them.
fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    times[((times.len() - 1) as f64 * q).round() as usize]
}

/// How many audit entries of `action` on `target` the service lists.
async fn audit_count(service: &Service, token: &str, action: &str, target: &str) -> usize {
    let (status, audit) = service
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/admin/audit?target={target}&limit=1000"),
            token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .count()
}

#[tokio::test]
async fn redis_hung_by_sigstop_uncached_scans_get_a_503_within_100_ms_then_within_10_ms_cached_ones_answer_and_sigcont_recovers(
) {
    let setup = Setup::new(12);
    let tokens = setup.tokens();
    let mut service = setup.serve("warm").await;
    let mut cold = setup.serve("cold").await;
    // Merchants 1-4 are scanned on `warm` (cached); 5-12 never are before
    // Redis hangs; `cold` scans nothing.
    let mut before = Vec::new();
    for i in 1..=4 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        before.push(body);
    }
    let issued_before = audit_count(&service, &setup.token, "code.issue", &merchant(6)).await;

    setup.redis.pause();
    let paused = Instant::now();

    // The first uncached scan: the store read gives up within the budget.
    let t = &tokens[&merchant(5)];
    let (status, ctype, body, took) = service
        .timed(&format!("/api/v1/scan/{t}"), "application/json")
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    println!("first uncached scan with Redis hung: 503 in {took:?}");
    assert!(
        took <= FAIL_FAST,
        "first 503 took {took:?} (bound {FAIL_FAST:?})"
    );

    // Redis is known down: the next ones do not wait for it. Judged on the
    // median and the 90th percentile of 42 requests (a loaded machine may
    // stall any single one), each still within the first bound.
    let mut times = Vec::new();
    for _ in 0..3 {
        for i in 6..=12 {
            let t = &tokens[&merchant(i)];
            let (status, ctype, body, took) = service
                .timed(&format!("/api/v1/scan/{t}"), "application/json")
                .await;
            assert_eq!(status, 503, "{body}");
            assert!(ctype.starts_with("application/json"), "{ctype}");
            times.push(took);
            let (status, ctype, body, took) = service.timed(&format!("/s/{t}"), "text/html").await;
            assert_eq!(status, 503);
            assert!(ctype.starts_with("text/html"), "{ctype}");
            assert!(body.contains("暂时无法查询"), "{body}");
            times.push(took);
        }
    }
    let (median, p90, slowest) = (
        quantile(&mut times, 0.5),
        quantile(&mut times, 0.9),
        quantile(&mut times, 1.0),
    );
    println!("uncached scans once Redis is known down: median {median:?}, p90 {p90:?}, slowest {slowest:?}");
    assert!(median <= KNOWN_DOWN, "median {median:?}");
    assert!(p90 <= KNOWN_DOWN, "p90 {p90:?}");
    assert!(slowest <= FAIL_FAST, "slowest {slowest:?}");

    // Cached merchants answer with their data.
    for (i, was) in (1..=4).zip(&before) {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["merchant"]["id"], merchant(i));
        assert_eq!(body["grade"], was["grade"]);
    }

    // A regulator's write and read: 503 JSON at once, nothing sent.
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/api/v1/admin/merchants/{}/codes", merchant(6)),
        ),
        (reqwest::Method::GET, "/api/v1/admin/audit".to_owned()),
    ] {
        let started = Instant::now();
        let (status, body) = service
            .admin(method.clone(), &path, &setup.token, None)
            .await;
        let took = started.elapsed();
        println!("{method} {path} with Redis hung: {status} in {took:?}");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(took <= FAIL_FAST, "{method} {path} took {took:?}");
    }

    // Readiness: the warm replica stays in, the cold one goes out.
    let (status, body) = service.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], "unreachable", "{body}");
    assert_eq!(body["cache"], "warm", "{body}");
    let (status, body) = cold.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unreachable", "{body}");
    assert_eq!(body["cache"], "cold", "{body}");

    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(paused.elapsed())).await;
    setup.redis.resume();
    let back = Instant::now();
    let uncached = format!("/api/v1/scan/{}", tokens[&merchant(12)]);
    loop {
        if service.get(&uncached).await.0 == 200 {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "not recovered {RECOVERY:?} after SIGCONT:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = back.elapsed();
    println!("after SIGCONT: uncached scans answer 200 after {recovered:?}");
    assert!(
        recovered <= RECOVERY_AFTER_CONT,
        "recovered after {recovered:?}"
    );
    for i in 5..=12 {
        let (status, body) = service
            .get(&format!("/api/v1/scan/{}", tokens[&merchant(i)]))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + RECOVERY;
    while cold.get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "cold replica not ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The refused write was never sent: it is not applied when Redis
    // continues; written now, it is there once.
    assert_eq!(
        audit_count(&service, &setup.token, "code.issue", &merchant(6)).await,
        issued_before
    );
    let (status, body) = service
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/admin/merchants/{}/codes", merchant(6)),
            &setup.token,
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        audit_count(&service, &setup.token, "code.issue", &merchant(6)).await,
        issued_before + 1
    );
    service.assert_alive_without_panic();
    cold.assert_alive_without_panic();
}

#[tokio::test]
async fn redis_hung_by_sigstop_a_regulators_request_answers_503_after_the_admin_budget_not_later() {
    let setup = Setup::new(2);
    let mut service = setup.serve("service").await;
    let path = format!("/api/v1/admin/merchants/{}/override", merchant(1));
    let body = json!({"grade": "yellow", "reason": "现场检查发现问题"});

    setup.redis.pause();
    // Nothing is known yet: the first store reply is waited for, up to the
    // admin budget (the change poll may find Redis hung first: then sooner).
    let started = Instant::now();
    let (status, answer) = service
        .admin(
            reqwest::Method::PUT,
            &path,
            &setup.token,
            Some(body.clone()),
        )
        .await;
    let took = started.elapsed();
    println!("first regulator request with Redis hung: {status} in {took:?}");
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable", "{answer}");
    assert!(
        took <= ADMIN_BUDGET + Duration::from_millis(500),
        "took {took:?} (budget {ADMIN_BUDGET:?})"
    );
    // Then Redis is known down: at once.
    let started = Instant::now();
    let (status, answer) = service
        .admin(
            reqwest::Method::PUT,
            &path,
            &setup.token,
            Some(body.clone()),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(took <= FAIL_FAST, "second request took {took:?}");

    setup.redis.resume();
    let back = Instant::now();
    loop {
        let (status, answer) = service
            .admin(
                reqwest::Method::PUT,
                &path,
                &setup.token,
                Some(body.clone()),
            )
            .await;
        if status == 200 {
            assert_eq!(answer["grade"], "yellow", "{answer}");
            break;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(back.elapsed() < RECOVERY_AFTER_CONT, "not recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "after SIGCONT: the override is written after {:?}",
        back.elapsed()
    );
    service.assert_alive_without_panic();
}

/// Options for a cluster store of this test: its own key prefix, and
/// `wait` to settle.
fn cluster_options(wait: Duration) -> RedisOptions {
    RedisOptions {
        prefix: redis_helpers::unique_prefix(),
        connect_wait: wait,
        ..RedisOptions::default()
    }
}

#[tokio::test]
async fn connecting_while_the_cluster_is_being_created_waits_until_it_has_settled() {
    let cluster = Arc::new(RedisCluster::unjoined().unwrap_or_else(|e| panic!("{e}")));
    let urls = cluster.urls();
    let started = Instant::now();
    let options = cluster_options(Duration::from_secs(60));
    let connecting = tokio::spawn(async move { RedisStore::connect_cluster(&urls, options).await });
    // Nodes up, no slot served: no connection yet, and no failure either.
    tokio::time::sleep(Duration::from_millis(700)).await;
    if connecting.is_finished() {
        match connecting.await.unwrap() {
            Ok(_) => panic!("connected before the cluster existed"),
            Err(e) => panic!("gave up before the cluster existed: {e:#}"),
        }
    }
    let joining = cluster.clone();
    tokio::task::spawn_blocking(move || joining.join())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let joined = started.elapsed();
    let store = tokio::time::timeout(Duration::from_secs(60), connecting)
        .await
        .expect("connect still waiting a minute after the cluster was created")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "cluster created after {joined:?}; connected after {:?}",
        started.elapsed()
    );
    // At once, the operations of a refresh: writes to every master, and
    // reads of the index keys of every slot (multi-node).
    let merchants: Vec<Merchant> = (0..50)
        .map(|i| {
            serde_json::from_value(json!({"id": format!("SETTLE{i}"), "name": format!("店{i}"),
                "kind": "shop", "address": "某路1号", "region": "511504", "categories": []}))
            .unwrap()
        })
        .collect();
    store.upsert_merchants(merchants).await.unwrap();
    let ids = store.all_merchant_ids().await.unwrap();
    assert_eq!(ids.len(), 50, "{ids:?}");
    store.ping().await.unwrap();
}

#[tokio::test]
async fn connecting_to_a_cluster_that_never_settles_fails_after_the_configured_time_and_says_what_to_check(
) {
    // Nothing listens on the port, and nodes that answer but serve no slot.
    let nothing = format!("127.0.0.1:{}", free_port());
    let unjoined = RedisCluster::unjoined().unwrap_or_else(|e| panic!("{e}"));
    for (nodes, last) in [
        (vec![nothing.clone()], "refused"),
        (unjoined.urls(), "(last: "),
    ] {
        let wait = Duration::from_millis(1500);
        let started = Instant::now();
        let err = RedisStore::connect_cluster(&nodes, cluster_options(wait))
            .await
            .err()
            .expect("no cluster to connect to");
        let took = started.elapsed();
        let message = format!("{err:#}");
        println!("{nodes:?}: failed after {took:?}: {message}");
        assert!(took >= wait, "gave up after {took:?}, before {wait:?}");
        assert!(took < wait * 3, "took {took:?} for a wait of {wait:?}");
        for needle in [
            "cannot connect to Redis Cluster at redis+cluster://",
            "not ready after 1.",
            last,
            "cluster_state:ok",
            "redis-cli --cluster check",
            "16384 slots",
            "store_connect_timeout_s",
        ] {
            assert!(message.contains(needle), "`{needle}` not in: {message}");
        }
    }
}

#[test]
fn the_command_line_waits_for_a_cluster_as_long_as_store_connect_timeout_s_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redis+cluster://127.0.0.1:{}", free_port());
    for (wait, limit) in [("1", Duration::from_secs(1)), ("3", Duration::from_secs(3))] {
        let started = Instant::now();
        let out = yisaozhi()
            .args(["tokens", "list", "--store", &store])
            .env("YSZ_STORE_CONNECT_TIMEOUT_S", wait)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // After the log lines of the attempts.
        let err = stderr.lines().last().unwrap_or_default();
        println!(
            "YSZ_STORE_CONNECT_TIMEOUT_S={wait}: exit {:?} after {took:?}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(took >= limit && took < limit * 3, "{took:?}: {stderr}");
        assert!(
            err.starts_with("yisaozhi: cannot connect to Redis Cluster at ")
                && err.contains(&format!("not ready after {wait}."))
                && err.contains("store_connect_timeout_s"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_write_that_timed_out_on_a_hung_redis_lands_whole_with_its_audit_entry_when_it_continues()
{
    use yisaozhi::grading::{project, Rules};
    use yisaozhi::model::{AuditEntry, Grade, MerchantId, Override};
    use yisaozhi::store::{AuditFilter, StoreError};
    let redis = DurableRedis::start();
    let store = RedisStore::connect(
        &redis.url(),
        RedisOptions {
            response_timeout: Duration::from_millis(300),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    let merchant: Merchant = serde_json::from_value(json!({"id": "M001", "name": "测试商店",
        "kind": "shop", "address": "某路1号", "region": "511504", "categories": []}))
    .unwrap();
    store
        .upsert_merchants(vec![merchant.clone()])
        .await
        .unwrap();
    let id = MerchantId::parse("M001").unwrap();
    let day = jiff::civil::date(2026, 6, 1);
    let set = |grade: Grade, reason: &str| {
        let now = jiff::Timestamp::now();
        let value = Override {
            grade,
            reason: reason.into(),
            expires_at: None,
            actor: "县局".into(),
            at: now,
        };
        let projection = project(&merchant, &[], Some(&value), &Rules::default(), day, now);
        let audit = AuditEntry {
            at: now,
            actor: "县局".into(),
            action: "override.set".into(),
            target: "M001".into(),
            before: Value::Null,
            after: json!({"grade": grade, "reason": reason}),
            reason: Some(reason.into()),
        };
        store.set_override(&id, Some(value), projection, audit)
    };
    // Once with Redis up, so that Redis knows the script: a hung Redis is
    // then sent the write itself.
    set(Grade::Yellow, "第一次").await.unwrap();

    redis.pause();
    let started = Instant::now();
    let outcome = set(Grade::Red, "第二次").await;
    println!(
        "set_override with Redis hung: {outcome:?} after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    // Known down now: refused at once.
    let started = Instant::now();
    assert!(store.override_of(&id).await.is_err());
    assert!(started.elapsed() <= FAIL_FAST);

    redis.resume();
    let back = Instant::now();
    while store.ping().await.is_err() {
        assert!(back.elapsed() < RECOVERY_AFTER_CONT, "not recovered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The caller was told "unavailable", yet the write was applied when
    // Redis continued: the override, its projection and its audit entry.
    let now = store.override_of(&id).await.unwrap().expect("an override");
    assert_eq!((now.grade, now.reason.as_str()), (Grade::Red, "第二次"));
    let projection = store.projection(&id).await.unwrap().expect("a projection");
    assert_eq!(projection.grade, Grade::Red);
    let entries = store
        .audit(AuditFilter {
            target: Some("M001".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let reasons: Vec<Option<&str>> = entries.iter().map(|e| e.reason.as_deref()).collect();
    assert_eq!(reasons.len(), 2, "{entries:?}");
    assert!(reasons.contains(&Some("第二次")), "{entries:?}");
}
