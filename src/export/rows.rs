//! What each open-data file holds of a merchant: public fields only. No
//! contact person or phone, not even masked, no id number, no regulator's
//! name: a merchant's identity, grade, reasons and record summary, and
//! every sampling result.

use std::io::Write;

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

    /// Writes the row of `merchants.csv`, in [`MERCHANT_COLUMNS`] order,
    /// each field as it is (no string per field; `scratch` for the joined
    /// and formatted ones).
    pub fn write_csv<W: Write>(
        &self,
        out: &mut csv::Writer<W>,
        scratch: &mut String,
    ) -> csv::Result<()> {
        let m = &self.merchant;
        for field in [
            m.id,
            m.name,
            m.kind,
            m.uscc.unwrap_or_default(),
            m.address,
            m.region,
        ] {
            out.write_field(field)?;
        }
        joined(out, scratch, m.categories.iter().map(String::as_str))?;
        out.write_field(self.grade.name())?;
        out.write_field(self.computed_grade.name())?;
        out.write_field(self.override_.as_ref().map_or("", |o| o.grade.name()))?;
        shown(
            out,
            scratch,
            self.override_.as_ref().and_then(|o| o.expires_at),
        )?;
        joined(out, scratch, self.reasons.iter().map(|r| r.rule.as_str()))?;
        shown(out, scratch, Some(self.updated_at))?;
        shown(out, scratch, self.next_change_at)?;
        out.write_record(None::<&[u8]>)
    }
}

/// A list in one field, its values separated by [`LIST_SEPARATOR`].
fn joined<'v, W: Write>(
    out: &mut csv::Writer<W>,
    scratch: &mut String,
    values: impl Iterator<Item = &'v str>,
) -> csv::Result<()> {
    scratch.clear();
    for (i, v) in values.enumerate() {
        if i > 0 {
            scratch.push_str(LIST_SEPARATOR);
        }
        scratch.push_str(v);
    }
    out.write_field(&*scratch)
}

/// A value as `Display` shows it, or an empty field.
fn shown<W: Write>(
    out: &mut csv::Writer<W>,
    scratch: &mut String,
    value: Option<impl std::fmt::Display>,
) -> csv::Result<()> {
    use std::fmt::Write as _;
    scratch.clear();
    if let Some(v) = value {
        let _ = write!(scratch, "{v}");
    }
    out.write_field(&*scratch)
}

/// Writes the row of `sampling.csv` of a sampling record, in
/// [`SAMPLING_COLUMNS`] order; `false` (nothing written) for any other
/// record.
pub fn write_sampling_row<W: Write>(
    out: &mut csv::Writer<W>,
    scratch: &mut String,
    merchant_name: &str,
    r: &Record,
) -> csv::Result<bool> {
    let RecordBody::Sampling {
        product,
        standard,
        passed,
        failed_items,
    } = &r.body
    else {
        return Ok(false);
    };
    out.write_field(r.merchant.as_str())?;
    out.write_field(merchant_name)?;
    out.write_field(&r.id)?;
    shown(out, scratch, Some(r.date))?;
    out.write_field(product)?;
    out.write_field(standard.as_deref().unwrap_or_default())?;
    out.write_field(if *passed { "true" } else { "false" })?;
    joined(out, scratch, failed_items.iter().map(String::as_str))?;
    out.write_record(None::<&[u8]>)?;
    Ok(true)
}
