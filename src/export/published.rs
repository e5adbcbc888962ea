//! Published exports: one directory per export (a generation) under the
//! open data directory, and the symlink `current` naming the one served.
//!
//! An export is written into `.building-export-…` and renamed to
//! `export-…` when its four files are complete and synced; then `current`
//! is switched to it in one step (a new symlink renamed over the old one).
//! A reader resolves `current` once and reads the index and the files of
//! that generation only: it sees the previous export or the next one,
//! never a mix and never a half-written one. One export at a time per
//! directory, across processes (the service and `yisaozhi export`): the
//! lock file `.lock`. The current generation and the one before it are
//! kept (a request that resolved `current` just before a switch still
//! reads its files); older ones, and a building directory an export that
//! died left, are removed by the next export.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::civil::Date;

use super::index::{read_index, Index};
use crate::store::SharedStore;

/// The symlink naming the served generation.
pub const CURRENT: &str = "current";
const LOCK: &str = ".lock";
const GENERATION: &str = "export-";
const BUILDING: &str = ".building-";

/// A complete export: its directory and index.
#[derive(Debug, Clone)]
pub struct Published {
    pub dir: PathBuf,
    pub index: Index,
}

/// Whether `name` is a generation's directory name (as [`generation_name`]
/// makes them): nothing `current` names may lead elsewhere.
fn is_generation(name: &str) -> bool {
    name.strip_prefix(GENERATION)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// The export `dir/current` names, with its index; `None` before the first.
pub fn current(dir: &Path) -> io::Result<Option<Published>> {
    let target = match std::fs::read_link(dir.join(CURRENT)) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let name = target
        .to_str()
        .filter(|n| is_generation(n))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}/{CURRENT} names no export", dir.display()),
            )
        })?;
    let gen = dir.join(name);
    let index = read_index(&gen)?;
    Ok(Some(Published { dir: gen, index }))
}

/// The lock on a directory's exports, held until dropped (the OS releases
/// it with the process, too).
pub struct ExportLock {
    dir: PathBuf,
    _file: File,
}

impl ExportLock {
    /// Waits for the lock of `dir` (created if missing), off the async
    /// threads.
    pub async fn acquire(dir: &Path) -> anyhow::Result<ExportLock> {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || {
            crate::files::create_dir(&dir)?;
            let file = crate::files::options()
                .create(true)
                .write(true)
                .truncate(false)
                .open(dir.join(LOCK))?;
            lock_exclusive(&file)?;
            io::Result::Ok(ExportLock { dir, _file: file })
        })
        .await
        .context("the export lock")?
        .context("the export lock")
    }

    /// Writes a new export of `store` as of `today` and makes it the
    /// current one; removes the generations before the previous one.
    pub async fn publish(
        &self,
        store: &SharedStore,
        today: Date,
        progress: bool,
    ) -> anyhow::Result<Published> {
        let dir = &self.dir;
        remove_all(dir, |name| name.starts_with(BUILDING))?;
        let name = generation_name(dir);
        let building = dir.join(format!("{BUILDING}{name}"));
        let index = super::write::export(store, &building, today, progress).await?;
        let gen = dir.join(&name);
        std::fs::rename(&building, &gen)
            .with_context(|| format!("renaming {} to {name}", building.display()))?;
        sync_dir(dir)?;
        let previous = current(dir).ok().flatten().map(|p| p.dir);
        switch(dir, &name).with_context(|| format!("switching {}/{CURRENT}", dir.display()))?;
        let keep = |n: &str| n == name || previous.as_ref().is_some_and(|p| p.ends_with(n));
        remove_all(dir, |n| is_generation(n) && !keep(n))?;
        Ok(Published { dir: gen, index })
    }
}

/// Waits for an exclusive `flock` on `file` (released when it is closed).
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock(2) on a descriptor `file` keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A new generation's name: `export-` and the milliseconds since 1970,
/// zero-padded so that names sort by time; unique in `dir`.
fn generation_name(dir: &Path) -> String {
    let mut ms = crate::clock::now().as_millisecond().max(0);
    loop {
        let name = format!("{GENERATION}{ms:015}");
        if !dir.join(&name).exists() {
            return name;
        }
        ms += 1;
    }
}

/// Points `dir/current` at `name` in one step.
fn switch(dir: &Path, name: &str) -> io::Result<()> {
    let temp = dir.join(format!(".{CURRENT}.tmp"));
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(name, &temp)?;
    std::fs::rename(&temp, dir.join(CURRENT))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the entries of `dir` whose names `doomed` picks.
fn remove_all(dir: &Path, doomed: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_str().is_some_and(&doomed) {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_names_a_generation_only() {
        assert!(is_generation("export-001765000000000"));
        for name in ["export-", "export-1/../x", "..", "/etc", "export-1a", "x-1"] {
            assert!(!is_generation(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(current(dir.path()).unwrap().is_none());
        std::os::unix::fs::symlink("/etc", dir.path().join(CURRENT)).unwrap();
        assert!(current(dir.path()).is_err());
    }

    #[test]
    fn generation_names_sort_by_time_and_do_not_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let first = generation_name(dir.path());
        std::fs::create_dir(dir.path().join(&first)).unwrap();
        let second = generation_name(dir.path());
        assert!(second > first, "{second} after {first}");
        assert!(is_generation(&first) && is_generation(&second));
    }
}
