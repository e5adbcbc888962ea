//! Signing keys on disk.
//!
//! A key directory holds `keys.json` (public metadata: key id, public key,
//! status, validity) and one `k<kid>.secret` file per key (the 32-byte Ed25519
//! seed in hex, mode 0600). Secrets never leave this module except as a
//! [`SigningKey`], whose `Debug` prints nothing secret.
//!
//! Rotation: a new key becomes active; the previous one is retired but stays
//! published (and verifying) until the last code it signed has expired.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use yisaozhi_codes::{KeyId, PublicKey, SigningKey};

const META_FILE: &str = "keys.json";

/// Whether a key signs new codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Retired,
}

/// Public facts about one key, as published at `/api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub kid: u16,
    pub alg: String,
    /// The 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
    pub status: KeyStatus,
    pub not_before: Date,
    /// Last day a code signed by this key can be valid; `None` while active.
    pub not_after: Option<Date>,
}

/// The keys of one deployment: all public keys, and the active signing key
/// when the secret is present.
pub struct Keyring {
    pub infos: Vec<KeyInfo>,
    public: BTreeMap<u16, PublicKey>,
    active: Option<(KeyId, SigningKey)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("kids", &self.public.keys().collect::<Vec<_>>())
            .field("active", &self.active.as_ref().map(|(k, _)| k.0))
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn secret_path(dir: &Path, kid: u16) -> PathBuf {
    dir.join(format!("k{kid}.secret"))
}

fn read_meta(dir: &Path) -> anyhow::Result<Vec<KeyInfo>> {
    let path = dir.join(META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("key metadata {} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a file atomically (temp file + rename) with the given Unix mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    }
    let _ = mode;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(seed)
}

fn new_key(dir: &Path, kid: u16, today: Date) -> anyhow::Result<KeyInfo> {
    let seed = random_seed()?;
    let key = SigningKey::from_bytes(&seed);
    write_atomic(
        &secret_path(dir, kid),
        data_encoding::HEXLOWER.encode(&seed).as_bytes(),
        0o600,
    )?;
    Ok(KeyInfo {
        kid,
        alg: "Ed25519".into(),
        public_key: b64(&key.public_key().to_bytes()),
        status: KeyStatus::Active,
        not_before: today,
        not_after: None,
    })
}

fn save_meta(dir: &Path, infos: &[KeyInfo]) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(infos)?;
    write_atomic(&dir.join(META_FILE), &json, crate::files::FILE_MODE)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    crate::files::create_dir(dir)
        .with_context(|| format!("cannot create key directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates the first key in `dir`. Refuses if keys exist (use [`rotate`]).
pub fn generate(dir: &Path, today: Date) -> anyhow::Result<KeyInfo> {
    create_dir(dir)?;
    if !read_meta(dir)?.is_empty() {
        bail!(
            "keys already exist in {}: use `yisaozhi keys rotate` to replace the active key",
            dir.display()
        );
    }
    let info = new_key(dir, 1, today)?;
    save_meta(dir, std::slice::from_ref(&info))?;
    Ok(info)
}

/// Makes a new key active and retires the current one; the retired key stays
/// published until `today + code_validity_days`, the last day a code it signed
/// today can be valid.
pub fn rotate(dir: &Path, today: Date, code_validity_days: i32) -> anyhow::Result<KeyInfo> {
    let mut infos = read_meta(dir)?;
    if infos.is_empty() {
        bail!(
            "no keys in {}: run `yisaozhi keys generate` first",
            dir.display()
        );
    }
    let last_valid = today
        .checked_add(jiff::Span::new().days(code_validity_days))
        .context("code validity overflows the calendar")?;
    for k in infos.iter_mut().filter(|k| k.status == KeyStatus::Active) {
        k.status = KeyStatus::Retired;
        k.not_after = Some(last_valid);
    }
    let kid = infos.iter().map(|k| k.kid).max().unwrap_or(0);
    let kid = kid.checked_add(1).context("key ids exhausted")?;
    let info = new_key(dir, kid, today)?;
    infos.push(info.clone());
    save_meta(dir, &infos)?;
    Ok(info)
}

/// Lists the keys in `dir`.
pub fn list(dir: &Path) -> anyhow::Result<Vec<KeyInfo>> {
    read_meta(dir)
}

fn parse_public(info: &KeyInfo) -> anyhow::Result<PublicKey> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(info.public_key.as_bytes())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| format!("key {}: public key is not 32 bytes of base64url", info.kid))?;
    PublicKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("key {}: {e}", info.kid))
}

impl Keyring {
    /// Loads every public key in `dir`, and the active secret key if present.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let infos = read_meta(dir)?;
        Self::from_infos(infos, Some(dir))
    }

    /// A verify-only keyring from published key infos (e.g. a saved
    /// `/api/v1/keys` answer), for offline verification.
    pub fn from_published(infos: Vec<KeyInfo>) -> anyhow::Result<Self> {
        Self::from_infos(infos, None)
    }

    fn from_infos(infos: Vec<KeyInfo>, dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut public = BTreeMap::new();
        let mut active = None;
        for info in &infos {
            let pk = parse_public(info)?;
            public.insert(info.kid, pk);
            let (Some(dir), KeyStatus::Active) = (dir, info.status) else {
                continue;
            };
            let path = secret_path(dir, info.kid);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read signing key {}", path.display()))?;
            let seed = data_encoding::HEXLOWER
                .decode(text.trim().as_bytes())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .with_context(|| format!("signing key {} is not 64 hex digits", path.display()))?;
            let sk = SigningKey::from_bytes(&seed);
            if sk.public_key() != pk {
                bail!(
                    "signing key {} does not match the public key published for kid {}",
                    path.display(),
                    info.kid
                );
            }
            active = Some((KeyId(info.kid), sk));
        }
        Ok(Self {
            infos,
            public,
            active,
        })
    }

    /// The public key for `kid`, if this keyring knows it.
    pub fn public(&self, kid: KeyId) -> Option<PublicKey> {
        self.public.get(&kid.0).copied()
    }

    /// The key that signs new codes.
    pub fn active(&self) -> Option<(KeyId, &SigningKey)> {
        self.active.as_ref().map(|(k, s)| (*k, s))
    }

    /// Keys that can still have valid codes on `today`.
    pub fn published(&self, today: Date) -> Vec<&KeyInfo> {
        self.infos
            .iter()
            .filter(|k| k.not_after.is_none_or(|d| d >= today))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_rotate_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let today = jiff::civil::date(2026, 11, 22);
        let first = generate(dir.path(), today).unwrap();
        assert!(generate(dir.path(), today).is_err());
        let second = rotate(dir.path(), today, 365).unwrap();
        assert_eq!((first.kid, second.kid), (1, 2));
        let ring = Keyring::load(dir.path()).unwrap();
        assert_eq!(ring.active().unwrap().0, KeyId(2));
        assert!(ring.public(KeyId(1)).is_some());
        let retired = &ring.infos[0];
        assert_eq!(retired.status, KeyStatus::Retired);
        assert_eq!(retired.not_after, Some(jiff::civil::date(2027, 11, 22)));
        assert_eq!(ring.published(jiff::civil::date(2027, 11, 23)).len(), 1);
        assert!(!format!("{ring:?}")
            .contains(&std::fs::read_to_string(dir.path().join("k2.secret")).unwrap()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k2.secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
