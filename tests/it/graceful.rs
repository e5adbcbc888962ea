//! Graceful stops of the real binary. A refresh sent SIGTERM or SIGINT stops
//! at a safe point (mid-import, mid-regrade), exits 143 or 130 and says so;
//! the same command run again ends exactly like an uninterrupted run. The
//! service, sent SIGTERM, finishes the request in flight, takes no new
//! connection and exits 0.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yisaozhi::store::embedded::EmbeddedStore;
use yisaozhi::store::{BatchStore, RegulatorQueries};

use crate::refresh::{assert_same, without_updated_at};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
const AS_OF: &str = "2026-06-01";
const MERCHANTS: u64 = 5000;

/// A refresh of the generated data into `store`, through the embedded
/// store's bulk import and scan-and-sort regrade (thresholds lowered as in
/// tests/it/refresh.rs), logging at info.
fn refresh(dir: &Path, store: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "refresh",
        "--store",
        store,
        "--merchants",
        "data/merchants.jsonl",
        "--records",
        "data/records.jsonl",
        "--as-of",
        AS_OF,
        "--rejects",
        "rejects.jsonl",
    ])
    .current_dir(dir)
    .env("YSZ_LOG", "info")
    .env("YSZ_EMBEDDED_BULK_MIN", "1000")
    .env("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", "100")
    .env("YSZ_EMBEDDED_SORT_BYTES", "1000000");
    c
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("run yisaozhi");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{c:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -s {signal} {pid}");
}

/// Runs `c`, sends `signal` as soon as a line of its log contains `when`;
/// returns its exit status, stdout and log.
fn signal_when(mut c: Command, when: &str, signal: &str) -> (ExitStatus, String, String) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start refresh");
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let mut log = String::new();
    let mut sent = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        if !sent && line.contains(when) {
            kill(pid, signal);
            sent = true;
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(sent, "never saw `{when}` in the log:\n{log}");
    let out = out.join().unwrap();
    let last = out.lines().last().unwrap_or_default();
    println!("SIG{signal} on `{when}`: {status}; {last}");
    (status, out, log)
}

async fn projections(dir: &Path) -> BTreeMap<String, Value> {
    let store = EmbeddedStore::open(dir).expect("open store");
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.projections_page(after.clone(), 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.merchant.id.clone());
        for p in page {
            out.insert(p.merchant.id.to_string(), serde_json::to_value(&p).unwrap());
        }
    }
    without_updated_at(out)
}

fn sort_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sort-"))
        .collect()
}

