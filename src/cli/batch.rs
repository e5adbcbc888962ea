//! `refresh` and `gen`: the batch commands, over `crate::refresh` and
//! `crate::gen`.

use std::path::PathBuf;

use anyhow::Context;

use crate::clock;

use super::args::{parse_date, GenArgs, GenFormatArg, RefreshArgs};

/// The record files given, a directory standing for its `.jsonl` and `.csv`
/// files in name order (but `merchants.*`).
fn expand_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl" || x == "csv"))
                // A data directory often holds the merchants file too.
                .filter(|f| f.file_stem().is_none_or(|s| s != "merchants"))
                .collect();
            inside.sort();
            out.extend(inside);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// `refresh`: imports the files, regrades, prints the summary; stopped by
/// a signal, exits as that signal would.
pub(super) async fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    let settings = args.common.settings()?;
    if args.merchants.is_none() && args.records.is_empty() && !args.full {
        tracing::info!("no input files: regrading merchants that are due");
    }
    let as_of = match &args.as_of {
        Some(raw) => parse_date(raw, "--as-of")?,
        None => clock::today(),
    };
    let store = settings.open_store().await?;
    let rules = settings.load_rules()?;
    let stop = crate::refresh::StopFlag::default();
    stop_on_signals(&stop)?;
    let opts = crate::refresh::RefreshOptions {
        merchants: args.merchants,
        records: expand_paths(&args.records)?,
        as_of,
        full: args.full,
        rejects: args.rejects.clone(),
        shard: args.shard,
        stop: Some(stop),
    };
    let summary = crate::refresh::run(store.as_ref(), &rules, &opts).await?;
    println!("{summary}");
    if summary.rejected > 0 {
        println!(
            "{} rejected lines written to {}",
            summary.rejected,
            args.rejects.display()
        );
    }
    if let Some(stopped) = &summary.stopped {
        // Close the store as at the end of a run, then exit as a process
        // ended by that signal would (143 for SIGTERM, 130 for SIGINT).
        drop(store);
        std::process::exit(stopped.exit_status());
    }
    Ok(())
}

/// SIGTERM and SIGINT ask the refresh to stop at its next safe point; a
/// second signal ends the process at once (a refresh is safe to kill).
fn stop_on_signals(stop: &crate::refresh::StopFlag) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let (number, name) = tokio::select! {
                    _ = term.recv() => (15, "SIGTERM"),
                    _ = int.recv() => (2, "SIGINT"),
                };
                if stop.requested().is_some() {
                    eprintln!("yisaozhi: {name} again: stopping now; run the same command again to finish");
                    std::process::exit(128 + number);
                }
                tracing::warn!(
                    "{name}: stopping at the next safe point (a second signal stops at once)"
                );
                stop.stop(number);
            }
        });
    }
    #[cfg(not(unix))]
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if stop.requested().is_some() {
                    std::process::exit(130);
                }
                stop.stop(2);
            }
        });
    }
    Ok(())
}

/// `gen`: writes a synthetic data set.
pub(super) fn gen(args: GenArgs) -> anyhow::Result<()> {
    let opts = crate::gen::GenOptions {
        merchants: args.merchants,
        records: args.records,
        seed: args.seed,
        out: args.out,
        as_of: parse_date(&args.as_of, "--as-of")?,
        days: args.days,
        format: match args.format {
            GenFormatArg::Jsonl => crate::gen::GenFormat::Jsonl,
            GenFormatArg::Csv => crate::gen::GenFormat::Csv,
        },
        first_record: args.first_record,
        touch: args.touch,
        write_merchants: !args.records_only,
        progress: true,
    };
    let started = std::time::Instant::now();
    let summary = crate::gen::generate(&opts)?;
    println!("{summary}");
    println!("in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
