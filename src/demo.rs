//! `yisaozhi demo`: from nothing to a running county on the embedded store.
//!
//! Everything it creates lives in one directory and is reused by a re-run:
//! the sample input files (editable; a re-run imports edits), the signing key,
//! the store, the codes and the regulator token.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::clock;
use crate::grading::Rules;
use crate::keys::{self, Keyring};
use crate::model::Grade;
use crate::refresh::{self, RefreshOptions, Summary};
use crate::store::{embedded::EmbeddedStore, BatchStore, ServiceWrites};

/// What the demo prepared, for printing.
#[derive(Debug)]
pub struct Prepared {
    pub dir: PathBuf,
    pub token: String,
    pub summary: Summary,
    pub codes_issued: usize,
    /// One (merchant id, grade, token) per grade present.
    pub samples: Vec<(String, Grade, String)>,
}

fn write_jsonl(path: &Path, lines: &[serde_json::Value]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(
        crate::files::create_file(path)
            .with_context(|| format!("cannot write {}", path.display()))?,
    );
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// Creates or reuses the demo directory and brings it up to date.
pub async fn prepare(dir: &Path, code_validity_days: i32) -> anyhow::Result<Prepared> {
    crate::files::create_dir(dir)
        .with_context(|| format!("cannot create demo directory {}", dir.display()))?;
    let today = clock::today();
    let merchants_file = dir.join("merchants.jsonl");
    let records_file = dir.join("records.jsonl");
    if !merchants_file.exists() || !records_file.exists() {
        let sample = crate::demo_data::sample(today);
        write_jsonl(&merchants_file, &sample.merchants)?;
        write_jsonl(&records_file, &sample.records)?;
    }
    let key_dir = dir.join("keys");
    if keys::list(&key_dir)?.is_empty() {
        keys::generate(&key_dir, today)?;
    }
    let keyring = Keyring::load(&key_dir)?;
    let store = EmbeddedStore::open(dir)?;
    let summary = refresh::run(
        &store,
        &Rules::default(),
        &RefreshOptions {
            merchants: Some(merchants_file),
            records: vec![records_file],
            as_of: today,
            full: false,
            rejects: dir.join("rejects.jsonl"),
            shard: None,
            stop: None,
        },
    )
    .await?;
    store.note_refresh(clock::now()).await?;

    let mut codes_issued = 0;
    let mut samples: Vec<(String, Grade, String)> = Vec::new();
    for id in store.all_merchant_ids().await? {
        let code = match crate::issuing::active_code(&store, &id).await? {
            Some(code) => code,
            None => {
                codes_issued += 1;
                crate::issuing::issue(&store, &keyring, &id, code_validity_days, None).await?
            }
        };
        if !samples.iter().any(|(_, g, _)| *g == code.printed_grade) {
            samples.push((id.to_string(), code.printed_grade, code.token.to_string()));
        }
    }
    samples.sort_by_key(|(_, g, _)| *g);
    crate::plan::prepare_demo(&store, dir, today).await?;
    let token = admin_token(&store, &dir.join("admin-token")).await?;
    Ok(Prepared {
        dir: dir.to_owned(),
        token,
        summary,
        codes_issued,
        samples,
    })
}

/// Reads the demo's regulator token, creating it (stored only as a hash) the
/// first time.
async fn admin_token(store: &dyn ServiceWrites, path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().to_owned());
    }
    let scope = crate::auth::Scope::Write {
        region_prefix: String::new(),
    };
    let (plain, stored) =
        crate::auth::new_token("demo-admin", &scope, clock::now()).map_err(anyhow::Error::msg)?;
    store.put_token(stored).await?;
    keys::write_atomic(path, format!("{plain}\n").as_bytes(), 0o600)?;
    Ok(plain)
}
