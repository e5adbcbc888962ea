//! The refresh job's Redis write phase on its own: `put_projections` of
//! realistic projections, in the batches the refresh writer uses.
//!
//! ```sh
//! cargo bench --bench redis_writes -- --redis redis://127.0.0.1:PORT --input DIR [--size-only]
//! ```
//!
//! DIR holds `merchants.jsonl` and `records.jsonl` (`yisaozhi gen`); every
//! merchant is graded as the refresh grades it (default rules). `--size-only`
//! prints the mean projection JSON size and exits (for `redis-benchmark -d`).
//! Otherwise one round: `FLUSHDB`, the merchants upserted (which marks them
//! for regrading, as a refresh's import does), then, timed, every projection
//! written with `put_projections` in batches of 32,768 (each projection one
//! atomic write: the projection, its regrade mark cleared, its due-index
//! entry; each batch's change notice). Prints `projections=N secs=S
//! rate=R/s`. `benches/redis_writes.sh` runs it against `redis-benchmark`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use yisaozhi::grading::{self, Rules};
use yisaozhi::model::{Merchant, Projection, Record};
use yisaozhi::records;
use yisaozhi::store::redis::{RedisOptions, RedisStore};
use yisaozhi::store::BatchStore;

/// The refresh job's allocator, so the write path runs as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Projections per `put_projections` call, as in `refresh::WRITE_BATCH`.
const WRITE_BATCH: usize = 32 * 1024;

fn lines(path: &Path) -> impl Iterator<Item = String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(file)
        .lines()
        .map(|l| l.expect("read line"))
        .filter(|l| !l.trim().is_empty())
}

fn projections(dir: &Path) -> (Vec<Merchant>, Vec<Projection>) {
    let merchants: Vec<Merchant> = lines(&dir.join("merchants.jsonl"))
        .map(|l| records::parse_merchant(&l).expect("merchant line"))
        .collect();
    let mut by_merchant: HashMap<String, Vec<Record>> = HashMap::new();
    for l in lines(&dir.join("records.jsonl")) {
        let r = records::parse_record(&l).expect("record line");
        by_merchant
            .entry(r.merchant.as_str().to_owned())
            .or_default()
            .push(r);
    }
    let rules = Rules::default();
    let as_of = jiff::civil::date(2026, 11, 29);
    let now = jiff::Timestamp::now();
    let empty = Vec::new();
    let projections = merchants
        .par_iter()
        .map(|m| {
            let rs = by_merchant.get(m.id.as_str()).unwrap_or(&empty);
            grading::project(m, rs, None, &rules, as_of, now)
        })
        .collect();
    (merchants, projections)
}

fn main() {
    let mut redis = None;
    let mut input = None;
    let mut size_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--redis" => redis = args.next(),
            "--input" => input = args.next().map(PathBuf::from),
            "--size-only" => size_only = true,
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    let input = input.expect("--input DIR");
    let (merchants, projections) = projections(&input);
    let bytes: usize = projections
        .iter()
        .map(|p| serde_json::to_string(p).expect("json").len())
        .sum();
    let mean = bytes / projections.len().max(1);
    println!("projection_bytes={mean} projections={}", projections.len());
    if size_only {
        return;
    }
    let url = redis.expect("--redis redis://HOST:PORT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let opts = RedisOptions {
            response_timeout: std::time::Duration::from_secs(30),
            ..RedisOptions::default()
        };
        let store = RedisStore::connect(&url, opts).await.expect("connect");
        let client = ::redis::Client::open(url.as_str()).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        ::redis::cmd("FLUSHDB")
            .query_async::<()>(&mut conn)
            .await
            .expect("FLUSHDB");
        // Untimed for the ratio; printed because the refresh's import
        // starts with the same upsert.
        let upsert = Instant::now();
        for chunk in merchants.chunks(WRITE_BATCH) {
            store
                .upsert_merchants(chunk.to_vec())
                .await
                .expect("merchants");
        }
        println!(
            "merchants={} upsert_secs={:.3}",
            merchants.len(),
            upsert.elapsed().as_secs_f64()
        );
        let batches: Vec<Vec<Projection>> = projections
            .chunks(WRITE_BATCH)
            .map(<[Projection]>::to_vec)
            .collect();
        let started = Instant::now();
        for batch in batches {
            store.put_projections(batch).await.expect("put_projections");
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "projections={} secs={secs:.3} rate={:.0}/s",
            projections.len(),
            projections.len() as f64 / secs
        );
    });
}
