//! The command line: one binary, one subcommand per job (CONTRACT §1).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures_util::StreamExt as _;

use crate::clock;
use crate::domain::{MerchantId, Shard};
use crate::keys::{self, KeyInfo, Keyring};
use crate::progress::{Progress, Unit};
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
        /// Print the effective settings (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Import merchants and records, grade, and write projections (the batch job).
    Refresh(RefreshArgs),
    /// Write synthetic merchants and records (for benchmarks and tests).
    Gen(GenArgs),
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

/// Codes issued or looked up at once by `codes issue` and `codes list`.
const CODES_IN_FLIGHT: usize = 32;

/// Settings shared by the commands that touch the store or keys.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// Settings file (TOML); flags and YSZ_* variables take precedence.
    #[arg(long, env = "YSZ_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// embedded:DIR, redis://HOST:PORT or redis+cluster://HOST:PORT,... [default: embedded:./data].
    #[arg(long, env = "YSZ_STORE", global = true)]
    pub store: Option<String>,
    /// Directory of signing keys [default: DIR/keys for embedded:DIR].
    #[arg(long, env = "YSZ_KEY_DIR", global = true)]
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
    /// Merchants file (JSONL, or CSV if it ends in .csv).
    #[arg(long)]
    pub merchants: Option<PathBuf>,
    /// Record files (JSONL; or CSV, one per record kind, if they end in
    /// .csv), or directories of them.
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
    /// Only shard I of N (0 ≤ I < N): the merchants whose id hashes to I
    /// (FNV-1a 64 of the id, modulo N). Lines of other shards are skipped.
    /// The N shards, run one after another or at once, do one full run.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// `--shard` for clap: the reason alone, as clap names the flag and value.
fn parse_shard(raw: &str) -> Result<Shard, String> {
    Shard::parse(raw).map_err(|e| match e {
        crate::domain::DomainError::Shard(_, why) => why.to_owned(),
        other => other.to_string(),
    })
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of merchants (about 10 % itinerant vendors).
    #[arg(long)]
    pub merchants: u64,
    /// Number of records, spread over all seven kinds.
    #[arg(long)]
    pub records: u64,
    /// Seed: the same seed and options give the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Records are dated in the `--days` days up to this date (YYYY-MM-DD).
    #[arg(long, default_value = "2026-06-01")]
    pub as_of: String,
    /// How many days back records go.
    #[arg(long, default_value_t = 730)]
    pub days: u32,
    /// jsonl: merchants.jsonl and records.jsonl; csv: merchants.csv and one
    /// <kind>.csv per record kind.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: GenFormatArg,
    /// Number records from here on (a second batch that must not reuse the
    /// first batch's record ids starts after it).
    #[arg(long, default_value_t = 0)]
    pub first_record: u64,
    /// Give records only to this many merchants, spread evenly (e.g. 1 % of
    /// them, for an incremental refresh).
    #[arg(long)]
    pub touch: Option<u64>,
    /// Write only the records, not the merchants file.
    #[arg(long)]
    pub records_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenFormatArg {
    Jsonl,
    Csv,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// SVG with the merchant id as caption (scales to any print size).
    Svg,
    /// RGB PNG, `--module-px` pixels per module.
    Png,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CodesAction {
    /// Revoke a code by serial: scans then report it as revoked.
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        serial: u32,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print `merchant-id URL` of every active code (for print shops, load tests).
    List {
        #[command(flatten)]
        common: CommonArgs,
        /// Scheme and host printed in codes [default: http://127.0.0.1:8080].
        #[arg(long, env = "YSZ_PUBLIC_BASE_URL")]
        public_base_url: Option<String>,
    },
    /// Issue new codes (superseding earlier ones) and write them as images.
    Issue {
        #[command(flatten)]
        common: CommonArgs,
        /// Every merchant.
        #[arg(
            long,
            conflicts_with = "merchant",
            required_unless_present = "merchant"
        )]
        all: bool,
        /// One merchant.
        #[arg(long)]
        merchant: Option<String>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Image format; files are named `<merchant id>.svg` or `.png`.
        #[arg(long, value_enum, default_value = "svg")]
        format: Format,
        /// Pixels per QR module for PNG output (1..=64); 12 is 1 mm at 300 dpi.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=64))]
        module_px: u32,
        /// Scheme and host printed in codes [default: http://127.0.0.1:8080].
        #[arg(long, env = "YSZ_PUBLIC_BASE_URL")]
        public_base_url: Option<String>,
    },
    /// Check a code offline: what it says and whether its signature holds.
    Verify {
        /// The scanned URL or the bare token.
        url_or_token: String,
        /// Published keys: a saved /api/v1/keys answer or a key directory's
        /// keys.json, or an http:// URL serving one (for https://, download
        /// the file first) [default: the configured key directory].
        #[arg(long, value_name = "FILE_OR_URL")]
        keys: Option<String>,
        /// A saved /api/v1/status-list answer: with it, a revoked or
        /// superseded code is told apart from a valid one offline. The list
        /// must verify under the same published keys.
        #[arg(long, value_name = "FILE")]
        status_list: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
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
    /// List tokens: id, name, scope, created, revoked (never the secret).
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke a token by its id (the 8 hex digits after `ysz_`).
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        id: String,
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
            print_config,
        } => {
            let settings = Settings::load(Overrides {
                config: common.config,
                store: common.store,
                listen,
                public_base_url,
                key_dir: common.key_dir,
            })?;
            if print_config {
                print!("{}", settings.describe());
                return Ok(());
            }
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), base_url = app.base_url(), "serving");
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Refresh(args) => refresh(args).await,
        Command::Gen(args) => gen(args),
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
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl" || x == "csv"))
                // A data directory often holds the merchants file too.
                .filter(|f| f.file_stem().is_none_or(|s| s != "merchants"))
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
    let store = settings.open_store().await?;
    let rules = settings.load_rules()?;
    let stop = crate::refresh::StopFlag::default();
    stop_on_signals(&stop)?;
    let opts = crate::refresh::RefreshOptions {
        merchants: args.merchants,
        records: expand_paths(&args.records)?,
        as_of,
        full: args.full,
        rejects: args.rejects.clone(),
        shard: args.shard,
        stop: Some(stop),
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
    if let Some(stopped) = &summary.stopped {
        // Close the store as at the end of a run, then exit as a process
        // ended by that signal would (143 for SIGTERM, 130 for SIGINT).
        drop(store);
        std::process::exit(stopped.exit_status());
    }
    Ok(())
}

