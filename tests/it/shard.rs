//! `yisaozhi refresh --shard I/N`: the real binary on generated data. The N
//! shards run one after another, and as N processes at once, end with
//! exactly the projections of one unsharded run, on the embedded store and
//! on a real Redis; each shard regrades only its own merchants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use yisaozhi::model::MerchantId;
use yisaozhi::store::embedded::EmbeddedStore;
use yisaozhi::store::redis::{RedisOptions, RedisStore};
use yisaozhi::store::Store;

use crate::redis_helpers;
use crate::refresh::{assert_same, without_updated_at};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
const AS_OF: &str = "2026-06-01";
const SHARDS: u32 = 3;
const MERCHANTS: usize = 3000;

fn cmd<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    // Small data through the embedded store's bulk import (the unsharded
    // run; shards never use it) and its scan-and-sort regrade (every run).
    c.args(args)
        .current_dir(dir)
        .env("YSZ_LOG", "warn")
        .env("YSZ_EMBEDDED_BULK_MIN", "1000")
        .env("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", "100")
        .env("YSZ_EMBEDDED_SORT_BYTES", "1000000");
    c
}

fn check<S: std::fmt::Debug>(args: &[S], out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "yisaozhi {args:?} failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn refresh_args(store: &str, shard: Option<u32>) -> Vec<String> {
    let mut a: Vec<String> = [
        "refresh",
        "--store",
        store,
        "--merchants",
        "data/merchants.jsonl",
        "--records",
        "data/records.jsonl",
        "--as-of",
        AS_OF,
    ]
    .map(String::from)
    .to_vec();
    match shard {
        Some(i) => a.extend([
            "--shard".into(),
            format!("{i}/{SHARDS}"),
            "--rejects".into(),
            format!("rejects-{i}.jsonl"),
        ]),
        None => a.extend(["--rejects".into(), "rejects.jsonl".into()]),
    }
    a
}

/// A number that follows `prefix` in `text`.
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

/// The generated data with, per shard, how many merchants and lines are its own.
struct Data {
    lines: u64,
    merchants: [u64; SHARDS as usize],
    lines_of: [u64; SHARDS as usize],
}

fn generate(dir: &Path) -> Data {
    let args = [
        "gen",
        "--merchants",
        "3000",
        "--records",
        "12000",
        "--seed",
        "7",
        "--out",
        "data",
    ];
    check(&args, &cmd(dir, &args).output().unwrap());
    let mut data = Data {
        lines: 0,
        merchants: [0; SHARDS as usize],
        lines_of: [0; SHARDS as usize],
    };
    for (file, field) in [("merchants.jsonl", "id"), ("records.jsonl", "merchant")] {
        let text = std::fs::read_to_string(dir.join("data").join(file)).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = MerchantId::parse(v[field].as_str().unwrap()).unwrap();
            let shard = id.shard(SHARDS) as usize;
            data.lines += 1;
            data.lines_of[shard] += 1;
            if field == "id" {
                data.merchants[shard] += 1;
            }
        }
    }
    assert_eq!(data.merchants.iter().sum::<u64>(), MERCHANTS as u64);
    assert!(
        data.merchants.iter().all(|&n| n > 800),
        "uneven shards: {:?}",
        data.merchants
    );
    data
}

/// Checks one shard's summary: its own merchants regraded, everyone
/// else's lines skipped, nothing rejected; returns how many it regraded.
fn check_shard_summary(data: &Data, i: u32, stdout: &str) -> u64 {
    let regraded = number_after(stdout, "regraded ");
    assert!(
        stdout.contains(&format!("merchants of shard {i}/{SHARDS}:")),
        "{stdout}"
    );
    assert_eq!(regraded, data.merchants[i as usize], "shard {i}: {stdout}");
    let skipped = number_after(stdout, "rejected 0, skipped ");
    assert_eq!(
        skipped,
        data.lines - data.lines_of[i as usize],
        "shard {i}: {stdout}"
    );
    assert_eq!(
        number_after(stdout, "imported "),
        data.lines_of[i as usize],
        "shard {i}: {stdout}"
    );
    regraded
}

