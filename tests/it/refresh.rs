//! The batch job as operators run it: the real binary on generated data.
//! Kill safety (SIGKILL at several moments, then a re-run), idempotent
//! re-runs, exact incremental regrading, and CSV input with every kind of
//! bad line. Small data only; the 10^6-merchant figures are in
//! BENCHMARKS.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use yisaozhi::store::embedded::EmbeddedStore;
use yisaozhi::store::redis::{RedisOptions, RedisStore};
use yisaozhi::store::BatchStore;

use crate::redis_helpers::{self, redis_cli};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");
const AS_OF: &str = "2026-06-01";

/// Store settings that push small data through the bulk-import path, the
/// scan-and-sort regrade and sort runs on disk; or keep it on the ordinary
/// per-batch path.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Bulk,
    Plain,
    /// Redis standalone: a bulk import of small data, its sort spilled to runs.
    RedisBulk,
}

fn cmd(dir: &Path, args: &[&str], path: Mode) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir).env("YSZ_LOG", "info");
    match path {
        Mode::Bulk => c
            .env("YSZ_EMBEDDED_BULK_MIN", "1000")
            .env("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", "100")
            .env("YSZ_EMBEDDED_SORT_BYTES", "1000000"),
        Mode::Plain => c
            .env("YSZ_EMBEDDED_BULK_MIN", "1000000000")
            .env("YSZ_EMBEDDED_SEQUENTIAL_READ_MIN", "1000000000"),
        Mode::RedisBulk => c
            .env("YSZ_REDIS_BULK_MIN", "1000")
            .env("YSZ_REDIS_SORT_BYTES", "300000"),
    };
    c
}

fn run(dir: &Path, args: &[&str], path: Mode) -> Output {
    let out = cmd(dir, args, path).output().expect("run yisaozhi");
    assert!(
        out.status.success(),
        "yisaozhi {args:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn gen(dir: &Path, args: &[&str]) {
    let mut all = vec!["gen"];
    all.extend_from_slice(args);
    run(dir, &all, Mode::Plain);
}

fn refresh_args<'a>(
    store: &'a str,
    merchants: Option<&'a str>,
    records: &'a str,
    as_of: &'a str,
) -> Vec<&'a str> {
    let mut a = vec!["refresh", "--store", store];
    if let Some(m) = merchants {
        a.extend(["--merchants", m]);
    }
    a.extend([
        "--records",
        records,
        "--as-of",
        as_of,
        "--rejects",
        "rejects.jsonl",
    ]);
    a
}

/// Every projection of the store at `dir`, by merchant id.
async fn projections(dir: &Path) -> BTreeMap<String, Value> {
    let store = EmbeddedStore::open(dir).expect("open store");
    crate::helpers::all_projections(&store).await
}

/// The search index of the store in `dir` answers what reading every
/// projection answers: the stats, and searches by part of a name, by id
/// and by grade.
async fn assert_search_agrees(dir: &Path, what: &str) {
    use yisaozhi::model::Projection;
    use yisaozhi::store::query::{MerchantQuery, Stats};
    use yisaozhi::store::RegulatorQueries;
    let store = EmbeddedStore::open(dir).expect("open store");
    let mut all: Vec<Projection> = Vec::new();
    loop {
        let page = store
            .projections_page(all.last().map(|p| p.merchant.id.clone()), 1000)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    let mut want = Stats::default();
    for p in &all {
        want.add(p);
    }
    let got = store.stats(None).await.expect("stats");
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&want).unwrap(),
        "{what}: stats"
    );
    let name: Vec<char> = all[all.len() / 2].merchant.name.chars().collect();
    let queries = [
        Some(name[..2].iter().collect::<String>()),
        Some(name[name.len() - 2..].iter().collect::<String>()),
        Some(all[all.len() / 3].merchant.id.to_string()),
        None,
    ];
    for q in queries {
        let query = MerchantQuery {
            q: q.clone(),
            grade: q.is_none().then_some(all[0].grade),
            page: 1,
            per_page: 50,
            ..MerchantQuery::default()
        };
        let matching: Vec<String> = all
            .iter()
            .filter(|p| query.matches(p))
            .map(|p| p.merchant.id.to_string())
            .collect();
        let page = store.search(&query).await.expect("search");
        let ids: Vec<String> = page
            .items
            .iter()
            .map(|p| p.merchant.id.to_string())
            .collect();
        assert_eq!(
            page.total,
            matching.len() as u64,
            "{what}: total of {query:?}"
        );
        assert_eq!(ids[..], matching[..ids.len()], "{what}: page of {query:?}");
        assert_eq!(ids.len(), matching.len().min(50), "{what}: {query:?}");
    }
}