/// SIGTERM and SIGINT ask the refresh to stop at its next safe point; a
/// second signal ends the process at once (a refresh is safe to kill).
fn stop_on_signals(stop: &crate::refresh::StopFlag) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let (number, name) = tokio::select! {
                    _ = term.recv() => (15, "SIGTERM"),
                    _ = int.recv() => (2, "SIGINT"),
                };
                if stop.requested().is_some() {
                    eprintln!("yisaozhi: {name} again: stopping now; run the same command again to finish");
                    std::process::exit(128 + number);
                }
                tracing::warn!(
                    "{name}: stopping at the next safe point (a second signal stops at once)"
                );
                stop.stop(number);
            }
        });
    }
    #[cfg(not(unix))]
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if stop.requested().is_some() {
                    std::process::exit(130);
                }
                stop.stop(2);
            }
        });
    }
    Ok(())
}

fn gen(args: GenArgs) -> anyhow::Result<()> {
    let opts = crate::gen::GenOptions {
        merchants: args.merchants,
        records: args.records,
        seed: args.seed,
        out: args.out,
        as_of: parse_date(&args.as_of, "--as-of")?,
        days: args.days,
        format: match args.format {
            GenFormatArg::Jsonl => crate::gen::GenFormat::Jsonl,
            GenFormatArg::Csv => crate::gen::GenFormat::Csv,
        },
        first_record: args.first_record,
        touch: args.touch,
        write_merchants: !args.records_only,
        progress: true,
    };
    let started = std::time::Instant::now();
    let summary = crate::gen::generate(&opts)?;
    println!("{summary}");
    println!("in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

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
            format,
            module_px,
            public_base_url,
        } => {
            let settings = common.settings()?;
            let base = crate::settings::parse_base_url(
                public_base_url
                    .as_deref()
                    .or(settings.public_base_url.as_deref())
                    .unwrap_or("http://127.0.0.1:8080"),
            )?;
            let store = settings.open_store().await?;
            let keyring = Keyring::load(&settings.key_dir)?;
            let ids = match (all, merchant) {
                (true, _) => store.all_merchant_ids().await?,
                (false, Some(raw)) => vec![MerchantId::parse(&raw)?],
                (false, None) => bail!("give --all or --merchant ID"),
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let total = ids.len();
            let started = std::time::Instant::now();
            let progress = Progress::new("issuing codes", total as u64, Unit::Items, true);
            // Several codes in flight: while one waits on the store, others
            // are signed and rendered on the blocking pool.
            let keyring = &keyring;
            let (store, settings, base, out) = (&store, &settings, &base, &out);
            let issued = futures_util::stream::iter(ids)
                .map(|id| async move {
                    let code = crate::issuing::issue(
                        store.as_ref(),
                        keyring,
                        &id,
                        settings.code_validity_days,
                        Some("cli"),
                    )
                    .await?;
                    let base = base.clone();
                    let path = out.join(format!("{id}.{}", format.extension()));
                    tokio::task::spawn_blocking(move || {
                        let token = yisaozhi_codes::Token::parse(&code.token)?;
                        let url = yisaozhi_codes::url(&base, &token);
                        let qr = yisaozhi_codes::Qr::encode(&url)?;
                        let bytes = match format {
                            Format::Svg => {
                                yisaozhi_codes::svg(&qr, code.printed_grade, Some(id.as_str()))
                                    .into_bytes()
                            }
                            Format::Png => crate::render::png(&qr, code.printed_grade, module_px),
                        };
                        std::fs::write(&path, bytes)
                            .with_context(|| format!("cannot write {}", path.display()))
                    })
                    .await
                    .context("rendering a code failed")?
                })
                .buffer_unordered(CODES_IN_FLIGHT);
            futures_util::pin_mut!(issued);
            while let Some(done) = issued.next().await {
                done?;
                progress.inc(1);
            }
            progress.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
            eprintln!("issued {total}/{total} codes ({rate:.0}/s, {secs:.1} s elapsed)");
            println!("{total} codes written to {}", out.display());
            Ok(())
        }
        CodesAction::Verify {
            url_or_token,
            keys,
            status_list,
            common,
            at,
        } => verify(
            &url_or_token,
            keys.as_deref(),
            status_list.as_deref(),
            &common,
            at.as_deref(),
        ),
        CodesAction::Revoke {
            common,
            serial,
            reason,
        } => {
            let store = common.settings()?.open_store().await?;
            let code = store
                .code(serial)
                .await?
                .with_context(|| format!("no code with serial {serial}"))?;
            let audit = crate::store::AuditEntry {
                at: clock::now(),
                actor: "cli".into(),
                action: "code.revoke".into(),
                target: code.merchant.to_string(),
                before: serde_json::json!({"serial": serial, "status": code.status}),
                after: serde_json::json!({"serial": serial, "status": "revoked"}),
                reason,
            };
            match store.revoke_code(serial, audit).await? {
                Some(before) if before.status == crate::store::CodeStatus::Revoked => {
                    println!(
                        "code {serial} of merchant {} was already revoked; nothing changed",
                        code.merchant
                    )
                }
                _ => println!("code {serial} of merchant {} revoked", code.merchant),
            }
            Ok(())
        }
        CodesAction::List {
            common,
            public_base_url,
        } => {
            let settings = common.settings()?;
            let base = crate::settings::parse_base_url(
                public_base_url
                    .as_deref()
                    .or(settings.public_base_url.as_deref())
                    .unwrap_or("http://127.0.0.1:8080"),
            )?;
            let store = settings.open_store().await?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let store = &store;
            // In merchant-id order, several reads in flight.
            let codes = futures_util::stream::iter(store.all_merchant_ids().await?)
                .map(|id| async move {
                    let code = crate::issuing::active_code(store.as_ref(), &id).await?;
                    anyhow::Ok((id, code))
                })
                .buffered(CODES_IN_FLIGHT);
            futures_util::pin_mut!(codes);
            while let Some(next) = codes.next().await {
                if let (id, Some(code)) = next? {
                    let token = yisaozhi_codes::Token::parse(&code.token)?;
                    writeln!(out, "{id} {}", yisaozhi_codes::url(&base, &token))?;
                }
            }
            out.flush()?;
            Ok(())
        }
    }
}

