//! Service settings: one typed struct, layered command-line flag → `YSZ_*`
//! environment variable → TOML file → default. Every key is documented here
//! and in `deploy/yisaozhi.example.toml`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Re-exported for `store::redis`, which still names it here.
use crate::redact::redact_url;
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
    /// `trusted_proxies`: addresses or CIDR blocks of reverse proxies whose
    /// `X-Forwarded-For` names the client. Default: none (the peer address
    /// is the client, and `X-Forwarded-For` is ignored).
    pub trusted_proxies: Option<Vec<String>>,
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
    /// `session_idle_minutes` (`YSZ_SESSION_IDLE_MINUTES`): the workbench:
    /// a staff session unused this long ends (the member of staff logs in
    /// again). 5..=10080 (a week), default 480 (8 hours).
    pub session_idle_minutes: Option<u64>,
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
    /// Peers whose `X-Forwarded-For` is believed (failed authentication is
    /// counted per client address).
    pub trusted_proxies: Vec<IpNet>,
    /// See [`FileSettings::store_budget_ms`].
    pub store_budget: Duration,
    /// See [`FileSettings::store_admin_budget_ms`].
    pub store_admin_budget: Duration,
    /// See [`FileSettings::store_connect_timeout_s`].
    pub store_connect_timeout: Duration,
    /// See [`FileSettings::session_idle_minutes`].
    pub session_idle: Duration,
}

/// An address block, `IP` or `IP/PREFIX` (IPv4 or IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `203.0.113.7`, `10.0.0.0/8`, `::1` or `fd00::/8`; host bits
    /// set below the prefix are refused (`10.0.0.1/8` is likely a typo).
    pub fn parse(raw: &str) -> Result<IpNet, String> {
        let raw = raw.trim();
        let (ip, prefix) = match raw.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| {
            format!(
                "trusted proxy `{}`: expected an IP address or IP/PREFIX",
                crate::model::truncate(raw)
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                format!(
                    "trusted proxy `{}`: prefix must be 0-{max}",
                    crate::model::truncate(raw)
                )
            })?,
        };
        let net = IpNet { addr, prefix };
        if net.network() != bits(addr) {
            return Err(format!(
                "trusted proxy `{}`: address has bits set below the /{prefix} prefix",
                crate::model::truncate(raw)
            ));
        }
        Ok(net)
    }

    fn network(&self) -> u128 {
        mask(bits(self.addr), self.prefix, self.addr.is_ipv4())
    }

    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4()
            && mask(bits(ip), self.prefix, ip.is_ipv4()) == self.network()
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(bits: u128, prefix: u8, v4: bool) -> u128 {
    let width = if v4 { 32 } else { 128 };
    let host = u32::from(width - prefix);
    if host >= 128 {
        0
    } else {
        bits >> host << host
    }
}

/// Parses a list of trusted proxies, comma- or space-separated.
pub fn parse_trusted_proxies<S: AsRef<str>>(items: &[S]) -> anyhow::Result<Vec<IpNet>> {
    const MAX: usize = 256;
    let nets: Vec<IpNet> = items
        .iter()
        .flat_map(|s| {
            s.as_ref()
                .split([',', ' '])
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.trim().is_empty())
        .map(|s| IpNet::parse(&s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    if nets.len() > MAX {
        anyhow::bail!("trusted_proxies: at most {MAX} entries, got {}", nets.len());
    }
    Ok(nets)
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
        let proxies: Vec<toml::Value> = self
            .trusted_proxies
            .iter()
            .map(|n| toml::Value::String(n.to_string()))
            .collect();
        out.push_str(&format!(
            "trusted_proxies = {}\n",
            toml::Value::Array(proxies)
        ));
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
        out.push_str(&format!(
            "session_idle_minutes = {}\n",
            self.session_idle.as_secs() / 60
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
        let trusted_proxies = match std::env::var("YSZ_TRUSTED_PROXIES") {
            Ok(v) => parse_trusted_proxies(&[v]).context("YSZ_TRUSTED_PROXIES")?,
            Err(_) => parse_trusted_proxies(file.trusted_proxies.as_deref().unwrap_or_default())
                .context("trusted_proxies")?,
        };
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
        let session_idle = Duration::from_secs(
            60 * bounded(
                ("session_idle_minutes", "YSZ_SESSION_IDLE_MINUTES"),
                file.session_idle_minutes,
                480,
                5..=10_080,
            )?,
        );
        Ok(Settings {
            store,
            listen,
            public_base_url,
            key_dir,
            cache_capacity,
            code_validity_days,
            rules,
            trusted_proxies,
            store_budget,
            store_admin_budget,
            store_connect_timeout,
            session_idle,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks() {
        let nets = parse_trusted_proxies(&["127.0.0.1, ::1", "10.0.0.0/8 fd00::/8", " "]).unwrap();
        assert_eq!(nets.len(), 4);
        let has = |ip: &str| nets.iter().any(|n| n.contains(ip.parse().unwrap()));
        for ip in [
            "127.0.0.1",
            "::1",
            "10.200.3.4",
            "fd12::5",
            "::ffff:10.1.1.1",
        ] {
            assert!(has(ip), "{ip}");
        }
        for ip in ["127.0.0.2", "11.0.0.1", "fe80::1", "::2"] {
            assert!(!has(ip), "{ip}");
        }
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(!IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("::8".parse().unwrap()));
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "::/129",
            "1.2.3.4/x",
            "1.2.3",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
        let err = parse_trusted_proxies(&["10.0.0.1/8"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.1/8"), "{err}");
    }
}
