//! Open data (CONTRACT §8): `merchants.jsonl.gz` (each merchant's public
//! projection), `merchants.csv` (the same, one row each), `sampling.csv`
//! (every sampling result) and `index.json` (when, and each file's SHA-256,
//! bytes and rows), written by `yisaozhi export --out DIR` and served by
//! `web::open_data`.
//!
//! Streamed: the store is read a page of [`PAGE`] merchants at a time (the
//! projections in id order, then those merchants' records for the sampling
//! results) while a writer thread serialises, compresses and hashes the
//! page before; at most two pages wait between them, so memory does not
//! grow with the number of merchants. Each file is written under a
//! temporary name and renamed when complete, `index.json` last.

mod index;
mod rows;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::write::GzEncoder;
use jiff::civil::Date;

pub use self::index::{read_index, FileEntry, Index};
use self::index::{write_index, Measured};
use self::rows::{sampling_row, MerchantLine};
pub use self::rows::{MERCHANT_COLUMNS, SAMPLING_COLUMNS};
use crate::progress::{Progress, Unit};
use crate::store::{GradingInput, SharedStore};

pub const MERCHANTS_JSONL_GZ: &str = "merchants.jsonl.gz";
pub const MERCHANTS_CSV: &str = "merchants.csv";
pub const SAMPLING_CSV: &str = "sampling.csv";
pub const INDEX_JSON: &str = "index.json";
/// The data files, in the order `index.json` lists them.
pub const FILES: [&str; 3] = [MERCHANTS_JSONL_GZ, MERCHANTS_CSV, SAMPLING_CSV];

/// Merchants read from the store at a time.
pub const PAGE: usize = 1000;

/// One page of merchants: their projections and their grading inputs
/// (for the records).
struct Page {
    projections: Vec<crate::model::Projection>,
    inputs: Vec<GradingInput>,
}

/// Writes the open data files of `store` into `dir` (created if missing),
/// as of `today` (an override that expired by then is not shown); reports
/// progress on stderr when `progress` is set.
pub async fn export(
    store: &SharedStore,
    dir: &Path,
    today: Date,
    progress: bool,
) -> anyhow::Result<Index> {
    crate::files::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Page>(2);
    let writer = {
        let dir = dir.to_owned();
        let progress = Progress::new("exporting", 0, Unit::Items, progress);
        std::thread::Builder::new()
            .name("ysz-export".into())
            .spawn(move || {
                let files = write_files(&dir, today, || rx.blocking_recv(), &progress);
                progress.end(files.is_err());
                files
            })
            .context("cannot start the export's writer thread")?
    };
    let read = async {
        let mut after = None;
        loop {
            let projections = store.projections_page(after.take(), PAGE).await?;
            let Some(last) = projections.last() else {
                return anyhow::Ok(());
            };
            after = Some(last.merchant.id.clone());
            let ids = projections.iter().map(|p| p.merchant.id.clone()).collect();
            let inputs = store.grading_inputs(ids).await?;
            if tx
                .send(Page {
                    projections,
                    inputs,
                })
                .await
                .is_err()
            {
                // The writer stopped: its error says why.
                return Ok(());
            }
        }
    }
    .await;
    drop(tx);
    let files = tokio::task::spawn_blocking(move || writer.join())
        .await
        .context("the export's writer thread")?
        .map_err(|_| anyhow::anyhow!("the export's writer thread panicked"))?;
    read.context("reading the store")?;
    let files =
        files.with_context(|| format!("writing the open data files in {}", dir.display()))?;
    let index = Index {
        generated_at: crate::clock::now(),
        files,
    };
    write_index(dir, &index).with_context(|| format!("writing {}/{INDEX_JSON}", dir.display()))?;
    Ok(index)
}

/// The writer thread: every page from `next` into the three files.
fn write_files(
    dir: &Path,
    today: Date,
    mut next: impl FnMut() -> Option<Page>,
    progress: &Progress,
) -> anyhow::Result<Vec<FileEntry>> {
    let mut jsonl = GzEncoder::new(
        Measured::create(dir, MERCHANTS_JSONL_GZ)?,
        flate2::Compression::fast(),
    );
    let mut merchants = csv::Writer::from_writer(Measured::create(dir, MERCHANTS_CSV)?);
    let mut sampling = csv::Writer::from_writer(Measured::create(dir, SAMPLING_CSV)?);
    merchants.write_record(MERCHANT_COLUMNS)?;
    sampling.write_record(SAMPLING_COLUMNS)?;
    let (mut merchant_rows, mut sampling_rows) = (0u64, 0u64);
    let mut line = Vec::with_capacity(4096);
    while let Some(page) = next() {
        for p in &page.projections {
            let m = MerchantLine::of(p, today);
            line.clear();
            serde_json::to_writer(&mut line, &m)?;
            line.push(b'\n');
            jsonl.write_all(&line)?;
            merchants.write_record(m.csv_row())?;
            merchant_rows += 1;
        }
        for input in &page.inputs {
            for r in &input.records {
                if let Some(row) = sampling_row(&input.merchant.name, r) {
                    sampling.write_record(row)?;
                    sampling_rows += 1;
                }
            }
        }
        progress.inc(page.projections.len() as u64);
    }
    let csv_file = |w: csv::Writer<Measured>| -> anyhow::Result<Measured> {
        w.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))
    };
    Ok(vec![
        jsonl.finish()?.finish(merchant_rows)?,
        csv_file(merchants)?.finish(merchant_rows)?,
        csv_file(sampling)?.finish(sampling_rows)?,
    ])
}

/// The path of an export's file `name` in `dir`, if `name` is one of
/// [`FILES`] or [`INDEX_JSON`] (nothing else is ever served from `dir`).
pub fn path_of(dir: &Path, name: &str) -> Option<PathBuf> {
    (name == INDEX_JSON || FILES.contains(&name)).then(|| dir.join(name))
}
