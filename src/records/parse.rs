//! The entry points of a line: a merchant or a record, from input (held to
//! every rule) or as a store wrote it, and the `TryFrom<Value>` that a
//! model type's `Deserialize` goes through (see `crate::records`).

use serde_json::{Map, Value};

use super::fields::{
    json_without_repeated_keys, merchant_from_value, record_from_value, type_name, FastMerchant,
    FastRecord, Mode,
};
use crate::model::{Merchant, Record};

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

/// Reads a merchant as a store wrote it (see the documentation of `crate::records`).
pub fn parse_stored_merchant(json: &str) -> Result<Merchant, String> {
    match serde_json::from_str::<FastMerchant>(json) {
        Ok(fast) => merchant_from_value(&fast, Mode::Stored),
        Err(_) => merchant_from_value(&object(json, Mode::Stored)?, Mode::Stored),
    }
}

/// Reads a record as a store wrote it (see the documentation of `crate::records`).
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

pub(super) fn object(line: &str, mode: Mode) -> Result<Map<String, Value>, String> {
    let value = match mode {
        Mode::Input => json_without_repeated_keys(line)?,
        Mode::Stored => serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?,
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(format!("expected a JSON object, got {}", type_name(&other))),
    }
}
