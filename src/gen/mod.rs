//! `yisaozhi gen`: synthetic merchants and records for benchmarks and tests,
//! in the input formats of CONTRACT §3.
//!
//! Realistic on purpose: about 10 % of merchants are itinerant vendors (most
//! without a credit code); every shop has a valid GB 32100-2015 credit code;
//! all seven record kinds appear; dates fall in the `days` before `as_of`.
//! Each merchant has a hidden risk profile (clean, risky, bad) that shapes
//! its records, so most merchants grade green with a tail of yellow and red
//! (with the default rules and 10 records per merchant: roughly 85 / 11 / 4 %).
//!
//! Deterministic: the same options give byte-identical files. Merchants are
//! drawn from a generator seeded by (seed, merchant number) and records from
//! one seeded by (seed, chunk number) with a fixed chunk size, so the output
//! does not depend on the number of threads. Chunks are generated in parallel
//! (rayon) and written in order through a `BufWriter`; memory stays bounded
//! by a few chunks whatever the sizes.
//!
//! Here: the options, the summary and the state both halves share (`Ctx`,
//! `Rng`); the halves in `merchants` and `records`, their words in
//! `vocabulary`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::civil::Date;
use jiff::ToSpan;

mod merchants;
mod records;
mod vocabulary;

use merchants::write_merchants;
use records::write_records;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// `merchants.jsonl` and `records.jsonl`.
    Jsonl,
    /// `merchants.csv` and one `<kind>.csv` per record kind.
    Csv,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub merchants: u64,
    pub records: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// Records are dated in the `days` days up to and including `as_of`.
    pub as_of: Date,
    pub days: u32,
    pub format: GenFormat,
    /// Number of the first record (record ids are `<kind prefix><number>`);
    /// a later batch starts after the earlier one so its ids are new.
    pub first_record: u64,
    /// Give records only to this many merchants (spread evenly over all of
    /// them), e.g. 1 % of merchants for an incremental refresh.
    pub touch: Option<u64>,
    /// Write the merchants file.
    pub write_merchants: bool,
    /// Show progress (a bar on a terminal, log lines otherwise).
    pub progress: bool,
}

/// What `generate` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub merchants: u64,
    pub vendors: u64,
    pub records: u64,
    /// Records per kind, in [`crate::model::RECORD_KINDS`] order.
    pub by_kind: [u64; 7],
    pub files: Vec<PathBuf>,
}

impl std::fmt::Display for GenSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "generated {} merchants ({} vendors) and {} records (",
            self.merchants, self.vendors, self.records
        )?;
        for (i, (kind, n)) in crate::model::RECORD_KINDS
            .iter()
            .zip(self.by_kind)
            .enumerate()
        {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{kind} {n}")?;
        }
        write!(f, ")")?;
        for file in &self.files {
            write!(f, "\n  {}", file.display())?;
        }
        Ok(())
    }
}

/// Writes the data set into `opts.out`.
pub fn generate(opts: &GenOptions) -> anyhow::Result<GenSummary> {
    anyhow::ensure!(opts.merchants > 0, "--merchants must be at least 1");
    anyhow::ensure!(opts.days > 0, "--days must be at least 1");
    if let Some(t) = opts.touch {
        anyhow::ensure!(
            (1..=opts.merchants).contains(&t),
            "--touch must be between 1 and --merchants"
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    crate::refresh::name_rayon_threads();
    let ctx = Ctx::new(opts)?;
    let mut summary = GenSummary::default();
    if opts.write_merchants {
        write_merchants(&ctx, opts, &mut summary)?;
    }
    write_records(&ctx, opts, &mut summary)?;
    Ok(summary)
}

// --- randomness -----------------------------------------------------------

/// SplitMix64: tiny, fast, good enough for synthetic data, and stable
/// across platforms and versions (unlike a library's default generator).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.0 ^= r.next().wrapping_add(n.wrapping_mul(0xE703_7ED1_A0B4_28DB));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, drawn with those weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// Merchant risk profiles: how likely adverse findings are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Risk {
    Clean,
    Risky,
    Bad,
}

/// Shared, precomputed state.
struct Ctx {
    merchants: u64,
    width: usize,
    seed: u64,
    days: u32,
    /// `dates[i]` is `as_of - DATE_BACK + i` as `YYYY-MM-DD`.
    dates: Vec<[u8; 10]>,
    first_record: u64,
    touch: Option<u64>,
}

/// Dates table reach: up to this many days before `as_of` and after it.
const DATE_BACK: i64 = 4000;
const DATE_AHEAD: i64 = 1200;

impl Ctx {
    fn new(opts: &GenOptions) -> anyhow::Result<Ctx> {
        anyhow::ensure!(
            i64::from(opts.days) <= DATE_BACK - 100,
            "--days must be at most {}",
            DATE_BACK - 100
        );
        let start = opts
            .as_of
            .checked_sub(DATE_BACK.days())
            .context("--as-of is too early")?;
        let mut dates = Vec::with_capacity((DATE_BACK + DATE_AHEAD) as usize);
        let mut d = start;
        for _ in 0..DATE_BACK + DATE_AHEAD {
            let s = d.to_string();
            let b: [u8; 10] = s.as_bytes().try_into().context("--as-of out of range")?;
            dates.push(b);
            d = d.tomorrow().context("--as-of is too late")?;
        }
        let width = opts.merchants.to_string().len().max(7);
        anyhow::ensure!(width < 32, "--merchants is too large");
        Ok(Ctx {
            merchants: opts.merchants,
            width,
            seed: opts.seed,
            days: opts.days,
            dates,
            first_record: opts.first_record,
            touch: opts.touch,
        })
    }

    /// The date `offset` days after `as_of` (negative: before).
    fn date(&self, offset: i64) -> &str {
        let i = (DATE_BACK + offset).clamp(0, DATE_BACK + DATE_AHEAD - 1) as usize;
        // The table holds ASCII dates only.
        std::str::from_utf8(&self.dates[i]).unwrap_or("2000-01-01")
    }

    fn merchant_id(&self, n: u64, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "M{:0w$}", n + 1, w = self.width);
    }

    fn risk(&self, n: u64) -> Risk {
        let x = Rng::new(self.seed, 2, n).below(1000);
        if x < 40 {
            Risk::Bad
        } else if x < 160 {
            Risk::Risky
        } else {
            Risk::Clean
        }
    }

    fn is_vendor(&self, n: u64) -> bool {
        Rng::new(self.seed, 3, n).below(100) < 10
    }
}

