//! Files only for their owner. The store, its spill files, the signing keys,
//! the rejects file and the demo's token hold merchants' personal data or
//! secrets: they are created mode 0600, in directories created mode 0700,
//! whatever the process umask (systemd sets `UMask=0077`, a shell usually
//! 0022). The modes are set explicitly after creation, because the umask
//! only ever removes bits from the mode asked for.
//!
//! A directory that already exists is left as it is (it may be the
//! operator's own, such as the working directory); a file of ours that
//! exists with a wider mode is narrowed to 0600 when it is opened.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of every file this module creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory this module creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parent, each mode 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| !p.exists())
        .collect();
    for p in missing.into_iter().rev() {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
        match builder.create(p) {
            Ok(()) => set_mode(p, DIR_MODE)?,
            // Created meanwhile by another process: not ours to change.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates (or truncates) `path` for writing, mode 0600.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    set_file_mode(&file)?;
    Ok(file)
}

/// Creates `path` empty, mode 0600, if it does not exist; narrows it to
/// 0600 if it does. For files another library creates or opens (SQLite).
pub fn prepare_file(path: &Path) -> io::Result<()> {
    let file = options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    set_file_mode(&file)
}

/// Narrows `path` to mode 0600 if it exists.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => set_mode(path, FILE_MODE),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open options that create files with mode 0600 (before the umask).
pub fn options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, FILE_MODE);
    opts
}

fn set_file_mode(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    let _ = file;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_and_files_are_for_their_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        prepare_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x", "not truncated");
        create_file(&dir.join("g")).unwrap();
        assert_eq!(mode(&dir.join("g")), 0o600);
        // An existing directory is not ours to change.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o755);
    }
}
