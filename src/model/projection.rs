//! What the scan page shows of one merchant ([`Projection`]): the grade, a
//! regulator's [`Override`], the [`Reason`]s and a [`RecordSummary`] with no
//! personal data. `crate::grading::project` computes it; the stores keep it;
//! the scan and the pages read it.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::merchant::PublicMerchant;
use super::newtypes::Grade;
use super::record::{ListKind, ReportType, Severity};

/// The rule id of a regulator's override in `reasons`.
pub const OVERRIDE_RULE: &str = "override";

/// One line of "why": a rule that matches, or the override, or `G`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule id (`R2`, `Y4`, ...), `override` or `G`.
    pub rule: String,
    pub text: String,
    /// The first day of the unbroken stretch, ending at `as_of`, on which the
    /// rule has matched, as far as the records show.
    pub since: Option<Date>,
    /// The first day after `as_of` on which, with no new records, the rule
    /// stops matching; `None` if it does not end by itself. (For an override:
    /// its last day, `expires_at`.)
    pub until: Option<Date>,
    /// The id of the main record behind it.
    pub record: Option<String>,
    /// The merchant's accepted reply to this reason (right to reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A merchant's reply to a reason or a record, as accepted by a regulator:
/// shown under what it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    /// The day it was accepted (the `reply` record's date).
    pub at: Date,
}

/// A regulator's reclassification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub grade: Grade,
    pub reason: String,
    /// The last day it applies (inclusive); `None` until removed.
    pub expires_at: Option<Date>,
    pub actor: String,
    pub at: Timestamp,
}

impl Override {
    /// Active through `expires_at` inclusive.
    pub fn is_active(&self, today: Date) -> bool {
        self.expires_at.is_none_or(|e| today <= e)
    }

    /// The day it was made, in China Standard Time (UTC+8, no DST).
    pub fn date(&self) -> Date {
        china_date(self.at)
    }
}

/// The civil date of a timestamp in China Standard Time (UTC+8, no DST since 1991).
pub fn china_date(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
}

/// An on-site inspection as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionItem {
    pub id: String,
    pub date: Date,
    pub hazards: u32,
    pub deadline: Option<Date>,
    pub rectified: bool,
    pub rectified_on: Option<Date>,
    /// The merchant's accepted reply to this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A sampling test as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingItem {
    pub id: String,
    pub date: Date,
    pub product: String,
    pub standard: Option<String>,
    pub passed: bool,
    pub failed_items: Vec<String>,
    /// The merchant's accepted reply to this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A penalty as shown to the public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenaltyItem {
    pub id: String,
    pub date: Date,
    pub decision_no: String,
    pub severity: Severity,
    pub fine_cny: f64,
    pub publicity_until: Option<Date>,
    /// The merchant's accepted reply to this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A complaint's outcome and date (never its text, which may name people).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintItem {
    pub id: String,
    pub date: Date,
    pub substantiated: bool,
    /// The merchant's accepted reply to this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// Complaint counts (records dated ≤ as_of) and the most recent outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintSummary {
    pub total: u32,
    pub substantiated: u32,
    pub substantiated_180d: u32,
    pub recent: Vec<ComplaintItem>,
}

/// A list the merchant is on at as_of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListItem {
    /// The entry in force (the latest `add`).
    pub id: String,
    pub list: ListKind,
    /// The first day of the current stretch on the list.
    pub since: Date,
    pub reason: Option<String>,
    /// The merchant's accepted reply to this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A merchant self-report (type and date only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportItem {
    pub id: String,
    pub date: Date,
    pub report_type: ReportType,
}

/// The latest signed commitment (date only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitmentItem {
    pub id: String,
    pub date: Date,
}

/// Recent records for the scan page: records dated ≤ as_of, most recent
/// first, at most `grading::SUMMARY_ITEMS` of each kind, no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub inspections: Vec<InspectionItem>,
    pub sampling: Vec<SamplingItem>,
    /// Penalties still in their publicity period (or, without one, dated in
    /// the last 365 days): a penalty whose publicity has ended is not shown.
    pub penalties: Vec<PenaltyItem>,
    pub complaints: ComplaintSummary,
    /// Active list entries.
    pub lists: Vec<ListItem>,
    pub self_reports: Vec<SelfReportItem>,
    pub commitment: Option<CommitmentItem>,
}

/// What the scan page shows for one merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub merchant: PublicMerchant,
    /// Effective at `as_of`: the override's grade if one is active, else computed.
    pub grade: Grade,
    pub computed_grade: Grade,
    /// The override active at `as_of`, if any.
    #[serde(rename = "override")]
    pub override_: Option<Override>,
    /// With an active override, its reason first; then the computed reasons.
    pub reasons: Vec<Reason>,
    pub records: RecordSummary,
    pub as_of: Date,
    pub updated_at: Timestamp,
    /// The earlier of the grading's next change and the day after the
    /// override expires.
    pub next_change_at: Option<Date>,
}

impl Projection {
    /// The grade to show on `today`, re-checking the override's expiry.
    pub fn effective(&self, today: Date) -> (Grade, Option<&Override>) {
        effective(self.computed_grade, self.override_.as_ref(), today)
    }
}

/// The grade to show on `today`: the override's while it is active, else
/// the computed one; with the override if it applies.
pub fn effective(
    computed: Grade,
    override_: Option<&Override>,
    today: Date,
) -> (Grade, Option<&Override>) {
    match override_ {
        Some(o) if o.is_active(today) => (o.grade, Some(o)),
        _ => (computed, None),
    }
}
