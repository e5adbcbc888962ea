//! Service settings: one typed struct, layered command-line flag → `YSZ_*`
//! environment variable → TOML file → default. Every key is documented here
//! and in `deploy/yisaozhi.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::store::StoreSpec;

/// The settings as they may appear in the TOML file (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// `store`: `embedded:DIR`, `redis://HOST:PORT` or
    /// `redis+cluster://HOST:PORT,...`. Default `embedded:./data`.
    pub store: Option<String>,
    /// `listen`: address to bind. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// `public_base_url`: the scheme and host printed in codes, e.g.
    /// `https://ysz.example.gov.cn`. Default `http://<listen>`.
    pub public_base_url: Option<String>,
    /// `key_dir`: directory of signing keys. Default `<DIR>/keys` for an
    /// embedded store, else `./keys`.
    pub key_dir: Option<PathBuf>,
    /// `cache_capacity`: merchants kept in the scan cache. Default 100000.
    pub cache_capacity: Option<u64>,
    /// `code_validity_days`: how long a newly issued code is valid. Default 365.
    pub code_validity_days: Option<i32>,
    /// `rules`: a grading rules TOML file. Default: the built-in rules
    /// (`deploy/rules.toml`).
    pub rules: Option<PathBuf>,
    /// `store_budget_ms` (`YSZ_STORE_BUDGET_MS`): Redis, the service: the
    /// most a scan waits for the store before it answers 503, connecting
    /// included; the read itself gives up a little earlier
    /// (`store::redis::scan_read_limit`) and marks Redis down, so the scans
    /// after it answer 503 at once until Redis answers again. 10..=10000,
    /// default 100.
    pub store_budget_ms: Option<u64>,
    /// `store_admin_budget_ms` (`YSZ_STORE_ADMIN_BUDGET_MS`): Redis, the
    /// service: the most any other store reply (regulator API and
    /// workbench, readiness, the change poll) is waited for before the
    /// request answers 503 and Redis is marked down. 100..=60000, default
    /// 1000.
    pub store_admin_budget_ms: Option<u64>,
    /// `store_connect_timeout_s` (`YSZ_STORE_CONNECT_TIMEOUT_S`): Redis
    /// Cluster: how long connecting keeps trying, with backoff, while the
    /// cluster settles before it fails and says what to check. 0..=600
    /// (0: one attempt), default 10.
    pub store_connect_timeout_s: Option<u64>,
}

/// Values given on the command line or in the environment (clap reads both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub store: Option<String>,
    pub listen: Option<String>,
    pub public_base_url: Option<String>,
    pub key_dir: Option<PathBuf>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreSpec,
    pub listen: SocketAddr,
    /// `None`: `http://` and the address actually bound.
    pub public_base_url: Option<String>,
    pub key_dir: PathBuf,
    pub cache_capacity: u64,
    pub code_validity_days: i32,
    pub rules: Option<PathBuf>,
    /// See [`FileSettings::store_budget_ms`].
    pub store_budget: Duration,
    /// See [`FileSettings::store_admin_budget_ms`].
    pub store_admin_budget: Duration,
    /// See [`FileSettings::store_connect_timeout_s`].
    pub store_connect_timeout: Duration,
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

fn env_u64(key: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map(Some)
            .with_context(|| format!("{key}=`{v}`: expected a whole number")),
        Err(_) => Ok(None),
    }
}

