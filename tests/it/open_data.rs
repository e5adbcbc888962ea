//! Open data (CONTRACT §8): `yisaozhi export` and `/open-data/*`: the
//! files are what the index says (SHA-256, bytes, rows), hold every
//! merchant and every sampling result and no personal data, and are served
//! with `ETag` and `If-None-Match`; no request waits for an export, and
//! none is answered from a half-written one.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::spawn_app;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
const FILES: [&str; 3] = ["merchants.jsonl.gz", "merchants.csv", "sampling.csv"];

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Checks the files of one export against its index and the demo data in
/// `data` (its input files): rows, hashes, every sampling result, no
/// personal data.
fn check_export(index: &Value, file: impl Fn(&str) -> Vec<u8>, data: &Path) {
    let merchants = lines(&data.join("merchants.jsonl"));
    let records = lines(&data.join("records.jsonl"));
    let sampling: Vec<&Value> = records.iter().filter(|r| r["kind"] == "sampling").collect();
    assert!(!sampling.is_empty());
    let listed: Vec<&str> = index["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, FILES);
    assert!(index["generated_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .is_ok());
    let mut texts = Vec::new();
    for entry in index["files"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let bytes = file(name);
        assert_eq!(entry["bytes"], bytes.len() as u64, "{name}");
        assert_eq!(
            entry["sha256"],
            data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes)),
            "{name}"
        );
        let text = if name.ends_with(".gz") {
            gunzip(&bytes)
        } else {
            String::from_utf8(bytes).unwrap()
        };
        let rows = text.lines().count() as u64 - u64::from(name.ends_with(".csv"));
        assert_eq!(entry["rows"], rows, "{name}");
        texts.push((name, text));
    }
    let (_, jsonl) = &texts[0];
    assert_eq!(jsonl.lines().count(), merchants.len(), "every merchant");
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for field in [
            "contact",
            "phone",
            "contact_name",
            "contact_phone",
            "id_number",
        ] {
            assert!(v["merchant"].get(field).is_none(), "{field} in {line}");
        }
        assert!(["green", "yellow", "red"].contains(&v["grade"].as_str().unwrap()));
    }
    let (_, csv) = &texts[1];
    assert!(csv.starts_with("id,name,kind,uscc,address,region,categories,grade,"));
    let (_, sampling_csv) = &texts[2];
    assert!(sampling_csv.starts_with(
        "merchant_id,merchant_name,record_id,date,product,standard,passed,failed_items\n"
    ));
    for r in &sampling {
        let id = r["id"].as_str().unwrap();
        let row = sampling_csv
            .lines()
            .find(|l| l.split(',').nth(2) == Some(id))
            .unwrap_or_else(|| panic!("sampling {id} missing"));
        assert!(
            row.starts_with(&format!("{},", r["merchant"].as_str().unwrap())),
            "{row}"
        );
        assert!(row.contains(r["product"].as_str().unwrap()), "{row}");
    }
    // No personal data anywhere: not the names, not the phones, not masked.
    for m in &merchants {
        for field in ["contact_name", "contact_phone", "id_number"] {
            let Some(secret) = m[field].as_str() else {
                continue;
            };
            // A shop named after its owner (万家福超市, contact 万家福)
            // shows that name as its own.
            let public = format!("{}{}", m["name"], m["address"]);
            if public.contains(secret) {
                continue;
            }
            for (name, text) in &texts {
                assert!(!text.contains(secret), "{field} `{secret}` in {name}");
            }
        }
        if let Some(phone) = m["contact_phone"].as_str() {
            let tail = &phone[phone.len() - 4..];
            for (name, text) in &texts {
                assert!(
                    !text.contains(&format!("****{tail}")),
                    "a masked phone in {name}"
                );
            }
        }
    }
}

/// `GET /open-data/{name}`, with `If-None-Match` if given.
async fn get(
    app: &crate::helpers::TestApp,
    name: &str,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.get(format!("{}/open-data/{name}", app.base));
    if let Some(etag) = if_none_match {
        req = req.header("If-None-Match", etag);
    }
    req.send().await.unwrap()
}

