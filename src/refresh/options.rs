//! What a refresh is asked to do, and how it is asked to stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use jiff::civil::Date;

use crate::model::Shard;

/// What to import and how to regrade.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub merchants: Option<PathBuf>,
    pub records: Vec<PathBuf>,
    pub as_of: Date,
    /// Regrade every merchant, not only those that are due.
    pub full: bool,
    pub rejects: PathBuf,
    /// Only the merchants of this shard: lines of other shards' merchants
    /// are skipped (neither imported nor rejected), and only this shard's
    /// merchants are regraded.
    pub shard: Option<Shard>,
    /// Checked at every safe point; see [`StopFlag`].
    pub stop: Option<StopFlag>,
}

/// Asks a running refresh to stop at its next safe point: after the store
/// write of the current chunk of an import, or after the current write of
/// projections. Every write is atomic with its regrade marks, so the same
/// command run again does what is left. The command line sets it on
/// SIGTERM or SIGINT.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicI32>);

impl StopFlag {
    /// Requests a stop on behalf of `signal` (its number); the first request wins.
    pub fn stop(&self, signal: i32) {
        let _ = self
            .0
            .compare_exchange(0, signal.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal that requested a stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

/// Where a refresh stopped when asked to (see [`StopFlag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The signal number (15 for SIGTERM, 2 for SIGINT).
    pub signal: i32,
    /// What was done, e.g. "at line 32768 of records.jsonl".
    pub at: String,
}

impl Stopped {
    pub fn signal_name(&self) -> String {
        match self.signal {
            2 => "SIGINT".into(),
            15 => "SIGTERM".into(),
            n => format!("signal {n}"),
        }
    }

    /// The exit status of a process stopped by this signal: 128 + its number.
    pub fn exit_status(&self) -> i32 {
        128 + self.signal
    }

    pub(super) fn check(stop: Option<&StopFlag>, at: impl FnOnce() -> String) -> Option<Stopped> {
        let signal = stop?.requested()?;
        Some(Stopped { signal, at: at() })
    }
}
