//! One dated fact about one merchant (inspection, sampling test, penalty,
//! complaint, list entry, self-report, commitment, credit repair, the
//! merchant's reply), and the bounds its fields keep whether it came from a
//! file or from a store.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::newtypes::MerchantId;

/// Longest name, address, product or category, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest identifier (record id, decision number, phone, id number), in characters.
pub const MAX_ID_CHARS: usize = 64;
/// Longest free text (summary, reason), in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Largest accepted `fine_cny`: 10^11 CNY (100 billion yuan), above the
/// largest administrative fine ever imposed in China (18.2 billion in
/// 2021) and far below where an `f64` stops holding whole fen exactly.
pub const MAX_FINE_CNY: f64 = 1e11;
/// Most entries in a list field (`categories`, `failed_items`).
pub const MAX_LIST_ITEMS: usize = 32;
/// Longest reply of a merchant to a reason or a record, in characters.
pub const MAX_REPLY_CHARS: usize = 300;

named_enum! {
    /// Penalty severity, ordered from mildest to worst.
    Severity { Minor = "minor", General = "general", Severe = "severe" }
}
named_enum! {
    /// 经营异常名录 (abnormal operation) or 严重违法失信名单 (serious violation).
    ListKind { Abnormal = "abnormal", Serious = "serious" }
}
named_enum! {
    /// Whether a list record puts the merchant on the list or takes it off.
    ListAction { Add = "add", Remove = "remove" }
}
named_enum! {
    /// 索票索证, 进货查验, 自查记录.
    ReportType { Invoice = "invoice", IncomingCheck = "incoming_check", SelfCheck = "self_check" }
}

/// One dated fact about one merchant. `id` is stable upstream, so importing
/// the same record again replaces it instead of adding a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Record {
    pub id: String,
    pub merchant: MerchantId,
    pub date: Date,
    pub source: Option<String>,
    #[serde(flatten)]
    pub body: RecordBody,
}

/// The kind-specific part of a [`Record`]; serialized flat next to the
/// common fields with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// 现场检查.
    Inspection {
        hazards: u32,
        deadline: Option<Date>,
        rectified: bool,
        rectified_on: Option<Date>,
        /// The random inspection plan (双随机) this inspection carries out,
        /// by name; left out of the stored JSON when absent, so records
        /// stored before the field existed keep their canonical form.
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    /// 监督抽检.
    Sampling {
        product: String,
        standard: Option<String>,
        passed: bool,
        failed_items: Vec<String>,
    },
    /// 行政处罚.
    Penalty {
        decision_no: String,
        severity: Severity,
        fine_cny: f64,
        publicity_until: Option<Date>,
    },
    /// 投诉举报 with its outcome.
    Complaint {
        substantiated: bool,
        summary: Option<String>,
    },
    /// An entry onto or a removal from a list.
    List {
        list: ListKind,
        action: ListAction,
        reason: Option<String>,
    },
    /// A merchant's own report.
    SelfReport {
        report_type: ReportType,
        summary: Option<String>,
    },
    /// A signed quality commitment (承诺书).
    Commitment { summary: Option<String> },
    /// Credit repair (信用修复) of the penalty or abnormal-list entry with
    /// id `record`, granted from the record's date: the rules marked
    /// `repairable` stop counting it (CONTRACT §6).
    Repair { record: String },
    /// The merchant's reply (right to reply) to a record (`record`) or a
    /// reason (`rule`), exactly one of them, as accepted by a regulator.
    Reply {
        record: Option<String>,
        rule: Option<String>,
        text: String,
    },
}

/// The record kinds, as named in the `kind` field.
pub const RECORD_KINDS: [&str; 9] = [
    "inspection",
    "sampling",
    "penalty",
    "complaint",
    "list",
    "self_report",
    "commitment",
    "repair",
    "reply",
];

/// The text the canonical JSON of every sampling record holds (its `kind`
/// member, written compactly), and no other record's outside a string
/// value (where quotes are escaped): a backend may pick sampling records
/// out of stored JSON by it before parsing them.
pub const SAMPLING_KIND_MEMBER: &[u8] = br#""kind":"sampling""#;

impl Record {
    pub fn is_sampling(&self) -> bool {
        matches!(self.body, RecordBody::Sampling { .. })
    }
}

impl RecordBody {
    /// The `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordBody::Inspection { .. } => "inspection",
            RecordBody::Sampling { .. } => "sampling",
            RecordBody::Penalty { .. } => "penalty",
            RecordBody::Complaint { .. } => "complaint",
            RecordBody::List { .. } => "list",
            RecordBody::SelfReport { .. } => "self_report",
            RecordBody::Commitment { .. } => "commitment",
            RecordBody::Repair { .. } => "repair",
            RecordBody::Reply { .. } => "reply",
        }
    }
}
