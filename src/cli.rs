//! The command line: one binary, one subcommand per job (CONTRACT §1).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock;
use crate::domain::MerchantId;
use crate::keys::{self, KeyInfo, Keyring};
use crate::settings::{Overrides, Settings};
use crate::startup::Application;

/// 一扫知 — signed, colour-graded credit codes for merchants.
#[derive(Debug, Parser)]
#[command(name = "yisaozhi", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create sample data, keys, codes and a regulator token in DIR, then serve.
    Demo {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Directory for everything the demo creates (reused on a re-run).
        #[arg(long, default_value = "./demo-data")]
        data_dir: PathBuf,
    },
    /// Run the scan service.
    Serve {
        #[command(flatten)]
        common: CommonArgs,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "YSZ_LISTEN")]
        listen: Option<String>,
        /// Scheme and host printed in codes, e.g. https://ysz.example.gov.cn
        /// [default: http://LISTEN].
        #[arg(long, env = "YSZ_PUBLIC_BASE_URL")]
        public_base_url: Option<String>,
    },
    /// Import merchants and records, grade, and write projections (the batch job).
    Refresh(RefreshArgs),
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Issue and verify codes.
    Codes {
        #[command(subcommand)]
        action: CodesAction,
    },
    /// Manage regulator API tokens.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
}

/// Settings shared by the commands that touch the store or keys.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// Settings file (TOML); flags and YSZ_* variables take precedence.
    #[arg(long, env = "YSZ_CONFIG")]
    pub config: Option<PathBuf>,
    /// embedded:DIR, redis://HOST:PORT or redis+cluster://HOST:PORT,... [default: embedded:./data].
    #[arg(long, env = "YSZ_STORE")]
    pub store: Option<String>,
    /// Directory of signing keys [default: DIR/keys for embedded:DIR].
    #[arg(long, env = "YSZ_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
}

impl CommonArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(Overrides {
            config: self.config.clone(),
            store: self.store.clone(),
            key_dir: self.key_dir.clone(),
            ..Overrides::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Merchants file (JSONL).
    #[arg(long)]
    pub merchants: Option<PathBuf>,
    /// Record files (JSONL), or directories of them.
    #[arg(long, num_args = 1..)]
    pub records: Vec<PathBuf>,
    /// Grade as of this date (YYYY-MM-DD) [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Regrade every merchant, not only those with new records or a due change.
    #[arg(long)]
    pub full: bool,
    /// Where rejected lines are written (JSON lines: file, line, reason).
    #[arg(long, default_value = "rejects.jsonl")]
    pub rejects: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create the first signing key.
    Generate,
    /// Make a new key active; the old one verifies until its codes expire.
    Rotate,
    /// List key ids and status.
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Svg,
}

#[derive(Debug, Subcommand)]
pub enum CodesAction {
    /// Issue new codes (superseding earlier ones) and write them as images.
    Issue {
        #[command(flatten)]
        common: CommonArgs,
        /// Every merchant.
        #[arg(long, conflicts_with = "merchant", required_unless_present = "merchant")]
        all: bool,
        /// One merchant.
        #[arg(long)]
        merchant: Option<String>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "svg")]
        format: Format,
        /// Scheme and host printed in codes [default: http://127.0.0.1:8080].
        #[arg(long, env = "YSZ_PUBLIC_BASE_URL")]
        public_base_url: Option<String>,
    },
    /// Check a code offline: what it says and whether its signature holds.
    Verify {
        /// The scanned URL or the bare token.
        url_or_token: String,
        /// Published keys: a saved /api/v1/keys answer or a key directory's keys.json.
        #[arg(long)]
        keys: PathBuf,
        /// Judge expiry as of this date [default: today].
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Create a token; it is printed once and stored only as a hash.
    Add {
        #[command(flatten)]
        common: CommonArgs,
        /// Who holds it (recorded as the actor in the audit log).
        #[arg(long)]
        name: String,
        /// read, write, or write:<region prefix>.
        #[arg(long, default_value = "read")]
        scope: String,
    },
}