pub(crate) fn without_updated_at(mut all: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    for p in all.values_mut() {
        p.as_object_mut().unwrap().remove("updated_at");
    }
    all
}

pub(crate) fn assert_same(
    got: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: number of projections");
    for (id, w) in want {
        assert_eq!(got.get(id), Some(w), "{what}: projection of {id} differs");
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a refresh into a fresh store and kills it (SIGKILL) as soon as its
/// log shows the `nth` line containing `marker`, then runs it again to
/// completion. Returns whether the kill landed on the running refresh: the
/// marker was seen and the process ended by the signal, not by itself.
async fn kill_and_rerun(dir: &Path, store: &str, (marker, nth): (&str, usize), path: Mode) -> bool {
    use std::io::BufRead as _;
    use std::os::unix::process::ExitStatusExt as _;
    let args = refresh_args(
        store,
        Some("data/merchants.jsonl"),
        "data/records.jsonl",
        AS_OF,
    );
    let mut child = cmd(dir, &args, path)
        // Per-chunk lines ("records written") are at DEBUG.
        .env("YSZ_LOG", "info,yisaozhi::refresh=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start refresh");
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = 0;
    for line in log.by_ref() {
        if line.unwrap_or_default().contains(marker) {
            seen += 1;
            if seen == nth {
                break;
            }
        }
    }
    child.kill().ok();
    let status = child.wait().expect("wait for the killed refresh");
    drop(log);
    let landed = seen == nth && status.signal() == Some(9);
    if !landed {
        eprintln!("{path:?}: kill at {marker:?} #{nth} missed: seen {seen}, {status}");
    }
    let out = run(dir, &args, path);
    assert!(stdout(&out).contains("rejected 0"), "{}", stdout(&out));
    landed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_killed_at_any_moment_and_run_again_ends_like_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    gen(
        dir,
        &[
            "--merchants",
            "5000",
            "--records",
            "60000",
            "--seed",
            "11",
            "--out",
            "data",
        ],
    );

    for path in [Mode::Bulk, Mode::Plain] {
        let reference = dir.join(format!("reference-{path:?}"));
        let store = format!("embedded:{}", reference.display());
        let args = refresh_args(
            &store,
            Some("data/merchants.jsonl"),
            "data/records.jsonl",
            AS_OF,
        );
        let out = run(dir, &args, path);
        assert!(
            stdout(&out).contains("regraded 5000 merchants"),
            "{}",
            stdout(&out)
        );
        let want = without_updated_at(projections(&reference).await);
        assert_eq!(want.len(), 5000);
        assert_search_agrees(&reference, &format!("{path:?}")).await;

        // Moments named by what the refresh logs, not by fractions of a
        // reference duration: the same phases whatever the machine's load.
        let moments: &[(&str, usize)] = match path {
            Mode::Bulk => &[
                // Merchants committed, bulk import begun.
                ("importing records", 1),
                // Records partly committed, their index keys deferred.
                ("records written", 1),
                // Index keys and marks written, nothing regraded yet.
                ("import done", 1),
                // Records sorted by merchant, projections being written.
                ("records scanned and sorted", 1),
            ],
            Mode::Plain | Mode::RedisBulk => &[("records written", 1), ("regrade started", 1)],
        };
        let mut hits = 0;
        for (i, moment) in moments.iter().enumerate() {
            let killed = dir.join(format!("killed-{path:?}-{i}"));
            let store = format!("embedded:{}", killed.display());
            if kill_and_rerun(dir, &store, *moment, path).await {
                hits += 1;
            }
            let got = without_updated_at(projections(&killed).await);
            assert_same(&got, &want, &format!("{path:?}, killed at {moment:?}"));
            assert_search_agrees(&killed, &format!("{path:?}, killed at {moment:?}")).await;
            let store = EmbeddedStore::open(&killed).unwrap();
            let due = store.due_for_regrade(AS_OF.parse().unwrap()).await.unwrap();
            assert!(
                due.is_empty(),
                "{path:?}: still due after the re-run: {}",
                due.len()
            );
            drop(store);
            let leftovers: Vec<PathBuf> = std::fs::read_dir(&killed)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("sort-")
                })
                .collect();
            assert!(
                leftovers.is_empty(),
                "sort files left behind: {leftovers:?}"
            );
        }
        assert!(
            hits >= moments.len() - 1,
            "{path:?}: only {hits} kills hit a running refresh"
        );

        // The same inputs again: nothing imported, nobody regraded, every
        // projection byte for byte as it was (updated_at included).
        let before = projections(&reference).await;
        let out = run(dir, &args, path);
        let s = stdout(&out);
        assert!(s.contains("imported 0, duplicate 65000, rejected 0"), "{s}");
        assert!(s.contains("regraded 0 merchants"), "{s}");
        assert_eq!(projections(&reference).await, before);
    }
}