/// Largest keys document `--keys http://...` reads.
const KEYS_MAX_BYTES: usize = 1024 * 1024;
/// Deadline for fetching `--keys http://...`: connect, send and read.
const KEYS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the published keys from a file or an `http://` URL.
fn load_published(source: &str) -> anyhow::Result<Keyring> {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    let (text, what) = if lower.starts_with("https://") {
        bail!(
            "--keys {source}: https is not supported by the built-in fetcher; download the file first \
             (e.g. `curl -fsS -o keys.json {source}`) and pass its path"
        );
    } else if lower.starts_with("http://") {
        (
            http_get(source, KEYS_TIMEOUT, KEYS_MAX_BYTES)
                .with_context(|| format!("cannot fetch keys from {source}"))?,
            format!("keys at {source}"),
        )
    } else {
        let path = Path::new(source);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keys file {}", path.display()))?;
        (text, format!("keys file {}", path.display()))
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what} is not JSON"))?;
    let list = value.get("keys").cloned().unwrap_or(value);
    let infos: Vec<KeyInfo> = serde_json::from_value(list).with_context(|| {
        format!("{what}: expected {{\"keys\": [...]}} as served at /api/v1/keys")
    })?;
    Keyring::from_published(infos)
}

/// Fetches a small document over plain HTTP, for `--keys http://...`: no
/// TLS (`https://` is refused before), no proxy, no redirect followed (a
/// 3xx names where to go instead), the whole exchange within `timeout`, at
/// most `max` bytes of body. Answers the body of a 200 response as text.
fn http_get(url: &str, timeout: std::time::Duration, max: usize) -> anyhow::Result<String> {
    let timed_out = || anyhow::anyhow!("timed out after {} s", timeout.as_secs());
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .build();
    let url = url.split('#').next().unwrap_or_default();
    let request = ureq::Agent::new_with_config(config)
        .get(url)
        .header(
            "User-Agent",
            concat!("yisaozhi/", env!("CARGO_PKG_VERSION")),
        )
        .header("Accept", "application/json");
    let mut response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Timeout(_)) => return Err(timed_out()),
        Err(e) => return Err(e.into()),
    };
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        let location = response.headers().get("location");
        match location.and_then(|to| to.to_str().ok()) {
            Some(to) => bail!(
                "server answered {} (redirect to {to}); pass that URL instead",
                status.as_str()
            ),
            None => bail!(
                "server answered `{}`",
                crate::domain::truncate(&format!("{:?} {status}", response.version()))
            ),
        }
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(max as u64)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => {
                anyhow::anyhow!("response larger than {} KiB", max / 1024)
            }
            ureq::Error::Timeout(_) => timed_out(),
            e => anyhow::Error::new(e).context("reading the response"),
        })?;
    String::from_utf8(body).context("the response body is not UTF-8")
}

