//! The line parser the import paths share: a merchant or a dated fact about
//! one (inspection, sampling test, penalty, complaint, list entry,
//! self-report, commitment), from a JSONL line or a CSV row, into the types
//! of [`crate::model`].
//!
//! Every line is parsed once into those types ("parse, don't validate"): after
//! [`parse_merchant`] or [`parse_record`] succeeds, every string is bounded,
//! every date is a real date and every credit code passes its check. A line
//! that does not parse is refused with a reason a clerk can act on, e.g.
//! ``field `date`: expected YYYY-MM-DD, got `2026-13-01` ``.
//!
//! The JSON form is the flat one of CONTRACT §3 (`{"id", "merchant", "kind",
//! "date", ...kind fields}`). The stores keep the canonical form of a parsed
//! record or merchant (its `Serialize` output: keys in declaration order,
//! `id` first, no spaces), never the input's bytes, so how an exporter laid
//! out its JSON (spaces, key order, `\u` escapes) or that a row came from
//! CSV makes no difference to what is stored or to a re-run.
//!
//! Input is held to more than the stored form: every text passes
//! [`check_text`](crate::model::check_text) (no control or bidirectional
//! formatting characters, a length bound), amounts are bounded, and an
//! object with a repeated key is refused (serde_json would keep the last
//! one silently). `Deserialize`, which only reads what a store wrote,
//! checks the structure and the bounds of lengths but not these input
//! rules, so data stored by an earlier version that allowed more still
//! reads.
//!
//! Where: `fields` reads the fields of one object (a JSON map, or the typed
//! fast path that borrows from the line) with the messages; `csv_rows`
//! turns a row into that object; `input` reads files in bounded lines and
//! chunks.

mod csv_rows;
mod fields;
mod input;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Merchant, Record};
use fields::{merchant_from_value, record_from_value, type_name, FastMerchant, FastRecord};

pub use csv_rows::{CsvHeader, InputFormat, RowParser};
pub use fields::json_without_repeated_keys;
pub use input::{read_jsonl, read_jsonl_from, Chunk, Input, Line, LineReader};

/// Longest accepted input line, in bytes (without the line break).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A line that was not imported: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Whether a line is input (held to every rule) or was written by a store
/// (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Input,
    Stored,
}

/// Parses one merchant line (JSON object, CONTRACT §3).
pub fn parse_merchant(line: &str) -> Result<Merchant, String> {
    match serde_json::from_str::<FastMerchant>(line) {
        Ok(fast) => merchant_from_value(&fast, Mode::Input),
        Err(_) => merchant_from_value(&object(line, Mode::Input)?, Mode::Input),
    }
}

/// Parses one record line (JSON object, CONTRACT §3). Does not check that the
/// merchant exists; the caller knows the merchants.
pub fn parse_record(line: &str) -> Result<Record, String> {
    match serde_json::from_str::<FastRecord>(line) {
        Ok(fast) => record_from_value(&fast, Mode::Input),
        Err(_) => record_from_value(&object(line, Mode::Input)?, Mode::Input),
    }
}

/// Reads a merchant as a store wrote it (see the module documentation).
pub fn parse_stored_merchant(json: &str) -> Result<Merchant, String> {
    match serde_json::from_str::<FastMerchant>(json) {
        Ok(fast) => merchant_from_value(&fast, Mode::Stored),
        Err(_) => merchant_from_value(&object(json, Mode::Stored)?, Mode::Stored),
    }
}

/// Reads a record as a store wrote it (see the module documentation).
pub fn parse_stored_record(json: &str) -> Result<Record, String> {
    match serde_json::from_str::<FastRecord>(json) {
        Ok(fast) => record_from_value(&fast, Mode::Stored),
        Err(_) => record_from_value(&object(json, Mode::Stored)?, Mode::Stored),
    }
}

/// The flat CONTRACT §3 JSON form of a record; [`parse_record`] reads it back.
pub fn record_to_json(r: &Record) -> Value {
    // Serializing plain strings, dates, bools and finite numbers cannot fail.
    serde_json::to_value(r).expect("a record always serializes")
}

impl TryFrom<Value> for Merchant {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match &v {
            Value::Object(m) => merchant_from_value(m, Mode::Stored),
            other => Err(format!("expected a JSON object, got {}", type_name(other))),
        }
    }
}

impl TryFrom<Value> for Record {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match &v {
            Value::Object(m) => record_from_value(m, Mode::Stored),
            other => Err(format!("expected a JSON object, got {}", type_name(other))),
        }
    }
}

fn object(line: &str, mode: Mode) -> Result<Map<String, Value>, String> {
    let value = match mode {
        Mode::Input => json_without_repeated_keys(line)?,
        Mode::Stored => serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?,
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(format!("expected a JSON object, got {}", type_name(&other))),
    }
}
