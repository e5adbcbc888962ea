use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use yisaozhi::settings::{Overrides, Settings};
use yisaozhi::startup::Application;

/// A running service on the embedded store, seeded with the demo data.
pub struct TestApp {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
}

/// Starts the server on `dir`'s embedded store on a free port.
pub async fn serve(dir: &Path) -> String {
    let settings = Settings::load(Overrides {
        store: Some(format!("embedded:{}", dir.display())),
        listen: Some("127.0.0.1:0".into()),
        ..Overrides::default()
    })
    .expect("settings");
    let app = Application::build(settings).await.expect("build app");
    let base = app.base_url().to_owned();
    tokio::spawn(app.run_until_stopped());
    base
}

/// Prepares the demo data in a fresh directory and serves it.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let prepared = yisaozhi::demo::prepare(dir.path(), 365)
        .await
        .expect("demo prepare");
    let base = serve(dir.path()).await;
    TestApp {
        base,
        token: prepared.token,
        client: reqwest::Client::new(),
        dir,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ctype, res.text().await.unwrap())
    }

    /// The token of a merchant's active code.
    pub async fn token_of(&self, id: &str) -> String {
        let (status, code) = self.get(&format!("/api/v1/merchants/{id}/code")).await;
        assert_eq!(status, 200, "{code}");
        code["token"].as_str().unwrap().to_owned()
    }

    pub async fn scan(&self, id: &str) -> Value {
        let token = self.token_of(id).await;
        let (status, body) = self.get(&format!("/api/v1/scan/{token}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Flips one digit of a token at `pos`, keeping it a digit string.
pub fn flip_digit(token: &str, pos: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
    String::from_utf8(bytes).unwrap()
}

/// Every projection of `store` as JSON, by merchant id.
pub async fn all_projections(
    store: &dyn yisaozhi::store::Store,
) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .projections_page(after.clone(), 1000)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.merchant.id.clone());
        for p in page {
            out.insert(p.merchant.id.to_string(), serde_json::to_value(&p).unwrap());
        }
    }
    out
}