/// Every projection of `store`, by merchant id, without `updated_at`.
async fn projections_of(store: &dyn Store) -> BTreeMap<String, Value> {
    without_updated_at(crate::helpers::all_projections(store).await)
}

/// Runs the full refresh into `full`, the shards one after another into
/// `sequential` and at once into `parallel`; `open` opens a store by its
/// `--store` value. Asserts the three end with the same projections and
/// nothing left due.
async fn full_sequential_parallel<F, Fut>(
    dir: &Path,
    data: &Data,
    [full, sequential, parallel]: [&str; 3],
    open: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Box<dyn Store>>,
{
    let args = refresh_args(full, None);
    let out = check(&args, &cmd(dir, &args).output().unwrap());
    assert!(
        out.contains(&format!("regraded {MERCHANTS} merchants:")),
        "{out}"
    );
    assert!(!out.contains("skipped"), "unsharded run: {out}");

    let mut total = 0;
    for i in 0..SHARDS {
        let args = refresh_args(sequential, Some(i));
        let out = check(&args, &cmd(dir, &args).output().unwrap());
        total += check_shard_summary(data, i, &out);
    }
    assert_eq!(total, MERCHANTS as u64);

    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let args = refresh_args(parallel, Some(i));
            let child = cmd(dir, &args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (i, args, child)
        })
        .collect();
    let mut total = 0;
    for (i, args, child) in children {
        let out = check(&args, &child.wait_with_output().unwrap());
        total += check_shard_summary(data, i, &out);
    }
    assert_eq!(total, MERCHANTS as u64);

    let as_of = AS_OF.parse().unwrap();
    let want = {
        let store = open(full.to_owned()).await;
        projections_of(store.as_ref()).await
    };
    assert_eq!(want.len(), MERCHANTS);
    for (name, spec) in [("one after another", sequential), ("at once", parallel)] {
        let store = open(spec.to_owned()).await;
        let got = projections_of(store.as_ref()).await;
        assert_same(&got, &want, &format!("{SHARDS} shards {name}"));
        let due = store.due_for_regrade(as_of).await.unwrap();
        assert!(due.is_empty(), "{name}: {} merchants still due", due.len());
        let ids: BTreeSet<_> = store
            .all_merchant_ids()
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(ids.len(), MERCHANTS, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_one_after_another_or_at_once_give_the_projections_of_one_full_run_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = generate(dir);
    let root = dir.to_owned();
    full_sequential_parallel(
        dir,
        &data,
        ["embedded:full", "embedded:seq", "embedded:par"],
        |spec| {
            let path = root.join(spec.strip_prefix("embedded:").unwrap());
            async move { Box::new(EmbeddedStore::open(&path).unwrap()) as Box<dyn Store> }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_one_after_another_or_at_once_give_the_projections_of_one_full_run_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = generate(dir);
    // The command line uses the default key prefix, so each store here is a
    // database of its own on the shared server (no other test selects one).
    let server = redis_helpers::standalone();
    let urls: Vec<String> = (11..14)
        .map(|db| {
            redis_helpers::redis_cli(server.port, &["-n", &db.to_string(), "flushdb"]);
            format!("{}/{db}", server.url())
        })
        .collect();
    full_sequential_parallel(
        dir,
        &data,
        [&urls[0], &urls[1], &urls[2]],
        |url| async move {
            Box::new(
                RedisStore::connect(&url, RedisOptions::default())
                    .await
                    .unwrap(),
            ) as Box<dyn Store>
        },
    )
    .await;
}

#[test]
fn a_bad_shard_is_refused_with_the_rule_it_breaks_and_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    for (shard, why) in [
        ("4/4", "I must be below N"),
        ("0/0", "N must be at least 1"),
        ("1", "expected I/N"),
        ("x/4", "whole numbers"),
    ] {
        let out = cmd(
            tmp.path(),
            &["refresh", "--store", "embedded:s", "--shard", shard],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{shard}: {stderr}");
        assert!(
            stderr.contains(&format!("'{shard}' for '--shard <I/N>'")) && stderr.contains(why),
            "{shard}: {stderr}"
        );
        assert!(
            !tmp.path().join("s").exists(),
            "{shard}: the store was opened"
        );
    }
}