/// A whole number from the variable `env_key`, else the file's `key`, else
/// `default`, within `range`; errors name the key.
fn bounded(
    (key, env_key): (&str, &str),
    file: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    let value = env_u64(env_key)?.or(file).unwrap_or(default);
    if !range.contains(&value) {
        anyhow::bail!(
            "{key} `{value}` (file or {env_key}): expected {}..={}",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

/// Checks a public base URL and returns it without a trailing slash.
pub fn parse_base_url(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .with_context(|| {
            format!("public_base_url `{raw}`: expected http://HOST or https://HOST")
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        anyhow::bail!("public_base_url `{raw}`: expected scheme and host only, e.g. https://ysz.example.gov.cn");
    }
    Ok(trimmed.to_owned())
}

/// A store URL with any password replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => raw.to_owned(),
    }
}

impl Settings {
    /// The effective settings as TOML, secrets redacted.
    pub fn describe(&self) -> String {
        let store = match &self.store {
            StoreSpec::Embedded(dir) => format!("embedded:{}", dir.display()),
            StoreSpec::Redis(url) => redact_url(url),
            StoreSpec::RedisCluster(nodes) => format!(
                "redis+cluster://{}",
                nodes
                    .iter()
                    .map(|n| redact_url(&format!("x://{n}"))[4..].to_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::new();
        out.push_str(&format!("store = {}\n", q(&store)));
        out.push_str(&format!("listen = {}\n", q(&self.listen.to_string())));
        match &self.public_base_url {
            Some(u) => out.push_str(&format!("public_base_url = {}\n", q(u))),
            None => out.push_str(&format!(
                "# public_base_url = \"http://{}\" (default)\n",
                self.listen
            )),
        }
        out.push_str(&format!(
            "key_dir = {}\n",
            q(&self.key_dir.display().to_string())
        ));
        out.push_str(&format!("cache_capacity = {}\n", self.cache_capacity));
        out.push_str(&format!(
            "code_validity_days = {}\n",
            self.code_validity_days
        ));
        match &self.rules {
            Some(p) => out.push_str(&format!("rules = {}\n", q(&p.display().to_string()))),
            None => out.push_str("# rules: built-in deploy/rules.toml\n"),
        }
        out.push_str(&format!(
            "store_budget_ms = {}\n",
            self.store_budget.as_millis()
        ));
        out.push_str(&format!(
            "store_admin_budget_ms = {}\n",
            self.store_admin_budget.as_millis()
        ));
        out.push_str(&format!(
            "store_connect_timeout_s = {}\n",
            self.store_connect_timeout.as_secs()
        ));
        out
    }

    /// Builds the effective settings. `overrides` already merges flags and
    /// environment (flag wins); the file fills what they leave open.
    pub fn load(overrides: Overrides) -> anyhow::Result<Settings> {
        let file = match &overrides.config {
            Some(p) => read_file(p)?,
            None => FileSettings::default(),
        };
        let store_raw = overrides
            .store
            .or(file.store)
            .unwrap_or_else(|| "embedded:./data".into());
        let store = StoreSpec::parse(&store_raw).map_err(anyhow::Error::msg)?;
        let listen_raw = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw.parse().with_context(|| {
            format!("listen `{listen_raw}`: expected IP:PORT, e.g. 127.0.0.1:8080")
        })?;
        let public_base_url = overrides
            .public_base_url
            .or(file.public_base_url)
            .map(|u| parse_base_url(&u))
            .transpose()?;
        let key_dir = overrides
            .key_dir
            .or(file.key_dir)
            .unwrap_or_else(|| match &store {
                StoreSpec::Embedded(dir) => dir.join("keys"),
                StoreSpec::Redis(_) | StoreSpec::RedisCluster(_) => "./keys".into(),
            });
        let cache_capacity = env_u64("YSZ_CACHE_CAPACITY")?
            .or(file.cache_capacity)
            .unwrap_or(100_000);
        let code_validity_days = match env_u64("YSZ_CODE_VALIDITY_DAYS")? {
            Some(v) => i32::try_from(v).context("YSZ_CODE_VALIDITY_DAYS: too large")?,
            None => file.code_validity_days.unwrap_or(365),
        };
        if !(1..=3650).contains(&code_validity_days) {
            anyhow::bail!("code_validity_days `{code_validity_days}`: expected 1..=3650");
        }
        let rules = std::env::var_os("YSZ_RULES")
            .map(PathBuf::from)
            .or(file.rules);
        let store_budget = Duration::from_millis(bounded(
            ("store_budget_ms", "YSZ_STORE_BUDGET_MS"),
            file.store_budget_ms,
            crate::store::redis::SCAN_BUDGET.as_millis() as u64,
            10..=10_000,
        )?);
        let store_admin_budget = Duration::from_millis(bounded(
            ("store_admin_budget_ms", "YSZ_STORE_ADMIN_BUDGET_MS"),
            file.store_admin_budget_ms,
            1000,
            100..=60_000,
        )?);
        let store_connect_timeout = Duration::from_secs(bounded(
            ("store_connect_timeout_s", "YSZ_STORE_CONNECT_TIMEOUT_S"),
            file.store_connect_timeout_s,
            crate::store::redis::CONNECT_WAIT.as_secs(),
            0..=600,
        )?);
        Ok(Settings {
            store,
            listen,
            public_base_url,
            key_dir,
            cache_capacity,
            code_validity_days,
            rules,
            store_budget,
            store_admin_budget,
            store_connect_timeout,
        })
    }

    /// The Redis options these settings give a command-line job: the scan
    /// budget and the connect wait; replies may take the default response
    /// timeout (a batch write is large).
    pub fn redis_options(&self) -> crate::store::redis::RedisOptions {
        crate::store::redis::RedisOptions {
            scan_budget: self.store_budget,
            connect_wait: self.store_connect_timeout,
            ..Default::default()
        }
    }

    /// Opens the store these settings name, for a command-line job.
    pub async fn open_store(&self) -> anyhow::Result<crate::store::SharedStore> {
        self.store.open_with(self.redis_options()).await
    }

    /// The grading rules these settings name.
    pub fn load_rules(&self) -> anyhow::Result<crate::grading::Rules> {
        match &self.rules {
            None => Ok(crate::grading::Rules::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read rules file {}", p.display()))?;
                crate::grading::Rules::from_toml(&text)
                    .with_context(|| format!("rules file {}", p.display()))
            }
        }
    }
}
