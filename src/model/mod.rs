//! The domain model: the values every layer shares, in one place.
//!
//! Store, scan, web, grading and the record parsers all depend on this
//! module, and it depends on none of them: it holds the shapes (merchants,
//! records, projections, the records the service owns), the newtypes that
//! are parsed once at the edges, and the compact binary form of a record the
//! stores keep for a regrade. How a record is read from a file
//! (`crate::records`) and how a projection is computed (`crate::grading`)
//! live with their callers. One seam crosses back: a merchant's and a
//! record's `Deserialize` goes through `TryFrom<Value>`, which
//! `crate::records` implements with its stored-form rules, so that a store
//! and the parser read stored JSON alike; this module imports nothing from
//! it.

/// Defines a closed enum with its wire names (serde and error messages share them).
macro_rules! named_enum {
    ($(#[$m:meta])* $t:ident { $($(#[$vm:meta])* $v:ident = $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $t {
            $($(#[$vm])* #[serde(rename = $n)] $v),+
        }
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$($t::$v),+];
            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $($t::$v => $n),+ }
            }
            /// Parses a wire name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($n => Some($t::$v),)+ _ => None }
            }
            /// Every wire name, comma-separated (for error messages).
            pub(crate) fn names() -> String {
                Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

mod merchant;
mod newtypes;
mod owned;
mod projection;
mod record;
mod record_codec;

pub use merchant::{mask_name, mask_phone, Merchant, MerchantKind, PublicMerchant};
pub use newtypes::{
    check_text, fnv1a64, parse_grade, truncate, CreditCode, DomainError, Grade, MerchantId,
    RegionCode, Shard, TextError, TextKind,
};
pub use owned::{ApiToken, AuditEntry, CodeStatus, IssuedCode};
pub use projection::{
    china_date, effective, CommitmentItem, ComplaintItem, ComplaintSummary, InspectionItem,
    ListItem, Override, PenaltyItem, Projection, Reason, RecordSummary, Reply, SamplingItem,
    SelfReportItem, OVERRIDE_RULE,
};
pub use record::{
    ListAction, ListKind, Record, RecordBody, ReportType, Severity, MAX_FINE_CNY, MAX_ID_CHARS,
    MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_REPLY_CHARS, MAX_TEXT_CHARS, RECORD_KINDS,
    SAMPLING_KIND_MEMBER,
};
pub use record_codec::{decode_record, encode_record};