fn parse_date(raw: &str, what: &str) -> anyhow::Result<jiff::civil::Date> {
    raw.parse()
        .with_context(|| format!("{what} `{raw}`: expected YYYY-MM-DD"))
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { listen, data_dir } => demo(&listen, &data_dir).await,
        Command::Serve {
            common,
            listen,
            public_base_url,
        } => {
            let settings = Settings::load(Overrides {
                config: common.config,
                store: common.store,
                listen,
                public_base_url,
                key_dir: common.key_dir,
            })?;
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), base_url = app.base_url(), "serving");
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Refresh(args) => refresh(args).await,
        Command::Keys { action, common } => keys_cmd(action, &common.settings()?),
        Command::Codes { action } => codes_cmd(action).await,
        Command::Tokens { action } => tokens_cmd(action).await,
    }
}

async fn demo(listen: &str, dir: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(Overrides {
        store: Some(format!("embedded:{}", dir.display())),
        listen: Some(listen.to_owned()),
        ..Overrides::default()
    })?;
    let prepared = crate::demo::prepare(dir, settings.code_validity_days).await?;
    let app = Application::build(settings).await?;
    let base = app.base_url().to_owned();
    println!("{}", prepared.summary);
    println!("codes issued: {}", prepared.codes_issued);
    println!();
    println!("yisaozhi demo is serving at {base}/");
    println!("data directory:   {}", prepared.dir.display());
    println!("regulator token:  {}", prepared.token);
    println!("  (also in {})", prepared.dir.join("admin-token").display());
    for (id, grade, token) in &prepared.samples {
        let token = yisaozhi_codes::Token::parse(token)?;
        println!(
            "sample scan, {} ({id}): {}",
            grade.label_zh(),
            yisaozhi_codes::url(&base, &token)
        );
    }
    if let Some((id, _, _)) = prepared.samples.first() {
        println!("print page:       {base}/merchants/{id}/print");
    }
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped().await?;
    Ok(())
}

fn expand_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            inside.sort();
            out.extend(inside);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

async fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    let settings = args.common.settings()?;
    if args.merchants.is_none() && args.records.is_empty() && !args.full {
        tracing::info!("no input files: regrading merchants that are due");
    }
    let as_of = match &args.as_of {
        Some(raw) => parse_date(raw, "--as-of")?,
        None => clock::today(),
    };
    let store = settings.store.open().await?;
    let rules = settings.load_rules()?;
    let opts = crate::refresh::RefreshOptions {
        merchants: args.merchants,
        records: expand_paths(&args.records)?,
        as_of,
        full: args.full,
        rejects: args.rejects.clone(),
    };
    let summary = crate::refresh::run(store.as_ref(), &rules, &opts).await?;
    println!("{summary}");
    if summary.rejected > 0 {
        println!(
            "{} rejected lines written to {}",
            summary.rejected,
            args.rejects.display()
        );
    }
    Ok(())
}

fn print_keys(infos: &[KeyInfo]) {
    println!("{:<6} {:<8} {:<12} {:<12} public key", "kid", "status", "not before", "not after");
    for k in infos {
        let status = match k.status {
            keys::KeyStatus::Active => "active",
            keys::KeyStatus::Retired => "retired",
        };
        let after = k.not_after.map_or("-".to_owned(), |d| d.to_string());
        println!("{:<6} {:<8} {:<12} {:<12} {}", k.kid, status, k.not_before.to_string(), after, k.public_key);
    }
}