/// Writes a JSON string. Generated text never holds quotes, backslashes or
/// control characters, so it needs no escaping.
fn json_str(b: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20));
    b.push(b'"');
    b.extend_from_slice(s.as_bytes());
    b.push(b'"');
}

/// Writes one CSV row; generated text never holds commas, quotes or line
/// breaks, so no field needs quoting.
fn csv_row(b: &mut Vec<u8>, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        debug_assert!(!f.bytes().any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r')));
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(f.as_bytes());
    }
    b.push(b'\n');
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

#[cfg(test)]
mod tests {
    use super::merchants::{id_number, merchant};
    use super::*;
    use crate::model::CreditCode;
    use crate::records::{parse_merchant, parse_record};

    fn opts(dir: &Path, format: GenFormat) -> GenOptions {
        GenOptions {
            merchants: 500,
            records: 5000,
            seed: 7,
            out: dir.to_owned(),
            as_of: "2026-06-01".parse().unwrap(),
            days: 730,
            format,
            first_record: 0,
            touch: None,
            write_merchants: true,
            progress: false,
        }
    }

    #[test]
    fn output_is_valid_deterministic_and_covers_every_kind() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let s = generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&opts(b.path(), GenFormat::Jsonl)).unwrap();
        for f in ["merchants.jsonl", "records.jsonl"] {
            let x = std::fs::read(a.path().join(f)).unwrap();
            assert_eq!(x, std::fs::read(b.path().join(f)).unwrap(), "{f} differs");
        }
        let merchants = std::fs::read_to_string(a.path().join("merchants.jsonl")).unwrap();
        let mut vendors = 0;
        for line in merchants.lines() {
            let m = parse_merchant(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            vendors += usize::from(m.kind == crate::model::MerchantKind::Vendor);
            if m.kind == crate::model::MerchantKind::Shop {
                assert!(m.uscc.is_some(), "{line}");
            }
        }
        assert_eq!(merchants.lines().count(), 500);
        assert!((25..=80).contains(&vendors), "{vendors} vendors");
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let as_of: Date = "2026-06-01".parse().unwrap();
        for line in records.lines() {
            let r = parse_record(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(r.date <= as_of && r.date > as_of.checked_sub(730.days()).unwrap());
        }
        assert_eq!(s.records, 5000);
        assert!(s.by_kind.iter().all(|&n| n > 0), "{:?}", s.by_kind);
    }

    #[test]
    fn another_seed_gives_other_data() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&GenOptions {
            seed: 8,
            ..opts(b.path(), GenFormat::Jsonl)
        })
        .unwrap();
        let x = std::fs::read(a.path().join("records.jsonl")).unwrap();
        assert_ne!(x, std::fs::read(b.path().join("records.jsonl")).unwrap());
    }

    #[test]
    fn csv_has_one_file_per_kind_with_the_same_records() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        let s = generate(&opts(b.path(), GenFormat::Csv)).unwrap();
        assert_eq!(s.files.len(), 8);
        let jsonl = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut rows = 0;
        for kind in crate::model::RECORD_KINDS {
            let csv = std::fs::read_to_string(b.path().join(format!("{kind}.csv"))).unwrap();
            rows += csv.lines().count() - 1;
        }
        assert_eq!(rows, jsonl.lines().count());
    }

    #[test]
    fn touch_limits_the_merchants_and_first_record_shifts_ids() {
        let a = tempfile::tempdir().unwrap();
        generate(&GenOptions {
            touch: Some(5),
            first_record: 1_000_000,
            write_merchants: false,
            ..opts(a.path(), GenFormat::Jsonl)
        })
        .unwrap();
        assert!(!a.path().join("merchants.jsonl").exists());
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut merchants = std::collections::BTreeSet::new();
        for line in records.lines() {
            let r = parse_record(line).unwrap();
            assert!(r.id[2..].parse::<u64>().unwrap() > 1_000_000, "{}", r.id);
            merchants.insert(r.merchant);
        }
        assert_eq!(merchants.len(), 5, "{merchants:?}");
    }

    #[test]
    fn generated_id_numbers_and_credit_codes_check() {
        let mut r = Rng::new(1, 1, 1);
        let id = id_number(&mut r, "511504");
        assert_eq!(id.len(), 18);
        for n in 0..200 {
            let ctx = Ctx::new(&opts(Path::new("."), GenFormat::Jsonl)).unwrap();
            if let Some(u) = merchant(&ctx, n).uscc {
                CreditCode::parse(&u).unwrap();
            }
        }
    }
}
