//! `serve` and `demo`: the commands that run the service.

use std::path::Path;

use crate::settings::{Overrides, Settings};
use crate::startup::Application;

use super::args::CommonArgs;

/// `serve`: the scan service until a signal stops it, or with
/// `print_config` only the effective settings.
pub(super) async fn serve(
    common: CommonArgs,
    listen: Option<String>,
    public_base_url: Option<String>,
    print_config: bool,
) -> anyhow::Result<()> {
    let settings = Settings::load(Overrides {
        config: common.config,
        store: common.store,
        listen,
        public_base_url,
        key_dir: common.key_dir,
    })?;
    if print_config {
        print!("{}", settings.describe());
        return Ok(());
    }
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), base_url = app.base_url(), "serving");
    app.run_until_stopped().await?;
    Ok(())
}

/// `demo`: prepares the demo directory and serves it.
pub(super) async fn demo(listen: &str, dir: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(Overrides {
        store: Some(format!("embedded:{}", dir.display())),
        listen: Some(listen.to_owned()),
        ..Overrides::default()
    })?;
    let prepared = crate::demo::prepare(dir, settings.code_validity_days).await?;
    let app = Application::build(settings).await?;
    let base = app.base_url().to_owned();
    println!("{}", prepared.summary);
    println!("codes issued: {}", prepared.codes_issued);
    println!();
    println!("yisaozhi demo is serving at {base}/");
    println!("data directory:   {}", prepared.dir.display());
    println!("regulator token:  {}", prepared.token);
    println!("  (also in {})", prepared.dir.join("admin-token").display());
    for (id, grade, token) in &prepared.samples {
        let token = yisaozhi_codes::Token::parse(token)?;
        println!(
            "sample scan, {} ({id}): {}",
            grade.label_zh(),
            yisaozhi_codes::url(&base, &token)
        );
    }
    if let Some((id, _, _)) = prepared.samples.first() {
        println!("print page:       {base}/merchants/{id}/print");
    }
    println!("inspection plan:  {base}/plans/{}", crate::plan::DEMO_PLAN);
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped().await?;
    Ok(())
}
