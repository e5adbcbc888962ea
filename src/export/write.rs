//! Writing one export's files into a directory (see the module doc of
//! `crate::export`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::write::GzEncoder;
use jiff::civil::Date;

use super::index::{write_index, FileEntry, Index, Measured, INDEX_JSON};
use super::rows::{write_sampling_row, MerchantLine, MERCHANT_COLUMNS, SAMPLING_COLUMNS};
use crate::model::Projection;
use crate::progress::{Progress, Unit};
use crate::store::{GradingInput, SharedStore};

pub const MERCHANTS_JSONL_GZ: &str = "merchants.jsonl.gz";
pub const MERCHANTS_CSV: &str = "merchants.csv";
pub const SAMPLING_CSV: &str = "sampling.csv";
/// The data files, in the order `index.json` lists them.
pub const FILES: [&str; 3] = [MERCHANTS_JSONL_GZ, MERCHANTS_CSV, SAMPLING_CSV];

/// Merchants read from the store at a time.
pub const PAGE: usize = 1000;

/// Starts a writer thread that takes items from `rx` until it closes.
fn writer<T: Send + 'static, R: Send + 'static>(
    name: &str,
    mut rx: tokio::sync::mpsc::Receiver<T>,
    write: impl FnOnce(&mut dyn FnMut() -> Option<T>) -> anyhow::Result<R> + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<R>>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || write(&mut || rx.blocking_recv()))
        .context("cannot start an export writer thread")
}

/// Waits for a writer thread off the async threads.
async fn join<R: Send + 'static>(
    thread: std::thread::JoinHandle<anyhow::Result<R>>,
) -> anyhow::Result<R> {
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .context("an export writer thread")?
        .map_err(|_| anyhow::anyhow!("an export writer thread panicked"))?
}

/// Writes the open data files of `store` into `dir` (created if missing),
/// as of `today` (an override that expired by then is not shown); reports
/// progress on stderr when `progress` is set.
///
/// Two pipelines at once: the projections, a page at a time in id order,
/// into the merchant files; the sampling records of every merchant, through
/// [`BatchStore::stream_sampling_inputs`](crate::store::BatchStore::stream_sampling_inputs)
/// (on the embedded store one sequential pass over the records and an
/// external sort of the sampling ones, instead of a random lookup per
/// record), into `sampling.csv`. What stays in memory: the merchant ids (tens of bytes
/// each) and a few pages.
pub async fn export(
    store: &SharedStore,
    dir: &Path,
    today: Date,
    progress: bool,
) -> anyhow::Result<Index> {
    crate::files::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let progress = std::sync::Arc::new(Progress::new("exporting", 0, Unit::Items, progress));
    let (page_tx, page_rx) = tokio::sync::mpsc::channel::<Vec<Projection>>(2);
    let merchant_files = {
        let (dir, progress) = (dir.to_owned(), progress.clone());
        writer("ysz-export-merchants", page_rx, move |next| {
            write_merchants(&dir, today, next, &progress)
        })?
    };
    let (input_tx, input_rx) = tokio::sync::mpsc::channel::<Vec<GradingInput>>(2);
    let sampling_file = {
        let dir = dir.to_owned();
        writer("ysz-export-sampling", input_rx, move |next| {
            write_sampling(&dir, next)
        })?
    };
    let pages = async move {
        let mut after = None;
        loop {
            let page = store.projections_page(after.take(), PAGE).await?;
            let Some(last) = page.last() else {
                return anyhow::Ok(());
            };
            after = Some(last.merchant.id.clone());
            if page_tx.send(page).await.is_err() {
                // The writer stopped: its error says why.
                return Ok(());
            }
        }
    };
    let records = async {
        store.stream_sampling_inputs(PAGE, input_tx).await?;
        anyhow::Ok(())
    };
    // `pages` owns the sender: the merchant writer ends when it does.
    let (pages, records) = tokio::join!(pages, records);
    let merchant_files = join(merchant_files).await;
    let sampling_file = join(sampling_file).await;
    progress.end(merchant_files.is_err() || sampling_file.is_err());
    pages.context("reading the projections")?;
    records.context("reading the records")?;
    let in_dir = || format!("writing the open data files in {}", dir.display());
    let [jsonl, csv] = merchant_files.with_context(in_dir)?;
    let sampling = sampling_file.with_context(in_dir)?;
    let index = Index {
        generated_at: crate::clock::now(),
        files: vec![jsonl, csv, sampling],
    };
    write_index(dir, &index).with_context(|| format!("writing {}/{INDEX_JSON}", dir.display()))?;
    Ok(index)
}

/// `merchants.jsonl.gz` and `merchants.csv` from pages of projections.
fn write_merchants(
    dir: &Path,
    today: Date,
    next: &mut dyn FnMut() -> Option<Vec<Projection>>,
    progress: &Progress,
) -> anyhow::Result<[FileEntry; 2]> {
    let mut jsonl = GzEncoder::new(
        Measured::create(dir, MERCHANTS_JSONL_GZ)?,
        flate2::Compression::fast(),
    );
    let mut merchants = csv::Writer::from_writer(Measured::create(dir, MERCHANTS_CSV)?);
    merchants.write_record(MERCHANT_COLUMNS)?;
    let mut rows = 0u64;
    let mut line = Vec::with_capacity(4096);
    let mut scratch = String::new();
    while let Some(page) = next() {
        for p in &page {
            let m = MerchantLine::of(p, today);
            line.clear();
            serde_json::to_writer(&mut line, &m)?;
            line.push(b'\n');
            jsonl.write_all(&line)?;
            m.write_csv(&mut merchants, &mut scratch)?;
            rows += 1;
        }
        progress.inc(page.len() as u64);
    }
    Ok([
        jsonl.finish()?.finish(rows)?,
        csv_inner(merchants)?.finish(rows)?,
    ])
}

/// `sampling.csv` from every merchant's records.
fn write_sampling(
    dir: &Path,
    next: &mut dyn FnMut() -> Option<Vec<GradingInput>>,
) -> anyhow::Result<FileEntry> {
    let mut sampling = csv::Writer::from_writer(Measured::create(dir, SAMPLING_CSV)?);
    sampling.write_record(SAMPLING_COLUMNS)?;
    let mut rows = 0u64;
    let mut scratch = String::new();
    while let Some(inputs) = next() {
        for input in &inputs {
            for r in &input.records {
                if write_sampling_row(&mut sampling, &mut scratch, &input.merchant.name, r)? {
                    rows += 1;
                }
            }
        }
    }
    Ok(csv_inner(sampling)?.finish(rows)?)
}

fn csv_inner(w: csv::Writer<Measured>) -> anyhow::Result<Measured> {
    w.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))
}

/// The path of an export's file `name` in `dir`, if `name` is one of
/// [`FILES`] or [`INDEX_JSON`] (nothing else is ever served from `dir`).
pub fn path_of(dir: &Path, name: &str) -> Option<PathBuf> {
    (name == INDEX_JSON || FILES.contains(&name)).then(|| dir.join(name))
}