/// Reads and verifies a saved status list document.
fn load_status_list(
    path: &std::path::Path,
    keyring: &Keyring,
) -> anyhow::Result<yisaozhi_codes::StatusList> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read status list {}", path.display()))?;
    let mut text = String::new();
    file.take(crate::status_list::MAX_DOCUMENT_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read status list {}", path.display()))?;
    if text.len() as u64 > crate::status_list::MAX_DOCUMENT_BYTES {
        bail!(
            "status list {}: larger than {} MiB",
            path.display(),
            crate::status_list::MAX_DOCUMENT_BYTES >> 20
        );
    }
    crate::status_list::verify(&text, |kid| keyring.public(kid))
        .with_context(|| format!("status list {} refused", path.display()))
}

fn verify(
    text: &str,
    keys_source: Option<&str>,
    status_list: Option<&std::path::Path>,
    common: &CommonArgs,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let keyring = match keys_source {
        Some(source) => load_published(source)?,
        None => {
            let dir = common.settings()?.key_dir;
            let ring = Keyring::load(&dir)?;
            if ring.infos.is_empty() {
                bail!(
                    "no keys in {}: pass --keys FILE_OR_URL (e.g. a saved /api/v1/keys)",
                    dir.display()
                );
            }
            ring
        }
    };
    let at = match at {
        Some(raw) => parse_date(raw, "--at")?,
        None => clock::today(),
    };
    let day = clock::to_day(at).context("date outside the code calendar")?;
    let listed = match status_list {
        Some(path) => Some(load_status_list(path, &keyring)?),
        None => None,
    };
    let verdict = yisaozhi_codes::verify(text.trim(), |kid| keyring.public(kid), day);
    if let (Some(list), Some(claims)) = (&listed, verdict.trusted_claims()) {
        if let Some(status) = list.status(claims.serial) {
            let synced = jiff::Timestamp::from_second(list.issued_at as i64)
                .map_or_else(|_| list.issued_at.to_string(), |t| t.to_string());
            println!(
                "{}: signature holds but the status list of {synced} lists serial {} as {}; merchant {}, printed grade {}",
                status.name(),
                claims.serial,
                status.name(),
                claims.merchant,
                claims.grade
            );
            bail!("code {} (serial {})", status.name(), claims.serial);
        }
    }
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
            println!(
                "expired: signature holds but the code expired; {}",
                describe(&c)
            );
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
            let store = settings.open_store().await?;
            store.put_token(stored).await?;
            println!("{plain}");
            eprintln!(
                "token for `{name}` (scope {}): shown once, stored only as a hash",
                scope.as_string()
            );
            Ok(())
        }
        TokensAction::List { common } => {
            let store = common.settings()?.open_store().await?;
            println!(
                "{:<10} {:<20} {:<14} {:<22} revoked",
                "id", "name", "scope", "created"
            );
            for t in store.tokens().await? {
                println!(
                    "{:<10} {:<20} {:<14} {:<22} {}",
                    t.id,
                    t.name,
                    t.scope,
                    t.created_at.to_string(),
                    if t.revoked { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        TokensAction::Revoke { common, id } => {
            let store = common.settings()?.open_store().await?;
            let mut token = store.token(&id).await?.with_context(|| {
                format!(
                    "no token with id `{}`: see `yisaozhi tokens list`",
                    crate::domain::truncate(&id)
                )
            })?;
            token.revoked = true;
            store.put_token(token.clone()).await?;
            store
                .append_audit(crate::store::AuditEntry {
                    at: clock::now(),
                    actor: "cli".into(),
                    action: "token.revoke".into(),
                    target: format!("token:{}", token.id),
                    before: serde_json::json!({"name": token.name, "revoked": false}),
                    after: serde_json::json!({"name": token.name, "revoked": true}),
                    reason: None,
                })
                .await?;
            println!("token {} ({}) revoked", token.id, token.name);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use super::*;

    /// Serves one connection with `response` (after reading the request
    /// head), optionally keeping it open afterwards; answers the base URL.
    fn serve_once(response: Vec<u8>, hold_open: Duration) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("GET /api/v1/keys HTTP/1.1"));
            // Host first; header names are case-insensitive (RFC 9110 §5.1).
            let host = lines.next().unwrap_or_default().to_ascii_lowercase();
            assert!(host.starts_with("host: 127.0.0.1:"), "{head}");
            let _ = s.write_all(&response);
            std::thread::sleep(hold_open);
        });
        format!("http://{addr}")
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn http_get_reads_content_length_body_without_waiting_for_close() {
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: keep-alive\r\n\r\n{\"keys\":[]}"
                .to_vec(),
            Duration::from_secs(10),
        );
        let started = std::time::Instant::now();
        let body = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap();
        assert_eq!(body, r#"{"keys":[]}"#);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn http_get_dechunks() {
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ke\r\n7;x=y\r\nys\":[]}\r\n0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        assert_eq!(
            http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap(),
            r#"{"keys":[]}"#
        );
    }

    #[test]
    fn http_get_errors_are_clear() {
        let base = serve_once(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap_err();
        assert!(format!("{e:#}").contains("404"), "{e:#}");

        let base = serve_once(
            b"HTTP/1.1 301 Moved\r\nLocation: https://x/api/v1/keys\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap_err();
        assert!(
            format!("{e:#}").contains("redirect to https://x/api/v1/keys"),
            "{e:#}"
        );

        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(3000, b'x');
        let base = serve_once(big, Duration::ZERO);
        let e = http_get(&format!("{base}/api/v1/keys"), T, 2048).unwrap_err();
        assert!(format!("{e:#}").contains("larger than 2 KiB"), "{e:#}");

        // Headers sent, body never completes: the deadline holds.
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{".to_vec(),
            Duration::from_secs(10),
        );
        let started = std::time::Instant::now();
        let e = http_get(
            &format!("{base}/api/v1/keys"),
            Duration::from_millis(300),
            1 << 20,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("timed out"), "{e:#}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn keys_source_kinds() {
        let e = load_published("https://ysz.example.gov.cn/api/v1/keys").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("https is not supported") && msg.contains("download the file first"),
            "{msg}"
        );
        let e = load_published("/nonexistent/keys.json").unwrap_err();
        assert!(format!("{e:#}").contains("cannot read keys file"), "{e:#}");
        let e = load_published("http://127.0.0.1:1/api/v1/keys").unwrap_err();
        assert!(format!("{e:#}").contains("cannot fetch keys from"), "{e:#}");
    }

    #[test]
    fn http_get_refuses_a_broken_chunked_body() {
        for broken in [&b"zz\r\nabc"[..], b"10\r\nabc"] {
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(broken);
            let base = serve_once(response, Duration::ZERO);
            assert!(http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).is_err());
        }
        let base = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        assert_eq!(
            http_get(&format!("{base}/api/v1/keys"), T, 1 << 20).unwrap(),
            "abc"
        );
    }
}