fn keys_cmd(action: KeysAction, settings: &Settings) -> anyhow::Result<()> {
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

async fn codes_cmd(action: CodesAction) -> anyhow::Result<()> {
    match action {
        CodesAction::Issue {
            common,
            all,
            merchant,
            out,
            format: Format::Svg,
            public_base_url,
        } => {
            let settings = common.settings()?;
            let base = crate::settings::parse_base_url(
                public_base_url
                    .as_deref()
                    .or(settings.public_base_url.as_deref())
                    .unwrap_or("http://127.0.0.1:8080"),
            )?;
            let store = settings.store.open().await?;
            let keyring = Keyring::load(&settings.key_dir)?;
            let ids = match (all, merchant) {
                (true, _) => store.all_merchant_ids().await?,
                (false, Some(raw)) => vec![MerchantId::parse(&raw)?],
                (false, None) => bail!("give --all or --merchant ID"),
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let total = ids.len();
            for (i, id) in ids.iter().enumerate() {
                let code = crate::issuing::issue(
                    store.as_ref(),
                    &keyring,
                    id,
                    settings.code_validity_days,
                    Some("cli"),
                )
                .await?;
                let token = yisaozhi_codes::Token::parse(&code.token)?;
                let url = yisaozhi_codes::url(&base, &token);
                let qr = yisaozhi_codes::Qr::encode(&url)?;
                let svg = yisaozhi_codes::svg(&qr, code.printed_grade, Some(id.as_str()));
                let path = out.join(format!("{id}.svg"));
                std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
                if (i + 1) % 1000 == 0 || i + 1 == total {
                    eprintln!("issued {}/{total}", i + 1);
                }
            }
            println!("{total} codes written to {}", out.display());
            Ok(())
        }
        CodesAction::Verify {
            url_or_token,
            keys,
            at,
        } => verify(&url_or_token, &keys, at.as_deref()),
    }
}

fn load_published(path: &Path) -> anyhow::Result<Keyring> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read keys file {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("keys file {} is not JSON", path.display()))?;
    let list = value.get("keys").cloned().unwrap_or(value);
    let infos: Vec<KeyInfo> = serde_json::from_value(list).with_context(|| {
        format!("keys file {}: expected {{\"keys\": [...]}} as served at /api/v1/keys", path.display())
    })?;
    Keyring::from_published(infos)
}

fn verify(text: &str, keys_file: &Path, at: Option<&str>) -> anyhow::Result<()> {
    let keyring = load_published(keys_file)?;
    let at = match at {
        Some(raw) => parse_date(raw, "--at")?,
        None => clock::today(),
    };
    let day = clock::to_day(at).context("date outside the code calendar")?;
    let verdict = yisaozhi_codes::verify(text.trim(), |kid| keyring.public(kid), day);
    let describe = |c: &yisaozhi_codes::Claims| {
        format!(
            "merchant {}, serial {}, key {}, issued {}, expires {}, printed grade {}",
            c.merchant, c.serial, c.kid, c.issued, c.expires, c.grade
        )
    };
    match verdict {
        yisaozhi_codes::Verdict::Valid(c) => {
            println!("valid: signature holds; {}", describe(&c));
            Ok(())
        }
        yisaozhi_codes::Verdict::Expired(c) => {
            println!("expired: signature holds but the code expired; {}", describe(&c));
            bail!("code expired on {}", c.expires)
        }
        yisaozhi_codes::Verdict::Forged { claims, why } => {
            println!("forged: {why}; the code claims {}", describe(&claims));
            bail!("signature does not hold: {why}")
        }
        yisaozhi_codes::Verdict::Malformed(why) => {
            println!("malformed: {why}");
            bail!("not a yisaozhi code: {why}")
        }
    }
}

async fn tokens_cmd(action: TokensAction) -> anyhow::Result<()> {
    match action {
        TokensAction::Add {
            common,
            name,
            scope,
        } => {
            let settings = common.settings()?;
            let scope = crate::auth::Scope::parse(&scope).map_err(anyhow::Error::msg)?;
            let (plain, stored) =
                crate::auth::new_token(&name, &scope, clock::now()).map_err(anyhow::Error::msg)?;
            let store = settings.store.open().await?;
            store.put_token(stored).await?;
            println!("{plain}");
            eprintln!("token for `{name}` (scope {}): shown once, stored only as a hash", scope.as_string());
            Ok(())
        }
    }
}
