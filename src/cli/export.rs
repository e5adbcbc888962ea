//! `export`: the open data files (`crate::export`) of the configured store.

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
    let index = crate::export::export(&store, &args.out, today, true)
        .await
        .context("export")?;
    for f in &index.files {
        println!(
            "{}\t{} rows\t{} bytes\tsha256 {}",
            f.name, f.rows, f.bytes, f.sha256
        );
    }
    println!(
        "exported to {} in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
