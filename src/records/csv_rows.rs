//! CSV input: a header row of CONTRACT §3 field names (the record kind from
//! the file name when there is no `kind` column), and each row turned into
//! the JSON object the field readers check, so CSV and JSONL give the same
//! records and the same messages.

use std::path::Path;

use serde_json::{Map, Value};

use super::fields::{merchant_from_value, record_from_value, Mode};
use super::parse::{parse_merchant, parse_record};
use crate::model::{truncate, Merchant, Record, RECORD_KINDS};

/// The format of an input file, chosen by its extension: `.csv` is CSV
/// (one file per record kind), anything else JSONL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jsonl,
    Csv,
}

impl InputFormat {
    pub fn of(path: &Path) -> InputFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => InputFormat::Csv,
            _ => InputFormat::Jsonl,
        }
    }
}

/// The header row of a CSV file: its field names (those of CONTRACT §3) and,
/// when it has no `kind` column, the record kind its file name gives.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvHeader {
    names: Vec<String>,
    kind: Option<&'static str>,
}

impl CsvHeader {
    /// Parses a header row of the file at `path`.
    pub fn parse(row: &str, path: &Path) -> Result<CsvHeader, String> {
        let fields = csv_fields(row)?;
        let mut names: Vec<String> = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            let name = f.trim();
            if name.is_empty() {
                return Err(format!("column {} has no name", i + 1));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("column `{}` appears twice", truncate(name)));
            }
            names.push(name.to_owned());
        }
        let kind = if names.iter().any(|n| n == "kind") {
            None
        } else {
            kind_of_file(path)
        };
        Ok(CsvHeader { names, kind })
    }

    /// Turns one CSV row into the JSON object of CONTRACT §3: lists split on
    /// `;`, numbers and booleans typed, empty cells absent.
    fn object(&self, row: &str) -> Result<Map<String, Value>, String> {
        let cells = csv_fields(row)?;
        if cells.len() != self.names.len() {
            return Err(format!(
                "expected {} fields as in the header row, got {}",
                self.names.len(),
                cells.len()
            ));
        }
        let mut m = Map::new();
        for (name, cell) in self.names.iter().zip(cells.iter()) {
            if let Some(v) = csv_value(name, cell)? {
                m.insert(name.clone(), v);
            }
        }
        if let Some(kind) = self.kind {
            m.entry("kind").or_insert_with(|| kind.into());
        }
        Ok(m)
    }
}

/// The record kind a CSV file name stands for: `sampling.csv`,
/// `2025_sampling.csv`, `sampling-2025.csv`.
fn kind_of_file(path: &Path) -> Option<&'static str> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    RECORD_KINDS.iter().copied().find(|k| {
        stem == *k
            || [format!("_{k}"), format!("-{k}"), format!(".{k}")]
                .iter()
                .any(|s| stem.ends_with(s.as_str()))
            || [format!("{k}_"), format!("{k}-"), format!("{k}.")]
                .iter()
                .any(|s| stem.starts_with(s.as_str()))
    })
}

/// The fields of one CSV record (which may span lines inside quotes).
fn csv_fields(row: &str) -> Result<csv::StringRecord, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(row.len() + 1)
        .from_reader(row.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(_) => Ok(record),
        Err(e) => Err(format!("invalid CSV: {e}")),
    }
}

/// The JSON value of one CSV cell, typed by its field name; `None` for an
/// empty cell (absent), except that an empty list cell is an empty list.
fn csv_value(name: &str, cell: &str) -> Result<Option<Value>, String> {
    let t = cell.trim();
    let bad =
        |expected: &str| format!("field `{name}`: expected {expected}, got `{}`", truncate(t));
    if matches!(name, "failed_items" | "categories") {
        let items = t
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect();
        return Ok(Some(Value::Array(items)));
    }
    if t.is_empty() {
        return Ok(None);
    }
    let number = |t: &str| {
        t.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .and_then(serde_json::Number::from_f64)
    };
    let v = match name {
        "hazards" => match t.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::Number(number(t).ok_or_else(|| bad("an integer ≥ 0"))?),
        },
        "fine_cny" => match t.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::Number(number(t).ok_or_else(|| bad("a number ≥ 0"))?),
        },
        "rectified" | "passed" | "substantiated" => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "是" => Value::Bool(true),
            "false" | "0" | "no" | "n" | "否" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        _ => Value::String(cell.to_owned()),
    };
    Ok(Some(v))
}

/// Whether a CSV line, read on from `in_quotes`, ends inside a quoted
/// field (so the record goes on with the next line).
pub(super) fn csv_ends_in_quotes(line: &str, mut in_quotes: bool) -> bool {
    let b = line.as_bytes();
    let mut field_start = !in_quotes;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_quotes {
            if c == b'"' {
                if b.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
            field_start = false;
        } else if c == b',' {
            field_start = true;
        } else {
            in_quotes = c == b'"' && field_start;
            field_start = false;
        }
        i += 1;
    }
    in_quotes
}

/// How to parse the entries of one input file.
#[derive(Debug, Clone)]
pub enum RowParser {
    Json,
    Csv(std::sync::Arc<CsvHeader>),
}

impl RowParser {
    pub fn merchant(&self, text: &str) -> Result<Merchant, String> {
        match self {
            RowParser::Json => parse_merchant(text),
            RowParser::Csv(h) => merchant_from_value(&h.object(text)?, Mode::Input),
        }
    }

    pub fn record(&self, text: &str) -> Result<Record, String> {
        match self {
            RowParser::Json => parse_record(text),
            RowParser::Csv(h) => {
                let m = h.object(text)?;
                if !m.contains_key("kind") {
                    return Err(format!(
                        "missing field `kind`: add a `kind` column or name the file after \
                         its record kind (e.g. sampling.csv; kinds: {})",
                        RECORD_KINDS.join(", ")
                    ));
                }
                record_from_value(&m, Mode::Input)
            }
        }
    }
}
