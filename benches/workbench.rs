//! The workbench's queries on a store, timed in process (no HTTP): each
//! case `ROUNDS` times in turn, the median per case, beside the baseline of
//! the same run (one projection read by id, the merchant page's read).
//! `benches/workbench.sh` runs it on 10^6 merchants and adds the HTTP
//! first-byte times.
//!
//!   cargo run --release --example workbench -- embedded:DIR [ROUNDS=5] [CSV]
//!
//! With `QUEUES=1000,5000,20000` it times the dashboard's overdue-patrol
//! count instead, for grids holding each number of merchants (spread
//! evenly over the id order, as a township's are), and its pending-review
//! count beside 10,000 decided submissions, beside the same baseline: it
//! REPLACES the store's assistants' grids with its own and adds
//! submissions (use a copy of a store).
//!
//! Prints `case,median_ms,min_ms,max_ms,ratio_to_baseline,result` lines
//! (the result: a search's total, a count) and appends them to CSV, when
//! given, as rows of `benches/results/` (`COMMIT`, `MACHINE` and
//! `COMMAND` from the environment).

use std::io::Write;
use std::time::Instant;

use yisaozhi::model::{Grade, MerchantId, MerchantKind};
use yisaozhi::store::query::MerchantQuery;
use yisaozhi::store::{SharedStore, StoreSpec};

