//! What a refresh did, as counts and the grade changes, and its text for
//! the command line.

use std::collections::BTreeMap;

use crate::model::{Grade, MerchantId, Projection, Shard};

use super::options::Stopped;

/// At most this many merchants whose grade changed are listed in a summary.
const MAX_CHANGED_LISTED: usize = 10_000;

/// The counts a refresh reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read (merchants and records), blank lines included.
    pub read: u64,
    /// New or changed merchants, and new records.
    pub imported: u64,
    /// Unchanged merchants, and records whose id was already stored.
    pub duplicate: u64,
    pub rejected: u64,
    pub regraded: u64,
    pub by_grade: BTreeMap<Grade, u64>,
    /// Merchants whose grade changed: (id, before, after); `before` is `None`
    /// for a merchant graded for the first time. At most
    /// `MAX_CHANGED_LISTED` (10,000) are listed; `changed_total` counts them all.
    pub changed: Vec<(MerchantId, Option<Grade>, Grade)>,
    pub changed_total: u64,
    /// Of `changed_total`, merchants graded for the first time.
    pub first_graded: u64,
    /// Merchants graded before whose grade changed, per region.
    pub changed_by_region: BTreeMap<String, u64>,
    /// The shard the run was limited to.
    pub shard: Option<Shard>,
    /// Lines skipped because their merchant belongs to another shard.
    pub skipped_other_shard: u64,
    /// Set if the run stopped early on a signal.
    pub stopped: Option<Stopped>,
}

impl Summary {
    pub(super) fn note_change(&mut self, p: &Projection, before: Option<Grade>) {
        self.changed_total += 1;
        self.first_graded += u64::from(before.is_none());
        if before.is_some() {
            *self
                .changed_by_region
                .entry(p.merchant.region.to_string())
                .or_default() += 1;
        }
        if self.changed.len() < MAX_CHANGED_LISTED {
            self.changed.push((p.merchant.id.clone(), before, p.grade));
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} lines: imported {}, duplicate {}, rejected {}",
            self.read, self.imported, self.duplicate, self.rejected
        )?;
        match self.shard {
            Some(_) => writeln!(f, ", skipped {} of other shards", self.skipped_other_shard)?,
            None => writeln!(f)?,
        }
        let grades: Vec<String> = Grade::ALL
            .iter()
            .map(|g| {
                format!(
                    "{} {}",
                    g.name(),
                    self.by_grade.get(g).copied().unwrap_or(0)
                )
            })
            .collect();
        write!(f, "regraded {} merchants", self.regraded)?;
        if let Some(shard) = self.shard {
            write!(f, " of shard {shard}")?;
        }
        write!(f, ": {}", grades.join(", "))?;
        let total = self.changed_total.max(self.changed.len() as u64);
        if total > 0 {
            write!(f, "\ngrade changed for {total} merchants")?;
            if self.first_graded > 0 {
                write!(f, " ({} graded for the first time)", self.first_graded)?;
            }
            write!(f, ":")?;
            for (id, before, after) in self.changed.iter().take(20) {
                let before = before.map_or("new", |g| g.name());
                write!(f, "\n  {id}: {before} -> {after}")?;
            }
            if total > 20 {
                write!(f, "\n  … and {} more", total - 20)?;
            }
        }
        if let Some(s) = &self.stopped {
            write!(
                f,
                "\nstopped by {} {}; run the same command again to finish",
                s.signal_name(),
                s.at
            )?;
        }
        Ok(())
    }
}
