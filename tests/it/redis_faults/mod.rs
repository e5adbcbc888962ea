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

mod cluster_settling;
mod coherence_and_kill;
mod hung;
mod tips;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
/// The bound the issue sets for "every replica serves the new grade".
const COHERENCE: Duration = Duration::from_secs(1);
/// The scan budget (`store_budget_ms`) of every service started here: by
/// default five times the service's 100 ms, so that "gave up at the
/// budget" and "did not wait for the store at all" differ by margins a
/// loaded machine does not eat into. The times are printed, not judged
/// finely: `REDIS_FAULTS_BUDGET_MS=100 cargo test --test it redis_faults
/// -- --nocapture` prints the default's figures (BENCHMARKS.md,
/// `redis-hung-503`).
fn budget() -> Duration {
    let ms = std::env::var("REDIS_FAULTS_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    Duration::from_millis(ms)
}

/// "Recovers by itself within a few seconds".
const RECOVERY: Duration = Duration::from_secs(10);

/// A first uncached scan with Redis hung gives up at the budget, not at
/// the admin budget, let alone a TCP timeout.
fn fail_fast() -> Duration {
    budget() + Duration::from_millis(700)
}

/// Once Redis is known down (or refuses connections) an answer does not
/// wait for it: within half the budget, where waiting would take all of it.
fn known_down() -> Duration {
    budget() / 2
}
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
        c.env("YSZ_STORE_BUDGET_MS", budget().as_millis().to_string())
            .args(args)
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
