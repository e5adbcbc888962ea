//! `codes`: issue codes as images, list and revoke them; `codes verify`
//! is in `verify`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use futures_util::StreamExt as _;

use crate::clock;
use crate::keys::Keyring;
use crate::model::MerchantId;
use crate::progress::{Progress, Unit};
use crate::settings::Settings;

use super::args::{CodesAction, CommonArgs, Format};

/// Codes issued or looked up at once by `codes issue` and `codes list`.
const CODES_IN_FLIGHT: usize = 32;

/// `codes issue|verify|revoke|list`.
pub(super) async fn run(action: CodesAction) -> anyhow::Result<()> {
    match action {
        CodesAction::Issue {
            common,
            all,
            merchant,
            out,
            format,
            module_px,
            public_base_url,
        } => {
            issue(
                &common,
                all,
                merchant,
                &out,
                format,
                module_px,
                public_base_url.as_deref(),
            )
            .await
        }
        CodesAction::Verify {
            url_or_token,
            keys,
            status_list,
            common,
            at,
        } => super::verify::verify(
            &url_or_token,
            keys.as_deref(),
            status_list.as_deref(),
            &common,
            at.as_deref(),
        ),
        CodesAction::Revoke {
            common,
            serial,
            reason,
        } => revoke(&common, serial, reason).await,
        CodesAction::List {
            common,
            public_base_url,
        } => list(&common, public_base_url.as_deref()).await,
    }
}

/// `codes issue`: a new code for each merchant (superseding its earlier
/// one), written as an image into `out`.
async fn issue(
    common: &CommonArgs,
    all: bool,
    merchant: Option<String>,
    out: &Path,
    format: Format,
    module_px: u32,
    public_base_url: Option<&str>,
) -> anyhow::Result<()> {
    let settings = common.settings()?;
    let base = base_url(public_base_url, &settings)?;
    let store = settings.open_store().await?;
    let keyring = Keyring::load(&settings.key_dir)?;
    let ids = match (all, merchant) {
        (true, _) => store.all_merchant_ids().await?,
        (false, Some(raw)) => vec![MerchantId::parse(&raw)?],
        (false, None) => bail!("give --all or --merchant ID"),
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let total = ids.len();
    let started = std::time::Instant::now();
    let progress = Progress::new("issuing codes", total as u64, Unit::Items, true);
    // Several codes in flight: while one waits on the store, others
    // are signed and rendered on the blocking pool.
    let keyring = &keyring;
    let (store, settings, base) = (&store, &settings, &base);
    let issued = futures_util::stream::iter(ids)
        .map(|id| async move {
            let code = crate::issuing::issue(
                store.as_ref(),
                keyring,
                &id,
                settings.code_validity_days,
                Some("cli"),
            )
            .await?;
            let base = base.clone();
            let path = out.join(format!("{id}.{}", format.extension()));
            tokio::task::spawn_blocking(move || {
                let url = yisaozhi_codes::url(&base, &code.token);
                let qr = yisaozhi_codes::Qr::encode(&url)?;
                let bytes = match format {
                    Format::Svg => {
                        yisaozhi_codes::svg(&qr, code.printed_grade, Some(id.as_str())).into_bytes()
                    }
                    Format::Png => crate::render::png(&qr, code.printed_grade, module_px),
                };
                std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))
            })
            .await
            .context("rendering a code failed")?
        })
        .buffer_unordered(CODES_IN_FLIGHT);
    futures_util::pin_mut!(issued);
    while let Some(done) = issued.next().await {
        done?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    eprintln!("issued {total}/{total} codes ({rate:.0}/s, {secs:.1} s elapsed)");
    println!("{total} codes written to {}", out.display());
    Ok(())
}

/// `codes revoke`: scans of the code then report it as revoked.
async fn revoke(common: &CommonArgs, serial: u32, reason: Option<String>) -> anyhow::Result<()> {
    let store = common.settings()?.open_store().await?;
    let code = store
        .code(serial)
        .await?
        .with_context(|| format!("no code with serial {serial}"))?;
    let audit = crate::model::AuditEntry {
        at: clock::now(),
        actor: "cli".into(),
        action: "code.revoke".into(),
        target: code.merchant.to_string(),
        before: serde_json::json!({"serial": serial, "status": code.status}),
        after: serde_json::json!({"serial": serial, "status": "revoked"}),
        reason,
    };
    match store.revoke_code(serial, audit).await? {
        Some(before) if before.status == crate::model::CodeStatus::Revoked => {
            println!(
                "code {serial} of merchant {} was already revoked; nothing changed",
                code.merchant
            )
        }
        _ => println!("code {serial} of merchant {} revoked", code.merchant),
    }
    Ok(())
}

/// `codes list`: `merchant-id URL` of every active code, in merchant-id order.
async fn list(common: &CommonArgs, public_base_url: Option<&str>) -> anyhow::Result<()> {
    let settings = common.settings()?;
    let base = base_url(public_base_url, &settings)?;
    let store = settings.open_store().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let store = &store;
    // In merchant-id order, several reads in flight.
    let codes = futures_util::stream::iter(store.all_merchant_ids().await?)
        .map(|id| async move {
            let code = crate::issuing::active_code(store.as_ref(), &id).await?;
            anyhow::Ok((id, code))
        })
        .buffered(CODES_IN_FLIGHT);
    futures_util::pin_mut!(codes);
    while let Some(next) = codes.next().await {
        if let (id, Some(code)) = next? {
            writeln!(out, "{id} {}", yisaozhi_codes::url(&base, &code.token))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The scheme and host printed in codes: `--public-base-url`, else the
/// settings', else the address `serve` listens on by default.
fn base_url(flag: Option<&str>, settings: &Settings) -> anyhow::Result<String> {
    crate::settings::parse_base_url(
        flag.or(settings.public_base_url.as_deref())
            .unwrap_or("http://127.0.0.1:8080"),
    )
}
