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
//! Where: `parse` holds the entry points of a line; `fields` reads the
//! fields of one object (a JSON map, or the typed fast path that borrows
//! from the line) with the messages; `csv_rows` turns a row into that
//! object; `input` reads files in bounded lines and chunks.

mod csv_rows;
mod fields;
mod input;
mod parse;
#[cfg(test)]
mod tests;

pub use csv_rows::{CsvHeader, InputFormat, RowParser};
pub use fields::json_without_repeated_keys;
pub use input::{
    read_jsonl, read_jsonl_from, Chunk, Input, Line, LineReader, Reject, MAX_LINE_BYTES,
};
pub use parse::{
    parse_merchant, parse_record, parse_stored_merchant, parse_stored_record, record_to_json,
};