/// Every projection of the Redis store at `url` (default prefix), and every
/// merchant's records (ids in list order).
async fn redis_contents(url: &str) -> (BTreeMap<String, Value>, BTreeMap<String, Vec<String>>) {
    let store = RedisStore::connect(url, RedisOptions::default())
        .await
        .expect("connect");
    let projections = crate::helpers::all_projections(&store).await;
    let mut records = BTreeMap::new();
    for id in store.all_merchant_ids().await.expect("merchant ids") {
        let ids = store
            .records(&id)
            .await
            .expect("records")
            .into_iter()
            .map(|r| r.id)
            .collect();
        records.insert(id.to_string(), ids);
    }
    let due = store.due_for_regrade(AS_OF.parse().unwrap()).await.unwrap();
    assert!(due.is_empty(), "still due: {}", due.len());
    (without_updated_at(projections), records)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_bulk_refresh_killed_at_any_moment_and_run_again_ends_like_an_uninterrupted_one() {
    redis_bulk_refresh_killed_and_run_again(700).await;
}

/// A first load without repeated ids is graded from the import's sort: the
/// same projections as a regrade that reads the stored lists, and the same
/// kill safety.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_first_load_graded_from_its_sort_ends_like_a_regrade_from_the_lists_even_when_killed(
) {
    redis_bulk_refresh_killed_and_run_again(0).await;
}

