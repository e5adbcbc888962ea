//! `keys`: the signing key directory.

use crate::clock;
use crate::keys::{self, KeyInfo};
use crate::settings::Settings;

use super::args::KeysAction;

fn print_keys(infos: &[KeyInfo]) {
    println!(
        "{:<6} {:<8} {:<12} {:<12} public key",
        "kid", "status", "not before", "not after"
    );
    for k in infos {
        let status = match k.status {
            keys::KeyStatus::Active => "active",
            keys::KeyStatus::Retired => "retired",
        };
        let after = k.not_after.map_or("-".to_owned(), |d| d.to_string());
        println!(
            "{:<6} {:<8} {:<12} {:<12} {}",
            k.kid,
            status,
            k.not_before.to_string(),
            after,
            k.public_key
        );
    }
}

/// `keys generate|rotate|list`.
pub(super) fn run(action: KeysAction, settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.key_dir;
    let today = clock::today();
    match action {
        KeysAction::Generate => {
            let k = keys::generate(dir, today)?;
            println!("generated key {} in {}", k.kid, dir.display());
        }
        KeysAction::Rotate => {
            let k = keys::rotate(dir, today, settings.code_validity_days)?;
            println!("key {} is now active in {}", k.kid, dir.display());
        }
        KeysAction::List => print_keys(&keys::list(dir)?),
    }
    Ok(())
}
