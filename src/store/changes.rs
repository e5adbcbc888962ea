//! The change log every backend keeps: one order of positions per store.
//!
//! Each write that changes what the service shows notes its merchant at the
//! next position (embedded: the `changes` table's `seq`; Redis: the running
//! count `P:{changes}:seq`), in the same transaction or script as the write
//! where the backend makes that atomic. A position carries either a notice
//! only (the projection was rewritten, its grade unchanged: the caches must
//! drop their view, the public has nothing to learn) or a public
//! [`Change`] of one [`ChangeKind`]. The service's cache invalidation reads
//! every position ([`ScanRead::changes_since`](super::roles::ScanRead::changes_since),
//! the recent ones only); the public feed
//! ([`ScanRead::feed`](super::roles::ScanRead::feed)) reads the public
//! changes, kept at least [`FEED_KEPT_DAYS`] days. One counter, one write
//! per change, two readers.

use jiff::Timestamp;
use serde::Serialize;

use crate::model::{Grade, MerchantId};

/// Bench-only: with `YSZ_BENCH_NO_CHANGE_LOG=1` in its environment, a
/// process notes no change at all (no feed entry, no notice for the
/// caches: other replicas' caches go stale). It exists to measure what the
/// change log costs a refresh (`benches/feed_cost.sh`); never set it for a
/// service.
pub fn log_disabled() -> bool {
    static OFF: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        std::env::var("YSZ_BENCH_NO_CHANGE_LOG").is_ok_and(|v| v == "1")
    });
    *OFF
}

/// Public changes are kept at least this many days (the contract asks
/// for 90; two more keep a slow daily reader safe around the edge).
pub const FEED_KEPT_DAYS: i64 = 92;

/// What a public change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The grade the public sees changed (also from none to one).
    Grade,
    /// A regulator set or cleared an override.
    Override,
    /// A code was issued (the merchant's previous one is superseded).
    CodeIssued,
    /// A code was revoked.
    CodeRevoked,
    /// The merchant's stored data is new or changed.
    Merchant,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Grade,
        ChangeKind::Override,
        ChangeKind::CodeIssued,
        ChangeKind::CodeRevoked,
        ChangeKind::Merchant,
    ];

    /// The name in the feed and in the stores.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Grade => "grade",
            ChangeKind::Override => "override",
            ChangeKind::CodeIssued => "code_issued",
            ChangeKind::CodeRevoked => "code_revoked",
            ChangeKind::Merchant => "merchant",
        }
    }

    pub fn from_name(name: &str) -> Option<ChangeKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A change a write notes: its merchant and, unless it is a notice for the
/// caches only, what the public learns of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    pub merchant: &'a str,
    /// `None`: the caches' notice only.
    pub kind: Option<ChangeKind>,
    pub grade: Option<Grade>,
    pub serial: Option<u32>,
}

impl<'a> Note<'a> {
    /// A notice for the caches only.
    pub fn notice(merchant: &'a str) -> Self {
        Note {
            merchant,
            kind: None,
            grade: None,
            serial: None,
        }
    }

    pub fn of(merchant: &'a str, kind: ChangeKind) -> Self {
        Note {
            kind: Some(kind),
            ..Note::notice(merchant)
        }
    }

    pub fn grade(mut self, grade: Grade) -> Self {
        self.grade = Some(grade);
        self
    }

    pub fn serial(mut self, serial: u32) -> Self {
        self.serial = Some(serial);
        self
    }

    /// A projection's write: a `grade` change when its grade differs from
    /// the one stored before (`None`: there was none), else a notice.
    pub fn projection(merchant: &'a str, before: Option<Grade>, after: Grade) -> Self {
        if before == Some(after) {
            Note::notice(merchant)
        } else {
            Note::of(merchant, ChangeKind::Grade).grade(after)
        }
    }
}

/// One public change, at its position in the store's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub position: u64,
    pub at: Timestamp,
    pub merchant: MerchantId,
    pub kind: ChangeKind,
    pub grade: Option<Grade>,
    pub serial: Option<u32>,
}

/// A page of the feed and where the store's log stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedPage {
    /// In position order, all public changes after the position asked for,
    /// up to the limit.
    pub changes: Vec<Change>,
    /// Every public change after this position is still kept (0 until the
    /// first were dropped for their age).
    pub kept_after: u64,
    /// The last position noted so far (public or not).
    pub last: u64,
}

/// Seconds since the epoch before which public changes may be dropped.
pub fn feed_cutoff(now: Timestamp) -> i64 {
    now.as_second() - FEED_KEPT_DAYS * 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ChangeKind::from_name("projection"), None);
    }

    #[test]
    fn a_regrade_that_keeps_the_grade_is_a_notice_only() {
        assert_eq!(
            Note::projection("A", Some(Grade::Green), Grade::Green),
            Note::notice("A")
        );
        assert_eq!(
            Note::projection("A", None, Grade::Green).kind,
            Some(ChangeKind::Grade)
        );
        assert_eq!(
            Note::projection("A", Some(Grade::Red), Grade::Green).grade,
            Some(Grade::Green)
        );
    }
}
