//! What each open-data file holds of a merchant: public fields only. No
//! contact person or phone, not even masked, no id number, no regulator's
//! name: a merchant's identity, grade, reasons and record summary, and
//! every sampling result.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::Serialize;

use crate::model::{
    Grade, Projection, PublicMerchant, Reason, Record, RecordBody, RecordSummary, OVERRIDE_RULE,
};

/// The header of `merchants.csv`.
pub const MERCHANT_COLUMNS: [&str; 14] = [
    "id",
    "name",
    "kind",
    "uscc",
    "address",
    "region",
    "categories",
    "grade",
    "computed_grade",
    "override_grade",
    "override_expires_at",
    "reasons",
    "updated_at",
    "next_change_at",
];

/// The header of `sampling.csv`.
pub const SAMPLING_COLUMNS: [&str; 8] = [
    "merchant_id",
    "merchant_name",
    "record_id",
    "date",
    "product",
    "standard",
    "passed",
    "failed_items",
];

/// Values of a list in one CSV cell.
const LIST_SEPARATOR: &str = ";";

/// A merchant's public identity (without the masked contact fields the
/// scan page shows).
#[derive(Serialize)]
pub struct Identity<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'static str,
    pub uscc: Option<&'a str>,
    pub address: &'a str,
    pub region: &'a str,
    pub categories: &'a [String],
}

impl<'a> Identity<'a> {
    pub fn of(m: &'a PublicMerchant) -> Self {
        Identity {
            id: m.id.as_str(),
            name: &m.name,
            kind: m.kind.name(),
            uscc: m.uscc.as_ref().map(|c| c.as_str()),
            address: &m.address,
            region: m.region.as_str(),
            categories: &m.categories,
        }
    }
}

/// An override as published: no regulator's name.
#[derive(Serialize)]
pub struct PublishedOverride<'a> {
    pub grade: Grade,
    pub reason: &'a str,
    pub expires_at: Option<Date>,
    pub at: Timestamp,
}

/// One line of `merchants.jsonl.gz`: the public projection as of the
/// export's day (an override that expired by then is left out).
#[derive(Serialize)]
pub struct MerchantLine<'a> {
    pub merchant: Identity<'a>,
    pub grade: Grade,
    pub computed_grade: Grade,
    #[serde(rename = "override")]
    pub override_: Option<PublishedOverride<'a>>,
    pub reasons: Vec<&'a Reason>,
    pub records: &'a RecordSummary,
    pub as_of: Date,
    pub updated_at: Timestamp,
    pub next_change_at: Option<Date>,
}

impl<'a> MerchantLine<'a> {
    pub fn of(p: &'a Projection, today: Date) -> Self {
        let (grade, active) = p.effective(today);
        MerchantLine {
            merchant: Identity::of(&p.merchant),
            grade,
            computed_grade: p.computed_grade,
            override_: active.map(|o| PublishedOverride {
                grade: o.grade,
                reason: &o.reason,
                expires_at: o.expires_at,
                at: o.at,
            }),
            reasons: p
                .reasons
                .iter()
                .filter(|r| active.is_some() || r.rule != OVERRIDE_RULE)
                .collect(),
            records: &p.records,
            as_of: p.as_of,
            updated_at: p.updated_at,
            next_change_at: p.next_change_at,
        }
    }

    /// The row of `merchants.csv`, in [`MERCHANT_COLUMNS`] order.
    pub fn csv_row(&self) -> [String; 14] {
        let m = &self.merchant;
        let opt = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        [
            m.id.to_owned(),
            m.name.to_owned(),
            m.kind.to_owned(),
            m.uscc.unwrap_or_default().to_owned(),
            m.address.to_owned(),
            m.region.to_owned(),
            m.categories.join(LIST_SEPARATOR),
            self.grade.name().to_owned(),
            self.computed_grade.name().to_owned(),
            self.override_
                .as_ref()
                .map(|o| o.grade.name().to_owned())
                .unwrap_or_default(),
            opt(self.override_.as_ref().and_then(|o| o.expires_at)),
            self.reasons
                .iter()
                .map(|r| r.rule.as_str())
                .collect::<Vec<_>>()
                .join(LIST_SEPARATOR),
            self.updated_at.to_string(),
            opt(self.next_change_at),
        ]
    }
}

/// The row of `sampling.csv` of a sampling record, in [`SAMPLING_COLUMNS`]
/// order; `None` for any other record.
pub fn sampling_row(merchant_name: &str, r: &Record) -> Option<[String; 8]> {
    let RecordBody::Sampling {
        product,
        standard,
        passed,
        failed_items,
    } = &r.body
    else {
        return None;
    };
    Some([
        r.merchant.as_str().to_owned(),
        merchant_name.to_owned(),
        r.id.clone(),
        r.date.to_string(),
        product.clone(),
        standard.clone().unwrap_or_default(),
        passed.to_string(),
        failed_items.join(LIST_SEPARATOR),
    ])
}
