//! The batch job: import merchants and records, regrade who is due, write
//! projections.
//!
//! Safe to kill at any point: records are committed with a "regrade" mark in
//! the same write, and a projection clears the mark in the same write as it
//! lands, so a re-run picks up exactly what the killed run left undone.
//!
//! Streams: a file is read in chunks of a few thousand lines on a reader
//! thread, each chunk parsed in parallel (rayon) while the previous one is
//! written to the store, so memory does not grow with the size of a file.
//! Regrading is a pipeline too: load a batch of merchants' inputs from the
//! store → grade it in parallel (grading is pure) → write the projections,
//! the three stages overlapping.
//!
//! Here: `run`; what it is asked in `options`, what it answers in
//! `summary`; the import of files in `import` (over `reader` and
//! `known_merchants`), the regrade in `regrade`, the day's counts in
//! `daily`, imports from an HTTP request body in `body`.

use std::io::Write;
use std::time::Instant;

use crate::grading::Rules;
use crate::progress::{Progress, Unit};
use crate::store::Store;

mod body;
mod daily;
mod import;
mod known_merchants;
mod options;
mod reader;
mod regrade;
mod summary;

pub use body::{import_merchants_body, import_records_body, ImportReport, MerchantChange};
pub use options::{RefreshOptions, StopFlag, Stopped};
pub use regrade::regrade;
pub use summary::Summary;

use import::{import_merchants_file, import_records_file, Rejects};
use known_merchants::KnownMerchants;
use regrade::regrade_with;

// --- process ----------------------------------------------------------------

/// Names rayon's workers (for profiles and `top -H`), if the pool is not
/// running yet.
pub fn name_rayon_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ysz-rayon-{i}"))
        .build_global();
}

/// CPU time (user + system) of this process so far, for the logs; Linux only.
fn cpu_secs() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name, utime and stime are the 12th
    // and 13th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    match f[..] {
        [u, s] => format!("{:.1}", (u + s) / 100.0),
        _ => "unknown".into(),
    }
}

/// Imports the files, then regrades the merchants that are due, then
/// notes the day's counts.
pub async fn run(
    store: &dyn Store,
    rules: &Rules,
    opts: &RefreshOptions,
) -> anyhow::Result<Summary> {
    name_rayon_threads();
    let mut summary = Summary {
        shard: opts.shard,
        ..Summary::default()
    };
    let mut rejects = Rejects::create(&opts.rejects)?;
    let mut known = KnownMerchants::default();
    let started = Instant::now();
    // About 150 bytes per record line.
    let expected: u64 = opts
        .records
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()) / 150)
        .sum();
    // No bulk mode for a shard: shards may run as parallel processes on one
    // store, and the embedded store's bulk mode assumes a single importer
    // (its one `bulk_since` row would be "recovered", i.e. completed and
    // removed, by another shard's writer while this one still imports).
    // Each shard's writes then go the ordinary way, atomic with their marks.
    let bulk = match opts.shard {
        None => Some(store.begin_bulk_import(expected).await?),
        Some(_) => None,
    };
    let imported = async {
        if let Some(path) = &opts.merchants {
            tracing::info!(file = %path.display(), shard = %opts.shard.map_or("all".into(), |s| s.to_string()), "importing merchants");
            import_merchants_file(
                store,
                bulk.as_deref(),
                path,
                opts,
                &mut known,
                &mut rejects,
                &mut summary,
            )
            .await?;
        }
        for path in &opts.records {
            if summary.stopped.is_some() {
                break;
            }
            tracing::info!(file = %path.display(), shard = %opts.shard.map_or("all".into(), |s| s.to_string()), "importing records");
            import_records_file(
                store,
                bulk.as_deref(),
                path,
                opts,
                &mut known,
                &mut rejects,
                &mut summary,
            )
            .await?;
        }
        anyhow::Ok(())
    };
    let imported = imported.await;
    let finished = match bulk {
        Some(bulk) => Some(bulk.finish().await?),
        None => None,
    };
    imported?;
    let repeated = finished.as_ref().map_or(0, |f| f.repeated);
    summary.imported -= repeated;
    summary.duplicate += repeated;
    rejects.out.flush()?;
    summary.rejected = rejects.count;
    tracing::info!(
        read = summary.read,
        imported = summary.imported,
        duplicate = summary.duplicate,
        rejected = summary.rejected,
        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        cpu_secs = cpu_secs(),
        "import done"
    );
    if summary.stopped.is_none() {
        summary.stopped = Stopped::check(opts.stop.as_ref(), || "after the import".into());
    }
    if let Some(s) = &summary.stopped {
        tracing::warn!(
            "stopped by {} {}; run the same command again to finish",
            s.signal_name(),
            s.at
        );
        return Ok(summary);
    }
    let regrade_started = Instant::now();
    let mut due = if opts.full {
        store.all_merchant_ids().await?
    } else {
        store.due_for_regrade(opts.as_of).await?
    };
    if let Some(shard) = opts.shard {
        due.retain(|id| shard.contains(id));
    }
    tracing::info!(merchants = due.len(), "regrade started");
    let progress = Progress::new("regrading", due.len() as u64, Unit::Items, true);
    regrade_with(
        store,
        finished,
        rules,
        &due,
        opts.as_of,
        &mut summary,
        Some(&progress),
        opts.stop.as_ref(),
    )
    .await?;
    progress.end(summary.stopped.is_some());
    if let Some(s) = &summary.stopped {
        tracing::warn!(
            "stopped by {} {}; run the same command again to finish",
            s.signal_name(),
            s.at
        );
    }
    // Also after a stop: the changes made so far are the day's.
    daily::note_day(store, opts.as_of, &summary).await?;
    tracing::info!(
        merchants = due.len(),
        secs = format!("{:.1}", regrade_started.elapsed().as_secs_f64()),
        total_secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        cpu_secs = cpu_secs(),
        "regrade done"
    );
    Ok(summary)
}
