//! What `gen` is asked to write, and what it wrote.

use std::path::PathBuf;

use jiff::civil::Date;

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
