//! `export`: the open data files (`crate::export`) of the configured store,
//! published in `--out DIR` (served from `DIR/current`).

use anyhow::Context;

use super::args::{parse_date, ExportArgs};
use crate::clock;

/// `export`: writes the files, prints what `index.json` lists.
pub(super) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let settings = args.common.settings()?;
    let today = match &args.as_of {
        Some(raw) => parse_date(raw, "--as-of")?,
        None => clock::today(),
    };
    let store = settings.open_store().await?;
    let started = std::time::Instant::now();
    let lock = crate::export::ExportLock::acquire(&args.out).await?;
    let published = lock.publish(&store, today, true).await.context("export")?;
    for f in &published.index.files {
        println!(
            "{}\t{} rows\t{} bytes\tsha256 {}",
            f.name, f.rows, f.bytes, f.sha256
        );
    }
    println!(
        "exported to {} ({}/{}) in {:.1} s",
        published.dir.display(),
        args.out.display(),
        crate::export::CURRENT,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
