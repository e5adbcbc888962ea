//! Personal data never leaves unmasked: not on any public page or API, not in
//! the logs.

use std::collections::BTreeSet;

use crate::helpers::spawn_app;

/// The demo's personal fields: contact names, phone numbers, ID numbers.
fn personal_values(merchants_jsonl: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in merchants_jsonl.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["contact_name", "contact_phone", "id_number"] {
            if let Some(v) = m[field].as_str() {
                // A contact name may legitimately be part of a shop's name
                // ("王记…"); only count it when the shop does not carry it.
                let public = format!("{}{}", m["name"], m["address"]);
                if field != "contact_name" || (v.chars().count() >= 2 && !public.contains(v)) {
                    out.insert(v.to_owned());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn no_public_endpoint_shows_personal_data_unmasked() {
    let app = spawn_app().await;
    let merchants = std::fs::read_to_string(app.dir.path().join("merchants.jsonl")).unwrap();
    let secrets = personal_values(&merchants);
    assert!(
        secrets.len() >= 100,
        "the demo must carry personal data to test masking"
    );
    // Every vendor (they carry ID numbers) and a handful of shops.
    let ids: Vec<String> = merchants
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .enumerate()
        .filter(|(i, m)| m["kind"] == "vendor" || i % 12 == 0)
        .map(|(_, m)| m["id"].as_str().unwrap().to_owned())
        .collect();
    let mut checked = 0;
    for id in &ids {
        let token = app.token_of(id).await;
        for route in yisaozhi::web::ROUTES {
            if route.method != "get" || !matches!(route.tag, "consumer" | "public" | "shop") {
                continue;
            }
            let path = route.path.replace("{id}", id).replace("{token}", &token);
            let res = app
                .client
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap();
            let body = res.bytes().await.unwrap();
            let text = String::from_utf8_lossy(&body);
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{path} shows `{secret}`");
            }
            checked += 1;
        }
    }
    assert!(checked >= ids.len() * 8, "only {checked} responses checked");
}

#[tokio::test]
async fn logs_of_a_busy_service_hold_no_personal_data_and_no_token() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yisaozhi"))
        .args(["demo", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("YSZ_LOG", "debug")
        .env("YSZ_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..400 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "demo did not start");
    let token = std::fs::read_to_string(data.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    for id in ["XZ-0001", "XZ-0065", "XZ-0070"] {
        let code: serde_json::Value = client
            .get(format!("{base}/api/v1/merchants/{id}/code"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        client
            .get(format!("{base}/s/{}", code["token"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        client
            .get(format!("{base}/merchants/{id}/print"))
            .send()
            .await
            .unwrap();
        client
            .put(format!("{base}/api/v1/admin/merchants/{id}/override"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"grade": "yellow", "reason": "复查"}))
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{base}/api/v1/admin/audit"))
        .bearer_auth("ysz_deadbeef_00")
        .send()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.lines().count() > 10,
        "expected request logs, got:\n{logs}"
    );
    assert!(logs.contains("request_id"), "logs carry a request id");
    let merchants = std::fs::read_to_string(data.join("merchants.jsonl")).unwrap();
    for secret in personal_values(&merchants) {
        assert!(!logs.contains(&secret), "log shows `{secret}`");
    }
    let secret_part = token.rsplit('_').next().unwrap();
    assert!(!logs.contains(secret_part), "log shows the regulator token");
    let key = std::fs::read_to_string(data.join("keys/k1.secret")).unwrap();
    assert!(!logs.contains(key.trim()), "log shows the signing key");
}