fn number_after(text: &str, prefix: &str) -> u64 {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
        + prefix.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{prefix}` in\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_stopped_by_a_signal_exits_143_or_130_and_the_next_run_finishes_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    run_ok({
        let mut c = Command::new(BIN);
        c.args([
            "gen",
            "--merchants",
            "5000",
            "--records",
            "50000",
            "--seed",
            "13",
            "--out",
            "data",
        ])
        .current_dir(&dir);
        c
    });
    // The uninterrupted run, while the others are stopped and run again.
    let reference = std::thread::spawn({
        let dir = dir.clone();
        move || run_ok(refresh(&dir, "embedded:reference"))
    });

    // SIGTERM while the records are imported (two chunks of 32 Ki lines):
    // it stops after the first chunk's write.
    let (status, out, log) = signal_when(
        refresh(&dir, "embedded:import"),
        "importing records",
        "TERM",
    );
    assert_eq!(status.code(), Some(143), "{out}\n{log}");
    assert!(
        out.contains("stopped by SIGTERM at line 32768 of data/records.jsonl; run the same command again to finish"),
        "{out}"
    );
    assert!(out.contains("regraded 0 merchants"), "{out}");
    assert!(log.contains("stopped by SIGTERM"), "{log}");
    // The records file's last progress line says where it stopped, not "done".
    let records_progress: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("records records.jsonl: "))
        .collect();
    assert!(
        records_progress
            .last()
            .is_some_and(|l| l.ends_with(", stopped)")),
        "{log}"
    );
    let imported = number_after(&out, "imported ");
    assert_eq!(imported, MERCHANTS + 32768, "{out}");
    assert!(projections(&dir.join("import")).await.is_empty());
    let again = run_ok(refresh(&dir, "embedded:import"));
    assert!(
        again.contains("imported 17232, duplicate 37768, rejected 0"),
        "{again}"
    );
    assert!(
        again.contains(&format!("regraded {MERCHANTS} merchants")),
        "{again}"
    );

    // SIGINT once the regrade started: it writes what it graded and stops.
    let (status, out, log) =
        signal_when(refresh(&dir, "embedded:regrade"), "regrade started", "INT");
    assert_eq!(status.code(), Some(130), "{out}\n{log}");
    assert!(
        out.contains("; run the same command again to finish"),
        "{out}"
    );
    let done = number_after(&out, "stopped by SIGINT after regrading ");
    assert!(
        out.contains(&format!("after regrading {done} of {MERCHANTS} merchants")),
        "{out}"
    );
    assert!(0 < done && done < MERCHANTS, "{out}");
    assert_eq!(number_after(&out, "regraded "), done, "{out}");
    assert!(
        log.lines()
            .any(|l| l.contains("regrading: ") && l.ends_with(", stopped)")),
        "{log}"
    );
    let partial = projections(&dir.join("regrade")).await;
    assert_eq!(partial.len() as u64, done);
    assert!(
        sort_files(&dir.join("regrade")).is_empty(),
        "sort files left behind"
    );
    let again = run_ok(refresh(&dir, "embedded:regrade"));
    assert!(
        again.contains(&format!("regraded {} merchants", MERCHANTS - done)),
        "{again}"
    );

    let out = reference.join().unwrap();
    assert!(
        out.contains(&format!("regraded {MERCHANTS} merchants")),
        "{out}"
    );
    let want = projections(&dir.join("reference")).await;
    assert_eq!(want.len() as u64, MERCHANTS);
    for (name, got) in [("import", None), ("regrade", Some(partial))] {
        // What the stopped run wrote was already final.
        for (id, p) in got.iter().flatten() {
            assert_eq!(Some(p), want.get(id), "{name}: stopped run wrote {id}");
        }
        let store = dir.join(name);
        assert_same(
            &projections(&store).await,
            &want,
            &format!("stopped in the {name} and run again"),
        );
        let due = EmbeddedStore::open(&store)
            .unwrap()
            .due_for_regrade(AS_OF.parse().unwrap())
            .await
            .unwrap();
        assert!(due.is_empty(), "{name}: {} still due", due.len());
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_finishes_the_request_in_flight_on_sigterm_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let prepared = yisaozhi::demo::prepare(&data, 365).await.unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log_path = tmp.path().join("service.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--store"])
        .arg(format!("embedded:{}", data.display()))
        .env("YSZ_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "not serving");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A regulator posting records; the body is still on its way when the
    // service is told to stop.
    let today = yisaozhi::clock::today();
    let body = [
        json!({"id": "DRAIN-1", "merchant": "XZ-0002", "kind": "sampling", "date": today, "product": "豆腐", "passed": false, "failed_items": ["苯甲酸"]}),
        json!({"id": "DRAIN-2", "merchant": "XZ-0002", "kind": "complaint", "date": today, "substantiated": true}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/admin/records HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        prepared.token,
        body.len()
    )
    .unwrap();
    conn.write_all(first).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    drop(std::net::TcpStream::connect(&addr).expect("accepting before SIGTERM"));
    kill(child.id(), "TERM");
    let term = Instant::now();
    // The listener closes: new connections are refused.
    let refused = loop {
        match std::net::TcpStream::connect(&addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break term.elapsed(),
            Err(e) => panic!("connect: {e}"),
            Ok(_) => {
                assert!(
                    term.elapsed() < Duration::from_secs(5),
                    "still accepting connections 5 s after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    // The rest of the body: the request completes with its normal answer.
    conn.write_all(rest).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let answered = term.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["imported"], 2, "{json}");
    assert_eq!(json["rejected"], 0, "{json}");

    // Then it exits 0, within the 10 s shutdown timeout.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if term.elapsed() > Duration::from_secs(15) {
            child.kill().ok();
            panic!("still running 15 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let exited = term.elapsed();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(exited < Duration::from_secs(12), "exited after {exited:?}");
    assert!(!log.contains("panicked"), "{log}");
    println!(
        "SIGTERM → new connections refused after {refused:?}, in-flight request answered after {answered:?}, exit 0 after {exited:?}"
    );

    // The records it answered for are stored.
    let store = EmbeddedStore::open(&data).unwrap();
    let ids: Vec<String> = store
        .records(&yisaozhi::model::MerchantId::parse("XZ-0002").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(
        ids.iter().any(|i| i == "DRAIN-1") && ids.iter().any(|i| i == "DRAIN-2"),
        "{ids:?}"
    );
}
