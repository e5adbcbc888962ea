//! The arguments of every subcommand (clap), and the parsing they share.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Shard;
use crate::settings::{Overrides, Settings};

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
    /// Write the open data files (merchants, sampling results, index).
    Export(ExportArgs),
    /// The roster of inspectors and grid assistants.
    Inspectors {
        #[command(subcommand)]
        action: InspectorsAction,
    },
    /// The grid: which assistant looks after which merchant.
    Grid {
        #[command(subcommand)]
        action: GridAction,
    },
    /// Draw a random inspection plan (双随机) and publish it.
    Plan(PlanArgs),
    /// Merchants: a shop's access to its own page.
    Merchants {
        #[command(subcommand)]
        action: MerchantsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MerchantsAction {
    /// Print a new one-time activation code for the shop's letter (valid 30
    /// days; replaces an unused one; only its hash is stored).
    Access {
        #[command(flatten)]
        common: CommonArgs,
        /// The merchant's id.
        id: String,
        /// Revoke the shop's access instead (its sessions and tokens end).
        #[arg(long)]
        revoke: bool,
    },
}

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
    pub(super) fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(Overrides {
            config: self.config.clone(),
            store: self.store.clone(),
            key_dir: self.key_dir.clone(),
            ..Overrides::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Directory to write merchants.jsonl.gz, merchants.csv, sampling.csv
    /// and index.json into (created if missing; older files replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Show overrides as of this date (YYYY-MM-DD) [default: today in Asia/Shanghai].
    #[arg(long)]
    pub as_of: Option<String>,
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
        crate::model::DomainError::Shard(_, why) => why.to_owned(),
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
    pub(super) fn extension(self) -> &'static str {
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

#[derive(Debug, Subcommand)]
pub enum InspectorsAction {
    /// Import inspectors and assistants (JSONL, or CSV if the name ends in
    /// .csv): {"id", "name", "unit", "region", "role", "active"?}.
    Import {
        #[command(flatten)]
        common: CommonArgs,
        file: PathBuf,
    },
    /// List the roster: role, id, unit, region, active.
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum GridAction {
    /// Give every merchant an assistant whose region covers it, keeping
    /// the previous assignment where the rules allow.
    Assign {
        #[command(flatten)]
        common: CommonArgs,
        /// Most merchants per assistant (1..=1000).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
        per_assistant: u32,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The plan's name (1-64 letters, digits, `.`, `_`, `-`); published at /plans/NAME.
    #[arg(long)]
    pub name: String,
    /// The published seed (text): the same seed, roster and store state draw the same plan.
    #[arg(long)]
    pub seed: String,
    /// How many merchants to draw (1..=5000).
    #[arg(long)]
    pub size: u32,
    /// Draw only merchants this region code covers (511500 covers 5115xx).
    #[arg(long)]
    pub region: Option<String>,
    /// Weight of each live grade (0-1000, up to 3 decimals).
    #[arg(long, default_value = "red=4,yellow=2,green=1")]
    pub weights: String,
    /// Inspectors per team (1..=10).
    #[arg(long, default_value_t = 2)]
    pub inspectors_per_check: u32,
    /// Grades and the failed-sampling window as of this date [default: today].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Also write the draw's input (docs/PLAN.md §1) to this file, for an
    /// independent re-draw.
    #[arg(long)]
    pub inputs_out: Option<PathBuf>,
}

pub(super) fn parse_date(raw: &str, what: &str) -> anyhow::Result<jiff::civil::Date> {
    raw.parse()
        .with_context(|| format!("{what} `{raw}`: expected YYYY-MM-DD"))
}
