//! The state both halves share: the seeded generator (`Rng`), the
//! precomputed dates and merchant traits (`Ctx`), and the writers' helpers.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use jiff::ToSpan;

use super::options::GenOptions;

// --- randomness -----------------------------------------------------------

/// SplitMix64: tiny, fast, good enough for synthetic data, and stable
/// across platforms and versions (unlike a library's default generator).
#[derive(Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64, stream: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.0 ^= r.next().wrapping_add(n.wrapping_mul(0xE703_7ED1_A0B4_28DB));
        r.next();
        r
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    pub(super) fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    pub(super) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, drawn with those weights.
    pub(super) fn weighted(&mut self, weights: &[u32]) -> usize {
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
pub(super) enum Risk {
    Clean,
    Risky,
    Bad,
}

/// Shared, precomputed state.
pub(super) struct Ctx {
    pub(super) merchants: u64,
    pub(super) width: usize,
    pub(super) seed: u64,
    pub(super) days: u32,
    /// `dates[i]` is `as_of - DATE_BACK + i` as `YYYY-MM-DD`.
    pub(super) dates: Vec<[u8; 10]>,
    pub(super) first_record: u64,
    pub(super) touch: Option<u64>,
}

/// Dates table reach: up to this many days before `as_of` and after it.
const DATE_BACK: i64 = 4000;
const DATE_AHEAD: i64 = 1200;

impl Ctx {
    pub(super) fn new(opts: &GenOptions) -> anyhow::Result<Ctx> {
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
    pub(super) fn date(&self, offset: i64) -> &str {
        let i = (DATE_BACK + offset).clamp(0, DATE_BACK + DATE_AHEAD - 1) as usize;
        // The table holds ASCII dates only.
        std::str::from_utf8(&self.dates[i]).unwrap_or("2000-01-01")
    }

    pub(super) fn merchant_id(&self, n: u64, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "M{:0w$}", n + 1, w = self.width);
    }

    pub(super) fn risk(&self, n: u64) -> Risk {
        let x = Rng::new(self.seed, 2, n).below(1000);
        if x < 40 {
            Risk::Bad
        } else if x < 160 {
            Risk::Risky
        } else {
            Risk::Clean
        }
    }

    pub(super) fn is_vendor(&self, n: u64) -> bool {
        Rng::new(self.seed, 3, n).below(100) < 10
    }
}

/// Writes a JSON string. Generated text never holds quotes, backslashes or
/// control characters, so it needs no escaping.
pub(super) fn json_str(b: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20));
    b.push(b'"');
    b.extend_from_slice(s.as_bytes());
    b.push(b'"');
}

/// Writes one CSV row; generated text never holds commas, quotes or line
/// breaks, so no field needs quoting.
pub(super) fn csv_row(b: &mut Vec<u8>, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        debug_assert!(!f.bytes().any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r')));
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(f.as_bytes());
    }
    b.push(b'\n');
}

pub(super) fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}