/// A Redis bulk refresh of 3,000 merchants and 40,000 records, the first
/// `repeats` of them again at the end of the input, killed at several
/// moments and run again: the same projections and records as an
/// uninterrupted run.
async fn redis_bulk_refresh_killed_and_run_again(repeats: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    gen(
        dir,
        &[
            "--merchants",
            "3000",
            "--records",
            "40000",
            "--seed",
            "12",
            "--out",
            "data",
        ],
    );
    // Repeats later in the input: the first record of each id counts, once.
    let path = dir.join("data/records.jsonl");
    let lines = std::fs::read_to_string(&path).unwrap();
    let again: String = lines
        .lines()
        .take(repeats)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, format!("{lines}{again}")).unwrap();

    let reference = redis_helpers::own_standalone();
    let store = format!("redis://127.0.0.1:{}", reference.port);
    let args = refresh_args(
        &store,
        Some("data/merchants.jsonl"),
        "data/records.jsonl",
        AS_OF,
    );
    let out = run(dir, &args, Mode::RedisBulk);
    let s = stdout(&out);
    assert!(s.contains("regraded 3000 merchants"), "{s}");
    assert!(
        s.contains(&format!("duplicate {repeats}, rejected 0")),
        "{s}"
    );
    let (want, want_records) = redis_contents(&reference.url()).await;
    assert_eq!(want.len(), 3000);
    assert_eq!(want_records.values().map(Vec::len).sum::<usize>(), 40000);
    // Graded again from the stored lists: the same projections.
    let mut full = args.clone();
    full.push("--full");
    let s = stdout(&run(dir, &full, Mode::RedisBulk));
    assert!(s.contains("regraded 3000 merchants"), "{s}");
    assert!(
        s.contains(&format!("imported 0, duplicate {}", 43000 + repeats)),
        "{s}"
    );
    let (from_lists, _) = redis_contents(&reference.url()).await;
    assert_same(&from_lists, &want, "Redis, graded again from the lists");

    let work = redis_helpers::own_standalone();
    let store = format!("redis://127.0.0.1:{}", work.port);
    let moments: &[(&str, usize)] = &[
        // Records checked and sorted, none stored yet.
        ("records written", 1),
        // Sorted records being stored merchant by merchant.
        ("storing the sorted records", 1),
        // Everything stored and marked, projections being written.
        ("regrade started", 1),
    ];
    let mut hits = 0;
    for moment in moments {
        redis_cli(work.port, &["FLUSHALL"]);
        if kill_and_rerun(dir, &store, *moment, Mode::RedisBulk).await {
            hits += 1;
        }
        let (got, records) = redis_contents(&work.url()).await;
        assert_same(&got, &want, &format!("Redis, killed at {moment:?}"));
        assert_eq!(
            records, want_records,
            "Redis, killed at {moment:?}: records"
        );
    }
    assert!(
        hits >= moments.len() - 1,
        "only {hits} kills hit a running refresh"
    );

    // The same inputs again: nothing imported, nobody regraded.
    let out = run(dir, &args, Mode::RedisBulk);
    let s = stdout(&out);
    assert!(
        s.contains(&format!(
            "imported 0, duplicate {}, rejected 0",
            43000 + repeats
        )),
        "{s}"
    );
    assert!(s.contains("regraded 0 merchants"), "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_refresh_regrades_exactly_the_merchants_with_new_records_or_a_due_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    gen(
        dir,
        &[
            "--merchants",
            "2000",
            "--records",
            "20000",
            "--seed",
            "5",
            "--out",
            "base",
        ],
    );
    gen(
        dir,
        &[
            "--merchants",
            "2000",
            "--records",
            "300",
            "--seed",
            "6",
            "--touch",
            "20",
            "--first-record",
            "20000",
            "--days",
            "60",
            "--records-only",
            "--out",
            "delta",
        ],
    );
    let store_dir = dir.join("store");
    let store = format!("embedded:{}", store_dir.display());
    for path in [Mode::Plain, Mode::Bulk] {
        std::fs::remove_dir_all(&store_dir).ok();
        run(
            dir,
            &refresh_args(
                &store,
                Some("base/merchants.jsonl"),
                "base/records.jsonl",
                AS_OF,
            ),
            path,
        );
        let before = projections(&store_dir).await;

        let next_day = "2026-06-20";
        let touched: BTreeSet<String> = std::fs::read_to_string(dir.join("delta/records.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["merchant"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let due_by_date: BTreeSet<String> = before
            .iter()
            .filter(|(_, p)| p["next_change_at"].as_str().is_some_and(|d| d <= next_day))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(touched.len(), 20);
        assert!(
            !due_by_date.is_empty(),
            "no merchant's grade may change on {next_day}"
        );
        let expected: BTreeSet<String> = touched.union(&due_by_date).cloned().collect();

        let out = run(
            dir,
            &refresh_args(&store, None, "delta/records.jsonl", next_day),
            path,
        );
        let s = stdout(&out);
        assert!(s.contains("imported 300, duplicate 0, rejected 0"), "{s}");
        assert!(
            s.contains(&format!("regraded {} merchants", expected.len())),
            "{path:?}: {s}"
        );

        let after = projections(&store_dir).await;
        assert_eq!(after.len(), before.len());
        for (id, p) in &after {
            if expected.contains(id) {
                assert_ne!(
                    p["updated_at"], before[id]["updated_at"],
                    "{id} was not regraded"
                );
                assert_eq!(p["as_of"], next_day);
            } else {
                assert_eq!(
                    p, &before[id],
                    "{id} was touched although nothing changed for it"
                );
            }
        }

        // The nightly job re-reads the unchanged merchants file: nothing to do.
        let out = run(
            dir,
            &refresh_args(
                &store,
                Some("base/merchants.jsonl"),
                "delta/records.jsonl",
                next_day,
            ),
            path,
        );
        let s = stdout(&out);
        assert!(s.contains("imported 0, duplicate 2300, rejected 0"), "{s}");
        assert!(s.contains("regraded 0 merchants"), "{s}");
        assert_eq!(projections(&store_dir).await, after);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_input_gives_the_same_projections_as_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    gen(
        dir,
        &[
            "--merchants",
            "1500",
            "--records",
            "15000",
            "--seed",
            "9",
            "--out",
            "j",
        ],
    );
    gen(
        dir,
        &[
            "--merchants",
            "1500",
            "--records",
            "15000",
            "--seed",
            "9",
            "--out",
            "c",
            "--format",
            "csv",
        ],
    );
    let kinds = [
        "inspection",
        "sampling",
        "penalty",
        "complaint",
        "list",
        "self_report",
        "commitment",
    ];
    for kind in kinds {
        assert!(dir.join(format!("c/{kind}.csv")).exists(), "{kind}.csv");
    }
    run(
        dir,
        &refresh_args(
            "embedded:sj",
            Some("j/merchants.jsonl"),
            "j/records.jsonl",
            AS_OF,
        ),
        Mode::Plain,
    );
    // A directory of CSV files, one per kind.
    let out = run(
        dir,
        &refresh_args("embedded:sc", Some("c/merchants.csv"), "c", AS_OF),
        Mode::Bulk,
    );
    assert!(
        stdout(&out).contains("imported 16500, duplicate 0, rejected 0"),
        "{}",
        stdout(&out)
    );
    let j = without_updated_at(projections(&dir.join("sj")).await);
    let c = without_updated_at(projections(&dir.join("sc")).await);
    assert_same(&c, &j, "CSV against JSONL");
}

#[test]
fn every_bad_csv_line_goes_to_the_rejects_file_with_file_line_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("merchants.csv"),
        "id,name,kind,uscc,address,region,categories,contact_name,contact_phone\n\
         M1,测试商店,shop,91350100M000100Y43,某路1号,511504,食品;酒类,张三,13800000000\n\
         M2,坏代码,shop,91350100M000100Y44,某路2号,511504,,,\n\
         V1,流动摊贩,vendor,,集市,511504,食品,,\n",
    )
    .unwrap();
    // No `kind` column: the file name says which kind.
    std::fs::write(
        d.join("inspection.csv"),
        "id,merchant,date,source,hazards,deadline,rectified,rectified_on\n\
         i1,M1,2026-03-01,\"双随机,第2批\",2,2026-03-15,false,\n\
         i2,M1,2026-13-01,x,0,,true,\n\
         i3,NOPE,2026-03-01,x,0,,true,\n\
         i4,M1,2026-03-01,x,abc,,true,\n\
         i5,M1,2026-03-01,x,,,true,\n\
         i6,V1,2026-04-01,x,0,,maybe,\n\
         i7,V1,2026-04-01,x,0\n",
    )
    .unwrap();
    let mut sampling = b"id,merchant,kind,date,product,passed,failed_items\n".to_vec();
    sampling.extend_from_slice("s1,M1,sampling,2026-02-01,散装白酒,false,甲醇;铅\n".as_bytes());
    sampling.extend_from_slice(
        format!("s2,M1,sampling,2026-02-01,{},true,\n", "长".repeat(30_000)).as_bytes(),
    );
    sampling.extend_from_slice(b"s3,M1,sampling,2026-02-01,\xff\xfe,true,\n");
    sampling.extend_from_slice("s4,M1,sampled,2026-02-01,大米,true,\n".as_bytes());
    sampling.extend_from_slice("s5,V1,sampling,2026-02-01,\"多行\n产品\",true,\n".as_bytes());
    sampling.extend_from_slice("s6,V1,sampling,2026-05-01,大米,true,\n".as_bytes());
    std::fs::write(d.join("sampling.csv"), sampling).unwrap();
    std::fs::write(
        d.join("misc.csv"),
        "id,merchant,date,summary\nc1,M1,2026-03-01,承诺\n",
    )
    .unwrap();

    let args = [
        "refresh",
        "--store",
        "embedded:store",
        "--merchants",
        "merchants.csv",
        "--records",
        "inspection.csv",
        "sampling.csv",
        "misc.csv",
        "--as-of",
        AS_OF,
        "--rejects",
        "rejects.jsonl",
    ];
    let out = run(d, &args, Mode::Plain);
    let s = stdout(&out);
    // Good: 2 merchants, i1, s1, s6.
    assert!(
        s.contains("read 22 lines: imported 5, duplicate 0, rejected 12"),
        "{s}"
    );
    assert!(s.contains("red 1"), "{s}"); // M1: overdue hazard (R4) and a failed sample
    let rejects: Vec<(String, u64, String)> = std::fs::read_to_string(d.join("rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["file"].as_str().unwrap().to_owned(),
                v["line"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: &[(&str, u64, &str)] = &[
        ("merchants.csv", 3, "check character does not match"),
        (
            "inspection.csv",
            3,
            "field `date`: expected YYYY-MM-DD, got `2026-13-01`",
        ),
        (
            "inspection.csv",
            5,
            "field `hazards`: expected an integer ≥ 0, got `abc`",
        ),
        ("inspection.csv", 6, "missing field `hazards`"),
        (
            "inspection.csv",
            7,
            "field `rectified`: expected true or false, got `maybe`",
        ),
        (
            "inspection.csv",
            8,
            "expected 8 fields as in the header row, got 5",
        ),
        ("inspection.csv", 4, "unknown merchant `NOPE`"),
        ("sampling.csv", 3, "line longer than 65536 bytes"),
        ("sampling.csv", 4, "not valid UTF-8"),
        ("sampling.csv", 5, "unknown kind `sampled`"),
        (
            "sampling.csv",
            6,
            "field `product`: contains a control character",
        ),
        (
            "misc.csv",
            2,
            "missing field `kind`: add a `kind` column or name the file after its record kind",
        ),
    ];
    assert_eq!(rejects.len(), want.len(), "{rejects:#?}");
    for ((file, line, reason), (wfile, wline, wreason)) in rejects.iter().zip(want) {
        assert_eq!((file.as_str(), *line), (*wfile, *wline), "{rejects:#?}");
        assert!(
            reason.contains(wreason),
            "{file}:{line}: {reason}\n  want: {wreason}"
        );
    }
}

/// Issue 17: hidden characters, repeated keys and out-of-range fines are
/// rejected with file, line and reason, from JSONL and CSV alike; lines in
/// Python's layout are imported, and a second run of the same files adds
/// nothing and rejects the same lines.
#[test]
fn hidden_characters_repeated_keys_and_huge_fines_go_to_the_rejects_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("merchants.jsonl"),
        concat!(
            r#"{"id": "M1", "name": "好味超市", "kind": "shop", "address": "南岸东路1号", "region": "511504", "categories": ["食品"]}"#,
            "\n",
            r#"{"id":"M2","name":"好味\u202e市超","kind":"shop","address":"路","region":"511504","categories":[]}"#,
            "\n",
            r#"{"id":"M3","name":"店","kind":"shop","address":"路","region":"511504","categories":[],"region":"511521"}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("records.jsonl"),
        concat!(
            r#"{"id": "r1", "merchant": "M1", "kind": "commitment", "date": "2026-03-01", "summary": "\u8bda\u4fe1\n\u7ecf\u8425"}"#,
            "\n",
            r#"{"id":"r2","merchant":"M1","kind":"complaint","date":"2026-03-01","substantiated":true,"summary":"a\u0000b"}"#,
            "\n",
            r#"{"id":"r3","merchant":"M1","kind":"complaint","date":"2026-03-01","date":"2026-04-01","substantiated":true}"#,
            "\n",
            r#"{"id":"r4","merchant":"M1","kind":"penalty","date":"2026-03-01","decision_no":"P-1","severity":"minor","fine_cny":1e12}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("complaint.csv"),
        "id,merchant,date,substantiated,summary\n\
         c1,M1,2026-03-02,true,\"多行\n摘要\"\n\
         c2,M1,2026-03-02,true,退款\u{2067}完成\n",
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
        "complaint.csv",
        "--as-of",
        AS_OF,
        "--rejects",
        "rejects.jsonl",
    ];
    for (run_no, imported) in [(1, 3), (2, 0)] {
        let out = run(d, &args, Mode::Plain);
        let s = stdout(&out);
        assert!(
            s.contains(&format!(
                "imported {imported}, duplicate {}, rejected 6",
                3 - imported
            )),
            "run {run_no}: {s}"
        );
        let rejects: Vec<(String, u64, String)> = std::fs::read_to_string(d.join("rejects.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["file"].as_str().unwrap().to_owned(),
                    v["line"].as_u64().unwrap(),
                    v["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: &[(&str, u64, &str)] = &[
            (
                "merchants.jsonl",
                2,
                "field `name`: contains an invisible bidirectional formatting character (U+202E) at character 3",
            ),
            ("merchants.jsonl", 3, "key `region` appears twice in one object"),
            (
                "records.jsonl",
                2,
                "field `summary`: contains a control character (U+0000) at character 2",
            ),
            ("records.jsonl", 3, "key `date` appears twice in one object"),
            (
                "records.jsonl",
                4,
                "field `fine_cny`: expected at most 100000000000 (10^11 CNY)",
            ),
            (
                "complaint.csv",
                4,
                "field `summary`: contains an invisible bidirectional formatting character (U+2067)",
            ),
        ];
        assert_eq!(rejects.len(), want.len(), "run {run_no}: {rejects:#?}");
        for ((file, line, reason), (wfile, wline, wreason)) in rejects.iter().zip(want) {
            assert_eq!((file.as_str(), *line), (*wfile, *wline), "{rejects:#?}");
            assert!(
                reason.contains(wreason),
                "{file}:{line}: {reason}\n  want: {wreason}"
            );
        }
    }
}