type Case = (&'static str, MerchantQuery);

fn query(q: Option<&str>, region: Option<&str>, grade: Option<Grade>) -> MerchantQuery {
    MerchantQuery {
        q: q.map(str::to_owned),
        region: region.map(str::to_owned),
        grade,
        page: 1,
        per_page: 20,
        ..MerchantQuery::default()
    }
}

/// The searches: what a township and a province clerk type.
fn searches(uscc: &str, id: &str) -> Vec<Case> {
    vec![
        ("search all, page 1", query(None, None, None)),
        (
            "search all, page 1000",
            MerchantQuery {
                page: 1000,
                ..query(None, None, None)
            },
        ),
        (
            "search district red",
            query(None, Some("511504"), Some(Grade::Red)),
        ),
        (
            "search category+kind+grade",
            MerchantQuery {
                category: Some("酒类".into()),
                kind: Some(MerchantKind::Vendor),
                grade: Some(Grade::Yellow),
                ..query(None, None, None)
            },
        ),
        ("search name 鑫源超市", query(Some("鑫源超市"), None, None)),
        (
            "search name 超市 in district",
            query(Some("超市"), Some("511504"), None),
        ),
        (
            "search name 超市 everywhere",
            query(Some("超市"), None, None),
        ),
        (
            "search name 超市 page 100",
            MerchantQuery {
                page: 100,
                ..query(Some("超市"), None, None)
            },
        ),
        (
            "search name 超市 red",
            query(Some("超市"), None, Some(Grade::Red)),
        ),
        ("search credit code", query(Some(uscc), None, None)),
        ("search id", query(Some(id), None, None)),
    ]
}

/// Twelve weeks of daily counts, as a dashboard reads them after twelve
/// weeks of daily refreshes: the days before the last refreshed one that
/// have no document get a copy of its document. Returns that last day.
async fn seed_trend(store: &SharedStore) -> anyhow::Result<jiff::civil::Date> {
    use jiff::ToSpan;
    use yisaozhi::store::query::{DayCounts, DAILY_COUNTS};
    use yisaozhi::store::Expect;
    let docs = store.documents(DAILY_COUNTS, None, 10_000).await?;
    let (_, last) = docs
        .last()
        .ok_or_else(|| anyhow::anyhow!("no daily counts: run a refresh first"))?;
    let last: DayCounts = serde_json::from_str(last)?;
    for back in 1..yisaozhi::dashboard::TREND_DAYS {
        let mut day = last.clone();
        day.as_of = last.as_of - back.days();
        let text = serde_json::to_string(&day)?;
        store
            .swap_document(
                DAILY_COUNTS,
                &DayCounts::key(day.as_of),
                Expect::Absent,
                Some(text),
                None,
            )
            .await?;
    }
    Ok(last.as_of)
}

/// Replaces every assistant's grid with grids of 1,000 of `ids` each.
async fn replace_grids(store: &SharedStore, ids: &[MerchantId]) -> anyhow::Result<()> {
    use yisaozhi::grid::{AssistantGrid, GRID};
    use yisaozhi::store::documents;
    for (key, _) in documents::all::<AssistantGrid>(store.as_ref(), GRID).await? {
        documents::remove(store.as_ref(), GRID, &key, None).await?;
    }
    for (i, chunk) in ids.chunks(1_000).enumerate() {
        let key = format!("QB-{i:04}");
        let grid = AssistantGrid {
            assistant: yisaozhi::roster::StaffId::parse(&key).map_err(anyhow::Error::msg)?,
            region: yisaozhi::model::RegionCode::parse("510000").map_err(anyhow::Error::msg)?,
            merchants: chunk.to_vec(),
        };
        documents::put(store.as_ref(), GRID, &key, &grid, None).await?;
    }
    Ok(())
}

/// One baseline read (a projection by id), timed into `base`.
async fn baseline(
    store: &SharedStore,
    id: &MerchantId,
    base: &mut (String, Vec<f64>, u64),
) -> anyhow::Result<()> {
    let t = Instant::now();
    let p = store.projection(id).await?;
    base.1.push(t.elapsed().as_secs_f64() * 1e3);
    base.2 = u64::from(p.is_some());
    Ok(())
}

/// `sizes` merchants on grids, each case `rounds` times beside the
/// baseline read: (case, times, count).
async fn queue_cases(
    store: &SharedStore,
    id: &MerchantId,
    sizes: &[usize],
    rounds: usize,
) -> anyhow::Result<Vec<(String, Vec<f64>, u64)>> {
    let mut all: Vec<MerchantId> = Vec::new();
    let mut after = None;
    loop {
        let page = store.projections_page(after.clone(), 5_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.merchant.id.clone());
        all.extend(page.into_iter().map(|p| p.merchant.id));
    }
    let today = yisaozhi::clock::today();
    let rules = yisaozhi::grading::Rules::default();
    let mut base = ("baseline: projection by id".to_owned(), Vec::new(), 0);
    let mut out = Vec::new();
    for &n in sizes {
        let step = (all.len() / n.max(1)).max(1);
        let ids: Vec<MerchantId> = all.iter().step_by(step).take(n).cloned().collect();
        replace_grids(store, &ids).await?;
        let mut times = Vec::new();
        let mut found = (0, false);
        for _ in 0..rounds {
            baseline(store, id, &mut base).await?;
            let t = Instant::now();
            let c = yisaozhi::web::workbench_queues::overdue_patrols(
                store.as_ref(),
                "51",
                today,
                rules.patrol(),
            )
            .await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = (c.count, c.complete);
        }
        let label = if found.1 { "exact" } else { "a lower bound" };
        out.push((
            format!(
                "overdue patrols, {} merchants on grids ({label})",
                ids.len()
            ),
            times,
            found.0,
        ));
    }
    // The pending-review count beside 10,000 decided submissions (which
    // the count no longer reads) and 100 pending ones in two regions.
    let (decided, pending) = seed_reviews(store, &all).await?;
    for prefix in ["", "5115"] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..rounds {
            baseline(store, id, &mut base).await?;
            let t = Instant::now();
            let c =
                yisaozhi::web::workbench_queues::pending_reviews(store.as_ref(), prefix).await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = c.count;
        }
        out.push((
            format!(
                "pending reviews of {}, {decided} decided and {pending} pending added",
                if prefix.is_empty() { "all" } else { prefix }
            ),
            times,
            found,
        ));
    }
    out.insert(0, base);
    Ok(out)
}