/// The served index once it is today's: polled (an export is made in the
/// background), with its ETag.
async fn todays_index(app: &crate::helpers::TestApp) -> (String, Value) {
    let today = yisaozhi::clock::today();
    for _ in 0..1200 {
        let res = get(app, "index.json", None).await;
        if res.status() == 200 {
            let etag = res.headers()["etag"].to_str().unwrap().to_owned();
            let index: Value = res.json().await.unwrap();
            let at: jiff::Timestamp = index["generated_at"].as_str().unwrap().parse().unwrap();
            if at.to_zoned(yisaozhi::clock::zone()).date() >= today {
                return (etag, index);
            }
        } else {
            assert_eq!(res.status(), 503);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no export of today published");
}

#[tokio::test]
async fn the_service_serves_todays_files_as_the_index_lists_them() {
    let app = spawn_app().await;
    // Before the first export the first request waits for it: a small
    // store is exported within the wait.
    let res = get(&app, "index.json", None).await;
    assert_eq!(res.status(), 200);
    let (index_etag, index) = todays_index(&app).await;
    let mut etags = Vec::new();
    let mut bodies = std::collections::BTreeMap::new();
    for name in FILES {
        let res = get(&app, name, None).await;
        assert_eq!(res.status(), 200, "{name}");
        etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
        bodies.insert(name, res.bytes().await.unwrap().to_vec());
    }
    check_export(&index, |name| bodies[name].clone(), app.dir.path());
    for (etag, entry) in etags.iter().zip(index["files"].as_array().unwrap()) {
        assert_eq!(*etag, format!("\"{}\"", entry["sha256"].as_str().unwrap()));
    }

    // If-None-Match: the current ETag (also among others, or weak) → 304.
    for (path, etag) in [
        ("index.json".to_owned(), index_etag.clone()),
        ("merchants.csv".to_owned(), etags[1].clone()),
        (
            "merchants.jsonl.gz".to_owned(),
            format!("\"x\", W/{}", etags[0]),
        ),
        ("sampling.csv".to_owned(), "*".to_owned()),
    ] {
        let res = get(&app, &path, Some(&etag)).await;
        assert_eq!(res.status(), 304, "{path} {etag}");
        assert!(res.headers().contains_key("etag"));
        assert!(res.bytes().await.unwrap().is_empty());
        let res = get(&app, &path, Some("\"0000\"")).await;
        assert_eq!(res.status(), 200, "{path}: another ETag");
    }
    // The same index until tomorrow: not made again per request.
    let (_, again) = app.get("/open-data/index.json").await;
    assert_eq!(again, index);

    for junk in ["passwd", "..%2Fyisaozhi.sqlite", "index.json.tmp", "keys"] {
        let (status, body) = app.get(&format!("/open-data/{junk}")).await;
        assert_eq!(status, 404, "{junk}: {body}");
        assert_eq!(body["error"], "not_found");
    }
}

/// The settings under which the embedded store reads the records as a
/// large store does: one pass, sorted on disk in runs of a few KiB.
const ONE_PASS: [(&str, &str); 2] = [
    ("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", "1"),
    ("YSZ_EMBEDDED_SORT_BYTES", "4096"),
];

/// `yisaozhi export --as-of 2026-11-29 --out OUT` of the embedded store in
/// `store`, with `env`; its stdout.
fn export_cli(store: &Path, out: &Path, env: &[(&str, &str)]) -> String {
    let run = Command::new(BIN)
        .args(["export", "--as-of", "2026-11-29", "--out"])
        .arg(out)
        .arg("--store")
        .arg(format!("embedded:{}", store.display()))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// The export as a large store makes it (the embedded store's one-pass
/// read of the records), checked like the service's.
#[tokio::test]
async fn export_writes_the_files_and_their_index() {
    let dir = tempfile::tempdir().unwrap();
    yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let out = dir.path().join("published");
    // The path a large store takes: one pass over the records, sorted on
    // disk in runs of a few KiB.
    let stdout = export_cli(dir.path(), &out, &ONE_PASS);
    for name in FILES {
        assert!(stdout.contains(name), "{stdout}");
    }
    let current = out.join("current");
    let index: Value =
        serde_json::from_slice(&std::fs::read(current.join("index.json")).unwrap()).unwrap();
    check_export(
        &index,
        |name| std::fs::read(current.join(name)).unwrap(),
        dir.path(),
    );
    assert_eq!(
        names(&current),
        [
            "index.json",
            "merchants.csv",
            "merchants.jsonl.gz",
            "sampling.csv"
        ],
        "no temporary file left"
    );
    let listed = names(&out);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[..2], [".lock", "current"]);
    assert!(listed[2].starts_with("export-"), "{listed:?}");
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file of the served export, each checked against its own ETag
/// (a file and the index it belongs to, never one of another export).
async fn served_files(app: &crate::helpers::TestApp) -> Vec<String> {
    let mut etags = Vec::new();
    for name in FILES {
        let res = get(app, name, None).await;
        assert_eq!(res.status(), 200, "{name}");
        assert!(res.headers().contains_key("last-modified"));
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let body = res.bytes().await.unwrap();
        let sha = data_encoding::HEXLOWER.encode(&Sha256::digest(&body));
        assert_eq!(
            etag,
            format!("\"{sha}\""),
            "{name}: the bytes its ETag names"
        );
        etags.push(sha);
    }
    etags
}

fn shas(index: &Value) -> Vec<String> {
    index["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["sha256"].as_str().unwrap().to_owned())
        .collect()
}

/// A day's first request is answered from the previous export while the
/// next is made in the background (here held back by another holder of
/// the export lock, as behind `yisaozhi export` in another process); a
/// half-written export, even one whose index claims today, is never
/// served; the next is served once published, and only the current and
/// the previous exports are kept.
#[tokio::test]
async fn requests_are_answered_from_the_previous_export_while_the_next_is_made() {
    let app = spawn_app().await;
    let dir = app.dir.path().join("open-data");
    todays_index(&app).await;
    // Make the published export yesterday's.
    let previous = std::fs::read_link(dir.join("current")).unwrap();
    let index_path = dir.join(&previous).join("index.json");
    let mut old: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let at: jiff::Timestamp = old["generated_at"].as_str().unwrap().parse().unwrap();
    old["generated_at"] = at
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .to_string()
        .into();
    std::fs::write(&index_path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    // Another export holds the lock; one that died half-way left its files.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(".lock"))
        .unwrap();
    yisaozhi::export::lock_exclusive(&lock).unwrap();
    let half = dir.join(".building-export-000000000000001");
    std::fs::create_dir(&half).unwrap();
    let mut claim = old.clone();
    claim["generated_at"] = jiff::Timestamp::now().to_string().into();
    std::fs::write(half.join("index.json"), claim.to_string()).unwrap();
    std::fs::write(half.join("merchants.csv"), "id,name\n").unwrap();

    for _ in 0..3 {
        let res = get(&app, "index.json", None).await;
        assert_eq!(res.status(), 200, "answered while the next export waits");
        assert!(res.headers().contains_key("last-modified"));
        let index: Value = res.json().await.unwrap();
        assert_eq!(index, old, "the previous export, with its date");
        assert_eq!(served_files(&app).await, shas(&old));
    }
    assert_eq!(std::fs::read_link(dir.join("current")).unwrap(), previous);

    // Released: the next export is made and published; every answer
    // meanwhile is one export's index and files.
    drop(lock);
    let today = yisaozhi::clock::today();
    let mut polls = 0;
    let new = loop {
        let res = get(&app, "index.json", None).await;
        assert_eq!(res.status(), 200);
        let index: Value = res.json().await.unwrap();
        served_files(&app).await;
        let at: jiff::Timestamp = index["generated_at"].as_str().unwrap().parse().unwrap();
        if at.to_zoned(yisaozhi::clock::zone()).date() >= today {
            break index;
        }
        polls += 1;
        assert!(polls < 1200, "no export of today published");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_ne!(new["generated_at"], old["generated_at"]);
    assert_eq!(served_files(&app).await, shas(&new));
    let current = std::fs::read_link(dir.join("current")).unwrap();
    assert_ne!(current, previous);
    check_export(
        &new,
        |name| std::fs::read(dir.join(&current).join(name)).unwrap(),
        app.dir.path(),
    );
    let listed = names(&dir);
    assert!(
        !half.exists(),
        "the half-written export is removed: {listed:?}"
    );
    let generations: Vec<&String> = listed.iter().filter(|n| n.starts_with("export-")).collect();
    assert_eq!(generations.len(), 2, "{listed:?}");
}

/// The files are the same, byte for byte, however the store is read: each
/// merchant's records looked up by index (a small store's path), or the
/// whole records table in one pass sorted on disk in runs of a few KiB (a
/// large store's), each export in its own process.
#[tokio::test]
async fn the_files_do_not_depend_on_how_the_store_is_read() {
    let dir = tempfile::tempdir().unwrap();
    yisaozhi::demo::prepare(dir.path(), 365).await.unwrap();
    let export = |out: &str, env: &[(&str, &str)]| {
        let out = dir.path().join(out);
        export_cli(dir.path(), &out, env);
        let current = out.join("current");
        let index: Value =
            serde_json::from_slice(&std::fs::read(current.join("index.json")).unwrap()).unwrap();
        let files: Vec<Vec<u8>> = FILES
            .iter()
            .map(|name| std::fs::read(current.join(name)).unwrap())
            .collect();
        (index["files"].clone(), files)
    };
    let (looked_up, looked_up_files) = export("by-lookup", &[]);
    let (sorted, sorted_files) = export("by-pass", &ONE_PASS);
    assert_eq!(looked_up, sorted);
    for ((name, a), b) in FILES.iter().zip(&looked_up_files).zip(&sorted_files) {
        assert!(a == b, "{name} differs");
    }
    assert!(looked_up[2]["rows"].as_u64().unwrap() > 0);
}

/// Before a directory's first export, a request that cannot have it within
/// the wait (another process holds the export lock) gets `503` with
/// `Retry-After` in the JSON envelope, and the files once it is published.
#[tokio::test]
async fn before_the_first_export_a_request_waits_a_while_then_gets_503_with_retry_after() {
    let app = spawn_app().await;
    let dir = app.dir.path().join("open-data");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .unwrap();
    yisaozhi::export::lock_exclusive(&lock).unwrap();
    let res = get(&app, "index.json", None).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "60");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    let res = get(&app, "merchants.csv", None).await;
    assert_eq!(res.status(), 503);
    drop(lock);
    todays_index(&app).await;
}
