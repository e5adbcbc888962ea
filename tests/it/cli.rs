//! The command line as users run it: the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `yisaozhi demo` and waits for it to print that it serves.
fn start_demo(dir: &Path, port: u16) -> (Running, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["demo", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Press Ctrl-C");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    (running, lines)
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("service on port {port} did not come up");
}

fn yisaozhi(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run yisaozhi")
}

#[tokio::test]
async fn demo_prints_url_token_and_a_scan_url_per_grade_and_restarts_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = free_port();
    let (running, lines) = start_demo(&data, port);
    wait_ready(port);
    let out = lines.join("\n");
    assert!(out.contains(&format!("http://127.0.0.1:{port}/")), "{out}");
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(out.contains(token.trim()), "token not printed");
    let scans: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("sample scan"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(scans.len(), 3, "{out}");
    let client = reqwest::Client::new();
    let mut grades = Vec::new();
    for url in &scans {
        // The printed URL is the one in the QR code: upper-case scheme and host.
        let body: serde_json::Value = client
            .get(url.replace("HTTP://", "http://"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["code"]["status"], "valid");
        grades.push(body["grade"].as_str().unwrap().to_owned());
    }
    assert_eq!(grades, ["green", "yellow", "red"]);

    let base = format!("http://127.0.0.1:{port}");
    let res = client
        .put(format!("{base}/api/v1/admin/merchants/XZ-0002/override"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"grade": "red", "reason": "重启前设置"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(running);

    let (_running, lines) = start_demo(&data, port);
    wait_ready(port);
    assert!(
        lines.iter().any(|l| l.contains("codes issued: 0")),
        "codes were reissued on restart: {lines:?}"
    );
    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .get(format!("{base}/api/v1/merchants/XZ-0002"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["grade"], "red");
    assert_eq!(body["override"]["reason"], "重启前设置");
}

#[test]
fn refresh_imports_good_lines_and_reports_bad_ones_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("merchants.jsonl"),
        concat!(
            r#"{"id":"M1","name":"测试商店","kind":"shop","uscc":"91350100M000100Y43","address":"某路1号","region":"511504","categories":["食品"]}"#, "\n",
            r#"{"id":"M2","name":"坏代码","kind":"shop","uscc":"91350100M000100Y44","address":"某路2号","region":"511504","categories":[]}"#, "\n",
            r#"{"id":"V1","name":"流动摊贩","kind":"vendor","address":"集市","region":"511504","categories":["食品"]}"#, "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("records.jsonl"),
        concat!(
            r#"{"id":"r1","merchant":"M1","kind":"sampling","date":"2026-03-01","product":"酱油","passed":false,"failed_items":["菌落总数"]}"#, "\n",
            r#"{"id":"r2","merchant":"M1","kind":"sampling","date":"2026-13-01","product":"醋","passed":true}"#, "\n",
            r#"{"id":"r3","merchant":"NOPE","kind":"complaint","date":"2026-03-01","substantiated":true}"#, "\n",
            "not json\n",
            r#"{"id":"r4","merchant":"V1","kind":"commitment","date":"2026-03-01"}"#, "\n",
            r#"{"id":"r1","merchant":"M1","kind":"sampling","date":"2026-03-01","product":"酱油","passed":false}"#, "\n",
        ),
    )
    .unwrap();
    let args = [
        "refresh",
        "--store",
        "embedded:store",
        "--merchants",
        "merchants.jsonl",
        "--records",
        "records.jsonl",
        "--as-of",
        "2026-06-01",
        "--rejects",
        "rejects.jsonl",
    ];
    let out = yisaozhi(&args, d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imported 4, duplicate 1, rejected 4"),
        "{stdout}"
    );
    assert!(stdout.contains("yellow 1"), "{stdout}");
    let rejects = std::fs::read_to_string(d.join("rejects.jsonl")).unwrap();
    let rejects: Vec<serde_json::Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at: Vec<(String, u64)> = rejects
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            ("merchants.jsonl".into(), 2),
            ("records.jsonl".into(), 2),
            ("records.jsonl".into(), 4),
            ("records.jsonl".into(), 3)
        ],
        "{rejects:?}"
    );
    assert!(rejects[0]["reason"]
        .as_str()
        .unwrap()
        .contains("check character"));
    assert!(rejects[1]["reason"].as_str().unwrap().contains("date"));
    assert!(rejects[3]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown merchant"));

    // Running again imports nothing new and regrades nobody.
    let out = yisaozhi(&args, d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("imported 0, duplicate 5, rejected 4"),
        "{stdout}"
    );
    assert!(stdout.contains("regraded 0 merchants"), "{stdout}");
}

#[test]
fn bad_arguments_fail_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = yisaozhi(
        &["refresh", "--store", "mysql://x", "--records", "r.jsonl"],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("yisaozhi: store `mysql://x`"), "{err}");
    let out = yisaozhi(
        &[
            "refresh",
            "--store",
            "embedded:s",
            "--records",
            "r.jsonl",
            "--as-of",
            "2026-02-30",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as-of `2026-02-30`"));
}

#[test]
fn keys_generate_list_and_offline_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = yisaozhi(&["keys", "generate", "--key-dir", "keys"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = yisaozhi(&["keys", "list", "--key-dir", "keys"], d);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("active"), "{list}");
    let out = yisaozhi(&["codes", "verify", "12345", "--keys", "keys/keys.json"], d);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("malformed"));
    // Without --keys the configured key directory is used.
    let out = yisaozhi(&["codes", "verify", "12345", "--key-dir", "keys"], d);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("malformed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = yisaozhi(&["codes", "verify", "12345", "--key-dir", "nokeys"], d);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no keys in nokeys"));
}

#[test]
fn tokens_are_shown_once_listed_without_secrets_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = yisaozhi(
        &[
            "tokens",
            "add",
            "--store",
            "embedded:s",
            "--name",
            "柏溪所",
            "--scope",
            "write:511504",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let id = token.split('_').nth(1).unwrap().to_owned();
    let secret = token.split('_').nth(2).unwrap().to_owned();
    let out = yisaozhi(&["tokens", "list", "--store", "embedded:s"], d);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains(&id) && list.contains("柏溪所") && list.contains("write:511504"),
        "{list}"
    );
    assert!(!list.contains(&secret), "secret listed");
    let out = yisaozhi(&["tokens", "revoke", "--store", "embedded:s", &id], d);
    assert!(out.status.success());
    let out = yisaozhi(&["tokens", "list", "--store", "embedded:s"], d);
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(&id) && l.ends_with("yes")));
    let out = yisaozhi(
        &["tokens", "revoke", "--store", "embedded:s", "ffffffff"],
        d,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token with id"));
}

#[test]
fn print_config_layers_flag_env_and_file_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("ysz.toml"),
        "listen = \"127.0.0.1:9000\"\ncache_capacity = 5000\n",
    )
    .unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config", "ysz.toml", "--print-config"])
            .args(args)
            .current_dir(d);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[("YSZ_STORE", "redis://ops:s3cret@127.0.0.1:6379")], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("listen = \"127.0.0.1:9000\""),
        "file value: {text}"
    );
    assert!(text.contains("cache_capacity = 5000"));
    assert!(text.contains("redis://ops:***@127.0.0.1:6379"), "{text}");
    assert!(!text.contains("s3cret"));
    let out = run(
        &[("YSZ_LISTEN", "127.0.0.1:9100")],
        &["--listen", "127.0.0.1:9200"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9200"),
        "flag beats env"
    );
    let out = run(&[("YSZ_LISTEN", "127.0.0.1:9100")], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9100"),
        "env beats file"
    );
    let out = run(&[("YSZ_LISTEN", "nowhere")], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen `nowhere`"));
    std::fs::write(d.join("ysz.toml"), "cache_capacty = 5\n").unwrap();
    let out = run(&[], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cache_capacty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn store_budgets_and_the_connect_timeout_are_settings_with_defaults_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |file: &str, envs: &[(&str, &str)]| {
        std::fs::write(d.join("ysz.toml"), file).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config", "ysz.toml", "--print-config"])
            .current_dir(d);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run("", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for default in [
        "store_budget_ms = 100\n",
        "store_admin_budget_ms = 1000\n",
        "store_connect_timeout_s = 10\n",
    ] {
        assert!(text.contains(default), "{default}: {text}");
    }
    let out = run(
        "store_budget_ms = 50\nstore_admin_budget_ms = 400\nstore_connect_timeout_s = 30\n",
        &[("YSZ_STORE_CONNECT_TIMEOUT_S", "2")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("store_budget_ms = 50\n"), "{text}");
    assert!(text.contains("store_admin_budget_ms = 400\n"), "{text}");
    assert!(
        text.contains("store_connect_timeout_s = 2\n"),
        "env beats file: {text}"
    );
    for (file, envs, named) in [
        ("store_budget_ms = 5\n", &[][..], "store_budget_ms `5`"),
        (
            "",
            &[("YSZ_STORE_BUDGET_MS", "20000")][..],
            "store_budget_ms `20000`",
        ),
        (
            "",
            &[("YSZ_STORE_ADMIN_BUDGET_MS", "soon")][..],
            "YSZ_STORE_ADMIN_BUDGET_MS=`soon`",
        ),
        (
            "store_connect_timeout_s = 601\n",
            &[][..],
            "store_connect_timeout_s `601`",
        ),
    ] {
        let out = run(file, envs);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} {envs:?} accepted");
        assert!(err.contains(named), "{named}: {err}");
    }
}

#[tokio::test]
async fn after_a_key_rotation_old_codes_stay_valid_new_ones_use_the_new_key_and_the_cli_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    yisaozhi::demo::prepare(&d.join("demo"), 365).await.unwrap();
    let store = "embedded:demo";
    let out = yisaozhi(&["codes", "list", "--store", store], d);
    let list = String::from_utf8(out.stdout).unwrap();
    assert_eq!(list.lines().count(), 74, "{list}");
    let old_url = list
        .lines()
        .find(|l| l.starts_with("XZ-0001 "))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_owned();
    let out = yisaozhi(&["keys", "rotate", "--store", store], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = yisaozhi(
        &[
            "codes",
            "issue",
            "--merchant",
            "XZ-0002",
            "--out",
            "printed",
            "--store",
            store,
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.join("printed/XZ-0002.svg").exists());

    let base = crate::helpers::serve(&d.join("demo")).await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let res = client.get(path).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let old_token = old_url.rsplit('/').next().unwrap().to_owned();
    let (status, old) = get(format!("{base}/api/v1/scan/{old_token}")).await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["code"]["kid"], 1);
    let (_, new_code) = get(format!("{base}/api/v1/merchants/XZ-0002/code")).await;
    assert_eq!(new_code["kid"], 2);
    let (status, _) = get(format!(
        "{base}/api/v1/scan/{}",
        new_code["token"].as_str().unwrap()
    ))
    .await;
    assert_eq!(status, 200);
    let (_, keys) = get(format!("{base}/api/v1/keys")).await;
    let statuses: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["retired", "active"]);
    assert!(keys["keys"][0]["not_after"].is_string());

    let serial = old["code"]["serial"].as_u64().unwrap().to_string();
    let out = yisaozhi(
        &[
            "codes",
            "revoke",
            "--store",
            store,
            &serial,
            "--reason",
            "商户注销",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, revoked) = get(format!("{base}/api/v1/scan/{old_token}")).await;
    assert_eq!(
        status, 410,
        "a CLI revocation reaches the running service within a second: {revoked}"
    );
    assert_eq!(revoked["code"]["status"], "revoked");
}

#[tokio::test]
async fn codes_issue_all_writes_one_verifiable_code_per_merchant_and_list_shows_them_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    yisaozhi::demo::prepare(&d.join("demo"), 365).await.unwrap();
    let store = "embedded:demo";
    let before =
        String::from_utf8(yisaozhi(&["codes", "list", "--store", store], d).stdout).unwrap();
    let out = yisaozhi(
        &["codes", "issue", "--all", "--out", "all", "--store", store],
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after =
        String::from_utf8(yisaozhi(&["codes", "list", "--store", store], d).stdout).unwrap();
    let rows: Vec<(&str, &str)> = after.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(rows.len(), 74, "{after}");
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "one line per merchant, in id order");
    for (id, url) in &rows {
        assert!(
            d.join(format!("all/{id}.svg")).exists(),
            "no image for {id}"
        );
        assert!(!before.contains(url), "{id} still lists its old code");
    }
    // Every new code verifies and names its merchant; serials are distinct.
    let mut serials = std::collections::BTreeSet::new();
    for (id, url) in &rows {
        let out = yisaozhi(&["codes", "verify", url, "--key-dir", "demo/keys"], d);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{id}: {text}");
        assert!(text.starts_with("valid:"), "{id}: {text}");
        assert!(text.contains(&format!("merchant {id},")), "{id}: {text}");
        let serial = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .skip_while(|w| *w != "serial")
            .nth(1)
            .map(str::to_owned);
        serials.insert(serial.unwrap_or_else(|| panic!("no serial in {text}")));
    }
    assert_eq!(serials.len(), 74);
}

/// Codes issued one after another (a steady stream of small writes, read
/// beside) keep the embedded store's WAL bounded: it is copied into the
/// database and started over once it passes its limit (here 2 MiB), where
/// it used to grow by every page written (4 GB for 100,000 codes).
#[test]
fn issuing_every_code_keeps_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = yisaozhi(args, d);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "gen",
        "--merchants",
        "3000",
        "--records",
        "3000",
        "--seed",
        "5",
        "--out",
        "in",
    ]);
    run(&["keys", "generate", "--store", "embedded:data"]);
    run(&[
        "refresh",
        "--store",
        "embedded:data",
        "--merchants",
        "in/merchants.jsonl",
        "--records",
        "in/records.jsonl",
        "--full",
    ]);
    let mut issue = Command::new(BIN);
    issue
        .args([
            "codes", "issue", "--all", "--out", "printed", "--format", "png",
        ])
        .args(["--module-px", "1", "--store", "embedded:data"])
        .current_dir(d)
        .env("YSZ_EMBEDDED_WAL_RESTART_BYTES", (2 << 20).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = issue.spawn().expect("run yisaozhi");
    let wal = d.join("data/yisaozhi.sqlite-wal");
    let mut largest = 0;
    let status = loop {
        if let Ok(m) = std::fs::metadata(&wal) {
            largest = largest.max(m.len());
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "codes issue failed");
    let issued = std::fs::read_dir(d.join("printed")).unwrap().count();
    assert_eq!(issued, 3000);
    // Each code writes ~40 KB of WAL pages: unbounded, 3,000 of them
    // leave ~120 MB; bounded, the WAL passes 2 MiB by what 100 ms of
    // writes add before the checkpoint thread next looks.
    assert!(
        largest < 32 << 20,
        "the WAL grew to {largest} bytes while codes were issued"
    );
}
