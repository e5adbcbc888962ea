//! `codes verify`: checks a code offline against published keys (a file,
//! a key directory or an `http://` URL) and, optionally, a saved status
//! list.

use std::path::Path;

use anyhow::{bail, Context};

use crate::clock;
use crate::keys::{KeyInfo, Keyring};

use super::args::{parse_date, CommonArgs};

/// Largest keys document `--keys http://...` reads.
const KEYS_MAX_BYTES: usize = 1024 * 1024;
/// Deadline for fetching `--keys http://...`: connect, send and read.
const KEYS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the published keys from a file or an `http://` URL.
fn load_published(source: &str) -> anyhow::Result<Keyring> {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    let (text, what) = if lower.starts_with("https://") {
        bail!(
            "--keys {source}: https is not supported by the built-in fetcher; download the file first \
             (e.g. `curl -fsS -o keys.json {source}`) and pass its path"
        );
    } else if lower.starts_with("http://") {
        (
            super::fetch::http_get(source, KEYS_TIMEOUT, KEYS_MAX_BYTES)
                .with_context(|| format!("cannot fetch keys from {source}"))?,
            format!("keys at {source}"),
        )
    } else {
        let path = Path::new(source);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keys file {}", path.display()))?;
        (text, format!("keys file {}", path.display()))
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what} is not JSON"))?;
    let list = value.get("keys").cloned().unwrap_or(value);
    let infos: Vec<KeyInfo> = serde_json::from_value(list).with_context(|| {
        format!("{what}: expected {{\"keys\": [...]}} as served at /api/v1/keys")
    })?;
    Keyring::from_published(infos)
}

/// Reads and verifies a saved status list document.
fn load_status_list(path: &Path, keyring: &Keyring) -> anyhow::Result<yisaozhi_codes::StatusList> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read status list {}", path.display()))?;
    let mut text = String::new();
    file.take(crate::status_list::MAX_DOCUMENT_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read status list {}", path.display()))?;
    if text.len() as u64 > crate::status_list::MAX_DOCUMENT_BYTES {
        bail!(
            "status list {}: larger than {} MiB",
            path.display(),
            crate::status_list::MAX_DOCUMENT_BYTES >> 20
        );
    }
    crate::status_list::verify(&text, |kid| keyring.public(kid))
        .with_context(|| format!("status list {} refused", path.display()))
}

/// `codes verify`: what a code says and whether its signature holds,
/// offline; exits non-zero for anything but a valid code.
pub(super) fn verify(
    text: &str,
    keys_source: Option<&str>,
    status_list: Option<&Path>,
    common: &CommonArgs,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let keyring = match keys_source {
        Some(source) => load_published(source)?,
        None => {
            let dir = common.settings()?.key_dir;
            let ring = Keyring::load(&dir)?;
            if ring.infos.is_empty() {
                bail!(
                    "no keys in {}: pass --keys FILE_OR_URL (e.g. a saved /api/v1/keys)",
                    dir.display()
                );
            }
            ring
        }
    };
    let at = match at {
        Some(raw) => parse_date(raw, "--at")?,
        None => clock::today(),
    };
    let day = clock::to_day(at).context("date outside the code calendar")?;
    let listed = match status_list {
        Some(path) => Some(load_status_list(path, &keyring)?),
        None => None,
    };
    let verdict = yisaozhi_codes::verify(text.trim(), |kid| keyring.public(kid), day);
    if let (Some(list), Some(claims)) = (&listed, verdict.trusted_claims()) {
        if let Some(status) = list.status(claims.serial) {
            let synced = jiff::Timestamp::from_second(list.issued_at as i64)
                .map_or_else(|_| list.issued_at.to_string(), |t| t.to_string());
            println!(
                "{}: signature holds but the status list of {synced} lists serial {} as {}; merchant {}, printed grade {}",
                status.name(),
                claims.serial,
                status.name(),
                claims.merchant,
                claims.grade
            );
            bail!("code {} (serial {})", status.name(), claims.serial);
        }
    }
    let describe = |c: &yisaozhi_codes::Claims| {
        format!(
            "merchant {}, serial {}, key {}, issued {}, expires {}, printed grade {}",
            c.merchant, c.serial, c.kid, c.issued, c.expires, c.grade
        )
    };
    match verdict {
        yisaozhi_codes::Verdict::Valid(c) => {
            println!("valid: signature holds; {}", describe(&c));
            Ok(())
        }
        yisaozhi_codes::Verdict::Expired(c) => {
            println!(
                "expired: signature holds but the code expired; {}",
                describe(&c)
            );
            bail!("code expired on {}", c.expires)
        }
        yisaozhi_codes::Verdict::Forged { claims, why } => {
            println!("forged: {why}; the code claims {}", describe(&claims));
            bail!("signature does not hold: {why}")
        }
        yisaozhi_codes::Verdict::Malformed(why) => {
            println!("malformed: {why}");
            bail!("not a yisaozhi code: {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_source_kinds() {
        let e = load_published("https://ysz.example.gov.cn/api/v1/keys").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("https is not supported") && msg.contains("download the file first"),
            "{msg}"
        );
        let e = load_published("/nonexistent/keys.json").unwrap_err();
        assert!(format!("{e:#}").contains("cannot read keys file"), "{e:#}");
        let e = load_published("http://127.0.0.1:1/api/v1/keys").unwrap_err();
        assert!(format!("{e:#}").contains("cannot fetch keys from"), "{e:#}");
    }
}