/// Adds 10,000 decided submissions and 100 pending ones (with their
/// queue entries) of merchants among `all`, unless an earlier run did.
async fn seed_reviews(store: &SharedStore, all: &[MerchantId]) -> anyhow::Result<(usize, usize)> {
    use yisaozhi::shop::reviews::{Review, ReviewStatus, REVIEWS};
    use yisaozhi::shop::{review_queue, submissions::Submission};
    use yisaozhi::store::documents;
    let (decided, pending) = (10_000, 100);
    let key = |n: usize| format!("20260101T000000{n:09}-00000000");
    if store.document(REVIEWS, &key(0)).await?.is_some() {
        return Ok((decided, pending));
    }
    let today = yisaozhi::clock::today();
    for n in 0..decided + pending {
        let merchant = &all[(n * 7) % all.len()];
        let review = Review {
            id: key(n),
            merchant: merchant.to_string(),
            status: if n < decided {
                ReviewStatus::Accepted
            } else {
                ReviewStatus::Pending
            },
            submitted_at: jiff::Timestamp::now(),
            submission: Submission::SelfReport {
                report_type: yisaozhi::model::ReportType::SelfCheck,
                date: today,
                supplier: None,
                product: None,
                batch: None,
                items: Vec::new(),
                summary: None,
            },
            decision: None,
        };
        documents::put(store.as_ref(), REVIEWS, &review.id, &review, None).await?;
        if n >= decided {
            if let Some(m) = store.merchant(merchant).await? {
                let entry = review_queue::Entry {
                    merchant: review.merchant.clone(),
                    submitted_at: review.submitted_at,
                };
                review_queue::add(store.as_ref(), &m.region, &review.id, &entry, false).await?;
            }
        }
    }
    Ok((decided, pending))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("embedded:./data", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let csv = args.get(3);
    let store: SharedStore = StoreSpec::parse(spec)
        .map_err(anyhow::Error::msg)?
        .open()
        .await?;
    let first = store.projections_page(None, 1).await?;
    let sample = first
        .first()
        .ok_or_else(|| anyhow::anyhow!("the store has no projection"))?;
    let id: MerchantId = sample.merchant.id.clone();
    let uscc = store
        .projections_page(None, 100)
        .await?
        .iter()
        .find_map(|p| p.merchant.uscc.as_ref().map(|u| u.to_string()))
        .unwrap_or_default();
    let queues: Vec<usize> = std::env::var("QUEUES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    // name → (times, result)
    let mut times: Vec<(String, Vec<f64>, u64)> = Vec::new();
    if !queues.is_empty() {
        times = queue_cases(&store, &id, &queues, rounds).await?;
    }
    let today = seed_trend(&store).await?;
    let cases = searches(&uscc, id.as_str());
    let mut note = |name: &str, ms: f64, result: u64| match times.iter_mut().find(|t| t.0 == name) {
        Some(t) => {
            t.1.push(ms);
            t.2 = result;
        }
        None => times.push((name.to_owned(), vec![ms], result)),
    };
    for _ in 0..if queues.is_empty() { rounds } else { 0 } {
        let t = Instant::now();
        let p = store.projection(&id).await?;
        note(
            "baseline: projection by id",
            t.elapsed().as_secs_f64() * 1e3,
            u64::from(p.is_some()),
        );
        for (name, q) in &cases {
            let t = Instant::now();
            let page = store.search(q).await?;
            note(name, t.elapsed().as_secs_f64() * 1e3, page.total);
        }
        for region in [None, Some("511504")] {
            let t = Instant::now();
            let s = store.stats(region).await?;
            note(
                &format!("stats {}", region.unwrap_or("all")),
                t.elapsed().as_secs_f64() * 1e3,
                s.total,
            );
            let t = Instant::now();
            let d = yisaozhi::dashboard::dashboard(store.as_ref(), region, today).await?;
            note(
                &format!("dashboard {}", region.unwrap_or("all")),
                t.elapsed().as_secs_f64() * 1e3,
                d.trend.len() as u64,
            );
        }
        let t = Instant::now();
        let page = store
            .search_after(&query(None, Some("511504"), None), None, 500)
            .await?;
        note(
            "ledger page of 500 (district)",
            t.elapsed().as_secs_f64() * 1e3,
            page.len() as u64,
        );
    }
    let base = median(times[0].1.clone());
    // The rows of benches/results/ (columns in BENCHMARKS.md).
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%MZ")
        .to_string();
    let commit = std::env::var("COMMIT").unwrap_or_default();
    let machine = std::env::var("MACHINE").unwrap_or_default();
    // Quoted: a command may hold commas (`QUEUES=1000,5000`).
    let command = format!(
        "\"{}\"",
        std::env::var("COMMAND")
            .unwrap_or_default()
            .replace('"', "\"\"")
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let kind = spec.split(':').next().unwrap_or("");
    let merchants = store.stats(None).await?.total;
    let mut out = String::new();
    for (name, t, result) in &times {
        let m = median(t.clone());
        let lo = t.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = t.iter().copied().fold(0.0, f64::max);
        println!("{name},{m:.2},{lo:.2},{hi:.2},{:.1},{result}", m / base);
        let baseline = name.starts_with("baseline");
        let target = if baseline || name.starts_with("ledger") {
            ""
        } else {
            "workbench-first-byte"
        };
        out.push_str(&format!(
            "{date},{commit},{target},\"{name} (in process, {kind}, {merchants} merchants)\",{m:.2},ms,{},{},{command},{machine},\"median of {rounds}, {lo:.2}-{hi:.2} ms; result {result}; load average {}\"\n",
            if baseline { String::new() } else { format!("{base:.2}") },
            if baseline { String::new() } else { format!("{:.1}", m / base) },
            load.join(" "),
        ));
    }
    if let Some(path) = csv {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(out.as_bytes())?;
    }
    Ok(())
}
