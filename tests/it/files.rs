//! Files only for their owner: whatever the umask, everything the service
//! writes (store, journals, keys, rejects, the demo's inputs and token) is
//! mode 0600 in directories of mode 0700. The commands run under `umask 000`
//! (set in a shell for the child only: the umask is per process).

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");

/// `yisaozhi ARGS` under `umask 000`, with no inherited `YSZ_*` variable.
fn permissive(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 000 && exec "$0" "$@""#)
        .arg(BIN)
        .args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("YSZ_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `root` (itself included) whose mode is
/// not 0600 (files) or 0700 (directories), as `path mode` lines.
fn too_open(root: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode(&p) != want {
            wrong.push(format!("{} {:o}", p.display(), mode(&p)));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    wrong
}

fn names(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// `yisaozhi demo` in `dir` under umask 000, until it serves.
struct Demo(std::process::Child);

impl Demo {
    fn start(dir: &Path) -> Demo {
        let mut demo = Demo(
            permissive(&["demo", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start yisaozhi demo"),
        );
        let stdout = BufReader::new(demo.0.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = String::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if line.contains("Press Ctrl-C") {
                return demo;
            }
            seen.push_str(&line);
            seen.push('\n');
            assert!(Instant::now() < deadline, "demo did not start:\n{seen}");
        }
        panic!("demo exited before serving:\n{seen}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn under_umask_000_the_demo_store_keys_rejects_and_token_are_for_their_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("county/demo");
    {
        let _demo = Demo::start(&dir);
        let present = names(&dir);
        // While the service runs SQLite keeps its journals beside the store.
        for name in [
            "admin-token",
            "keys",
            "merchants.jsonl",
            "records.jsonl",
            "rejects.jsonl",
            "yisaozhi.sqlite",
            "yisaozhi.sqlite-wal",
            "yisaozhi.sqlite-shm",
        ] {
            assert!(
                present.iter().any(|n| n == name),
                "no {name} in {present:?}"
            );
        }
        assert_eq!(too_open(&tmp.path().join("county")), Vec::<String>::new());
    }

    // Files left wider by an older version are narrowed when opened again.
    for name in [
        "yisaozhi.sqlite",
        "yisaozhi.sqlite-wal",
        "yisaozhi.sqlite-shm",
    ] {
        let p = dir.join(name);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let out = permissive(&[
        "refresh",
        "--merchants",
        "merchants.jsonl",
        "--records",
        "records.jsonl",
    ])
    .args(["--store", "embedded:."])
    .args(["--rejects", "rejects-2.jsonl"])
    .current_dir(&dir)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(too_open(&tmp.path().join("county")), Vec::<String>::new());
}

#[test]
fn under_umask_000_a_new_key_directory_and_its_keys_are_for_their_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("etc/yisaozhi/keys");
    for action in ["generate", "rotate"] {
        let out = permissive(&["keys", action, "--key-dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(names(&keys), ["k1.secret", "k2.secret", "keys.json"]);
    assert_eq!(too_open(&tmp.path().join("etc")), Vec::<String>::new());
}

#[test]
fn under_umask_000_a_rejects_file_is_for_its_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("merchants.jsonl"),
        "{\"id\":\"M1\",\"name\":\"店\",\"kind\":\"shop\",\"address\":\"路1号\",\"region\":\"511504\",\"categories\":[],\"contact_phone\":\"13800000000\"}\n\
         {\"id\":\"M2\",\"name\":\"店\",\"kind\":\"shop\",\"address\":\"路2号\",\"region\":\"bad\",\"categories\":[],\"contact_phone\":\"13900000000\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("records.jsonl"), "").unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::set_permissions(d.join("out"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = permissive(&[
        "refresh",
        "--merchants",
        "merchants.jsonl",
        "--records",
        "records.jsonl",
    ])
    .args([
        "--store",
        "embedded:store",
        "--rejects",
        "out/rejects.jsonl",
    ])
    .current_dir(d)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejects = std::fs::read_to_string(d.join("out/rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert_eq!(mode(&d.join("out/rejects.jsonl")), 0o600);
    // The operator's own directory keeps its mode; the store's is ours.
    assert_eq!(mode(&d.join("out")), 0o755);
    assert_eq!(too_open(&d.join("store")), Vec::<String>::new());
}
