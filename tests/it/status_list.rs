//! The signed status list (`GET /api/v1/status-list`) and offline
//! verification with it (`yisaozhi codes verify --status-list FILE`).

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");

/// Runs `codes verify URL --keys keys.json --status-list status.json` in
/// `dir` as of a day the demo codes are in date; (exit ok, stdout, stderr).
fn verify_offline(dir: &Path, url: &str, status_file: &str) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args([
            "codes",
            "verify",
            url,
            "--keys",
            "keys.json",
            "--status-list",
            status_file,
        ])
        .current_dir(dir)
        .output()
        .expect("run yisaozhi");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_status_list_tells_revoked_and_superseded_codes_apart_offline() {
    let app = spawn_app().await;
    let url_of = |code: &Value| code["url"].as_str().unwrap().to_owned();
    let (_, first) = app.get("/api/v1/merchants/XZ-0003/code").await;
    let (_, revoked) = app.get("/api/v1/merchants/XZ-0004/code").await;
    let (_, untouched) = app.get("/api/v1/merchants/XZ-0005/code").await;

    // Reissue XZ-0003 (its first code is superseded), revoke XZ-0004's.
    let (status, second) = app
        .admin(
            Method::POST,
            "/api/v1/admin/merchants/XZ-0003/codes",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let serial = revoked["serial"].as_u64().unwrap();
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/api/v1/admin/codes/{serial}/revoke"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, doc) = app.get("/api/v1/status-list").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["format"], "ysz-status-list-v1");
    let listed = |field: &str| -> Vec<u64> {
        doc[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert!(listed("revoked").contains(&serial), "{doc}");
    assert!(listed("superseded").contains(&first["serial"].as_u64().unwrap()));
    for live in [&second, &untouched] {
        let s = live["serial"].as_u64().unwrap();
        assert!(!listed("revoked").contains(&s) && !listed("superseded").contains(&s));
    }

    // Offline: the saved keys and list, no service needed from here on.
    let dir = tempfile::tempdir().unwrap();
    let (_, keys) = app.get("/api/v1/keys").await;
    std::fs::write(dir.path().join("keys.json"), keys.to_string()).unwrap();
    let text = doc.to_string();
    std::fs::write(dir.path().join("status.json"), &text).unwrap();

    let (ok, out, _) = verify_offline(dir.path(), &url_of(&first), "status.json");
    assert!(!ok && out.starts_with("superseded:"), "{out}");
    let (ok, out, _) = verify_offline(dir.path(), &url_of(&revoked), "status.json");
    assert!(!ok && out.starts_with("revoked:"), "{out}");
    for live in [&second, &untouched] {
        let (ok, out, err) = verify_offline(dir.path(), &url_of(live), "status.json");
        assert!(ok && out.starts_with("valid:"), "{out}{err}");
    }

    // A list with the revoked serial removed by hand is refused, not
    // half-believed.
    let edited = text.replace(&format!("\"revoked\":[{serial}]"), "\"revoked\":[]");
    assert_ne!(edited, text, "the revoked list holds exactly that serial");
    std::fs::write(dir.path().join("edited.json"), edited).unwrap();
    let (ok, _, err) = verify_offline(dir.path(), &url_of(&revoked), "edited.json");
    assert!(
        !ok && err.contains("status list") && err.contains("refused"),
        "{err}"
    );

    // Under another deployment's keys the list is refused too.
    let out = Command::new(BIN)
        .args(["keys", "generate", "--key-dir", "other"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args([
            "codes",
            "verify",
            &url_of(&untouched),
            "--keys",
            "other/keys.json",
        ])
        .args(["--status-list", "status.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("refused"), "{err}");
}
