//! The field readers: one object's fields, from a parsed JSON map (any
//! input) or from the typed fast path (a JSON line read straight into a
//! struct of borrowed fields), checked with the same rules and the same
//! clerk-readable messages either way.

use std::borrow::Cow;

use jiff::civil::Date;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    check_text, truncate, CreditCode, DomainError, ListAction, ListKind, Merchant, MerchantId,
    MerchantKind, Record, RecordBody, RegionCode, ReportType, Severity, TextKind, MAX_FINE_CNY,
    MAX_ID_CHARS, MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_REPLY_CHARS, MAX_TEXT_CHARS, RECORD_KINDS,
};

/// Whether a line is input (held to every rule) or was written by a store
/// (see the documentation of `crate::records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Input,
    Stored,
}

/// Parses JSON text, refusing an object (at any depth) in which a key
/// appears twice: serde_json alone keeps the last value silently, so
/// `{"fine_cny": 100, "fine_cny": 100000}` would mean what its last key
/// says to this service and maybe what its first says to another reader.
/// The error names the key and the column.
pub fn json_without_repeated_keys(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<UniqueKeys>(text) {
        Ok(UniqueKeys(v)) => Ok(v),
        // Only the repeated-key check makes a data error here: any JSON
        // value is welcome otherwise.
        Err(e) if e.is_data() => {
            let msg = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            let msg = msg.strip_suffix(at.as_str()).unwrap_or(&msg);
            Err(format!("{msg} (at column {})", e.column()))
        }
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// A JSON value whose objects have distinct keys ([`json_without_repeated_keys`]).
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Checked before the value is read: the error's column is the
            // repeated key's.
            if m.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "key `{}` appears twice in one object: keep one",
                    truncate(&key)
                )));
            }
            let UniqueKeys(v) = map.next_value()?;
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
}

pub(super) fn merchant_from_value(m: &dyn Source, mode: Mode) -> Result<Merchant, String> {
    let f = Fields(m, mode);
    let id = f.merchant_id("id")?;
    let name = f.text("name", MAX_NAME_CHARS, TextKind::Line)?;
    let kind = f.choice("kind", MerchantKind::from_name, MerchantKind::names)?;
    let uscc = match f.opt_text("uscc", MAX_ID_CHARS, TextKind::Line)? {
        None => None,
        Some(raw) => {
            let raw = raw.trim().to_ascii_uppercase();
            match CreditCode::parse(&raw) {
                Ok(c) => Some(c),
                Err(DomainError::CreditCode(shown, why)) => {
                    return Err(format!("field `uscc`: {why}, got `{shown}`"))
                }
                Err(e) => return Err(format!("field `uscc`: {e}")),
            }
        }
    };
    let address = f.text("address", MAX_NAME_CHARS, TextKind::Line)?;
    let region = {
        let raw = f.string("region")?;
        RegionCode::parse(raw).map_err(|_| {
            format!(
                "field `region`: expected 6 digits (GB/T 2260 code), got `{}`",
                truncate(raw)
            )
        })?
    };
    let categories = f.list("categories", true)?;
    Ok(Merchant {
        id,
        name,
        kind,
        uscc,
        address,
        region,
        categories,
        contact_name: f.opt_text("contact_name", MAX_NAME_CHARS, TextKind::Line)?,
        contact_phone: f.opt_text("contact_phone", MAX_ID_CHARS, TextKind::Line)?,
        id_number: f.opt_text("id_number", MAX_ID_CHARS, TextKind::Line)?,
    })
}

pub(super) fn record_from_value(m: &dyn Source, mode: Mode) -> Result<Record, String> {
    let f = Fields(m, mode);
    let id = f.text("id", MAX_ID_CHARS, TextKind::Line)?;
    let merchant = f.merchant_id("merchant")?;
    let kind = f.string("kind")?;
    if !RECORD_KINDS.contains(&kind) {
        return Err(format!(
            "unknown kind `{}` (expected one of {})",
            truncate(kind),
            RECORD_KINDS.join(", ")
        ));
    }
    let date = f.date("date")?;
    let source = f.opt_text("source", MAX_NAME_CHARS, TextKind::Line)?;
    let body = match kind {
        "inspection" => RecordBody::Inspection {
            hazards: f.count("hazards")?,
            deadline: f.opt_date("deadline")?,
            rectified: f.boolean("rectified")?,
            rectified_on: f.opt_date("rectified_on")?,
            plan: f.opt_text("plan", MAX_ID_CHARS, TextKind::Line)?,
        },
        "sampling" => RecordBody::Sampling {
            product: f.text("product", MAX_NAME_CHARS, TextKind::Line)?,
            standard: f.opt_text("standard", MAX_NAME_CHARS, TextKind::Line)?,
            passed: f.boolean("passed")?,
            failed_items: f.list("failed_items", false)?,
        },
        "penalty" => RecordBody::Penalty {
            decision_no: f.text("decision_no", MAX_ID_CHARS, TextKind::Line)?,
            severity: f.choice("severity", Severity::from_name, Severity::names)?,
            fine_cny: f.amount("fine_cny")?,
            publicity_until: f.opt_date("publicity_until")?,
        },
        "complaint" => RecordBody::Complaint {
            substantiated: f.boolean("substantiated")?,
            summary: f.opt_text("summary", MAX_TEXT_CHARS, TextKind::Lines)?,
        },
        "list" => RecordBody::List {
            list: f.choice("list", ListKind::from_name, ListKind::names)?,
            action: f.choice("action", ListAction::from_name, ListAction::names)?,
            reason: f.opt_text("reason", MAX_TEXT_CHARS, TextKind::Lines)?,
        },
        "self_report" => RecordBody::SelfReport {
            report_type: f.choice("report_type", ReportType::from_name, ReportType::names)?,
            summary: f.opt_text("summary", MAX_TEXT_CHARS, TextKind::Lines)?,
        },
        "commitment" => RecordBody::Commitment {
            summary: f.opt_text("summary", MAX_TEXT_CHARS, TextKind::Lines)?,
        },
        "repair" => RecordBody::Repair {
            record: f.text("record", MAX_ID_CHARS, TextKind::Line)?,
        },
        _ => {
            let record = f.opt_text("record", MAX_ID_CHARS, TextKind::Line)?;
            let rule = f.opt_text("rule", MAX_ID_CHARS, TextKind::Line)?;
            if record.is_some() == rule.is_some() {
                return Err("a reply answers exactly one of field `record` or field `rule`".into());
            }
            RecordBody::Reply {
                record,
                rule,
                text: f.text("text", MAX_REPLY_CHARS, TextKind::Lines)?,
            }
        }
    };
    Ok(Record {
        id,
        merchant,
        date,
        source,
        body,
    })
}

/// Typed access to the fields of one JSON object, with clerk-readable errors.
/// A field that is `null` counts as absent.
struct Fields<'a>(&'a dyn Source, Mode);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<Val<'_>> {
        self.0.field(key)
    }

    fn req(&self, key: &str) -> Result<Val<'_>, String> {
        self.get(key)
            .ok_or_else(|| format!("missing field `{key}`"))
    }

    fn string(&self, key: &str) -> Result<&str, String> {
        match self.req(key)? {
            Val::Str(s) => Ok(s),
            other => Err(wrong_type(key, "a string", &other)),
        }
    }

    fn text(&self, key: &str, max: usize, what: TextKind) -> Result<String, String> {
        let s = self.string(key)?;
        self.check_text(key, s, max, what)?;
        if s.trim().is_empty() {
            return Err(format!("field `{key}`: must not be empty"));
        }
        Ok(s.to_owned())
    }

    /// An optional text field; an empty string counts as absent (spreadsheet
    /// exports write empty cells for missing values).
    fn opt_text(&self, key: &str, max: usize, what: TextKind) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Val::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(Val::Str(s)) => {
                self.check_text(key, s, max, what)?;
                Ok(Some(s.to_owned()))
            }
            Some(other) => Err(wrong_type(key, "a string", &other)),
        }
    }

    fn merchant_id(&self, key: &str) -> Result<MerchantId, String> {
        let raw = self.string(key)?;
        MerchantId::parse(raw).map_err(|_| {
            format!(
                "field `{key}`: expected 1-{} characters of A-Z a-z 0-9 . _ -, got `{}`",
                MerchantId::MAX_LEN,
                truncate(raw)
            )
        })
    }

    fn date(&self, key: &str) -> Result<Date, String> {
        parse_date(key, self.string(key)?)
    }

    fn opt_date(&self, key: &str) -> Result<Option<Date>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Val::Str("")) => Ok(None),
            Some(Val::Str(s)) => parse_date(key, s).map(Some),
            Some(other) => Err(wrong_type(key, "a date (YYYY-MM-DD)", &other)),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, String> {
        match self.req(key)? {
            Val::Bool(b) => Ok(b),
            other => Err(wrong_type(key, "true or false", &other)),
        }
    }

    fn count(&self, key: &str) -> Result<u32, String> {
        let v = self.req(key)?;
        match v {
            Val::Num(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("field `{key}`: expected an integer ≥ 0, got `{n}`")),
            other => Err(wrong_type(key, "an integer ≥ 0", &other)),
        }
    }

    fn amount(&self, key: &str) -> Result<f64, String> {
        let max = match self.1 {
            Mode::Input => MAX_FINE_CNY,
            Mode::Stored => f64::MAX,
        };
        match self.req(key)? {
            Val::Num(n) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 && x <= max => Ok(x),
                Some(x) if x > max => Err(format!(
                    "field `{key}`: expected at most {max:.0} (10^11 CNY), got `{}`",
                    truncate(&n.to_string())
                )),
                _ => Err(format!("field `{key}`: expected a number ≥ 0, got `{n}`")),
            },
            other => Err(wrong_type(key, "a number ≥ 0", &other)),
        }
    }

    fn choice<T>(
        &self,
        key: &str,
        from_name: fn(&str) -> Option<T>,
        names: fn() -> String,
    ) -> Result<T, String> {
        let raw = self.string(key)?;
        from_name(raw).ok_or_else(|| {
            format!(
                "field `{key}`: expected one of {}, got `{}`",
                names(),
                truncate(raw)
            )
        })
    }

    /// A list of short texts. `required` lists must be present (maybe empty);
    /// others default to empty.
    fn list(&self, key: &str, required: bool) -> Result<Vec<String>, String> {
        let items = match self.get(key) {
            None if required => return Err(format!("missing field `{key}`")),
            None => return Ok(Vec::new()),
            Some(Val::List(items)) => items,
            Some(other) => return Err(wrong_type(key, "a list of strings", &other)),
        };
        if items.len() > MAX_LIST_ITEMS {
            return Err(format!(
                "field `{key}`: more than {MAX_LIST_ITEMS} entries ({})",
                items.len()
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_key = format!("{key}[{i}]");
                match item {
                    Val::Str(s) if s.trim().is_empty() => {
                        Err(format!("field `{item_key}`: must not be empty"))
                    }
                    Val::Str(s) => {
                        self.check_text(&item_key, s, MAX_NAME_CHARS, TextKind::Line)?;
                        Ok(s.to_owned())
                    }
                    other => Err(wrong_type(&item_key, "a string", &other)),
                }
            })
            .collect()
    }
}

impl Fields<'_> {
    /// Input text passes [`check_text`]; stored text only its length bound.
    fn check_text(&self, key: &str, s: &str, max: usize, what: TextKind) -> Result<(), String> {
        let checked = match self.1 {
            Mode::Input => check_text(s, max, what),
            Mode::Stored => check_text(s, max, TextKind::Lines).or_else(|e| match e {
                crate::model::TextError::TooLong { .. } => Err(e),
                _ => Ok(()),
            }),
        };
        checked.map_err(|e| format!("field `{key}`: {e}"))
    }
}

/// Accepts exactly `YYYY-MM-DD` with a year in 1900–2999 (anything else in
/// regulatory records is a typo, and far-future years would defeat windows).
fn parse_date(key: &str, raw: &str) -> Result<Date, String> {
    let bad = || {
        format!(
            "field `{key}`: expected YYYY-MM-DD, got `{}`",
            truncate(raw)
        )
    };
    let b = raw.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(bad());
    }
    let date: Date = raw.parse().map_err(|_| bad())?;
    if !(1900..=2999).contains(&date.year()) {
        return Err(format!(
            "field `{key}`: year out of range 1900-2999, got `{raw}`"
        ));
    }
    Ok(date)
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(key: &str, expected: &str, got: &Val<'_>) -> String {
    let got = match got {
        Val::Str(_) => "a string",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::List(_) => "a list",
        Val::Object => "an object",
        Val::Null => "null",
    };
    format!("field `{key}`: expected {expected}, got {got}")
}

/// One present, non-null field value, as the field readers see it.
pub(super) enum Val<'a> {
    Str(&'a str),
    Bool(bool),
    Num(&'a serde_json::Number),
    List(ListRef<'a>),
    Object,
    Null,
}

/// The items of a list field.
#[derive(Clone, Copy)]
pub(super) enum ListRef<'a> {
    Json(&'a [Value]),
    Strs(&'a [Cow<'a, str>]),
}

impl<'a> ListRef<'a> {
    fn len(&self) -> usize {
        match self {
            ListRef::Json(v) => v.len(),
            ListRef::Strs(v) => v.len(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Val<'a>> + 'a> {
        match *self {
            ListRef::Json(v) => Box::new(v.iter().map(val)),
            ListRef::Strs(v) => Box::new(v.iter().map(|s| Val::Str(s))),
        }
    }
}

fn val(v: &Value) -> Val<'_> {
    match v {
        Value::String(s) => Val::Str(s),
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(n),
        Value::Array(a) => Val::List(ListRef::Json(a)),
        Value::Object(_) => Val::Object,
        Value::Null => Val::Null,
    }
}

/// Where the field readers get fields from: a parsed JSON object (any
/// input), or the typed fast path below. `null` counts as absent.
pub(super) trait Source {
    fn field(&self, key: &str) -> Option<Val<'_>>;
}

impl Source for Map<String, Value> {
    fn field(&self, key: &str) -> Option<Val<'_>> {
        self.get(key).filter(|v| !v.is_null()).map(val)
    }
}

/// Defines a typed fast-path reader: a struct of optional fields read
/// straight from a JSON object (no intermediate map), with the same field
/// readers and messages as the general path. Anything unexpected fails this
/// read and the line goes the general way, which explains the problem (so
/// both ways accept the same lines and give the same records): a field of
/// an unexpected JSON type, a key that appears twice (whether the reader
/// knows it or not, at any depth), or a value that is not an object (serde's
/// derived readers would also take a list of the fields in order). Fields
/// it does not know are walked, for repeated keys, without being kept.
macro_rules! fast_reader {
    ($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$m])*
        pub(super) struct $name<'a> {
            $($field: Option<$ty>,)+
        }

        impl<'de> Deserialize<'de> for $name<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name<'de>, A::Error> {
                        let mut out = $name { $($field: None,)+ };
                        let mut keys = KeysSeen::default();
                        while let Some(Text(key)) = map.next_key()? {
                            if !keys.insert(key.clone()) {
                                return Err(de::Error::custom("repeated key"));
                            }
                            match key.as_ref() {
                                $(stringify!($field) => out.$field = map.next_value::<Option<Fast<_>>>()?.map(|f| f.0),)+
                                _ => {
                                    map.next_value::<NoRepeatedKeys>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

/// A string read from the input, borrowed from it when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One field value of a fast-path reader, strings borrowed where they can be.
struct Fast<T>(T);

impl<'de> Deserialize<'de> for Fast<Cow<'de, str>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Fast(t.0))
    }
}

impl<'de> Deserialize<'de> for Fast<Vec<Cow<'de, str>>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Text<'de>>::deserialize(d).map(|v| Fast(v.into_iter().map(|t| t.0).collect()))
    }
}

impl<'de> Deserialize<'de> for Fast<bool> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bool::deserialize(d).map(Fast)
    }
}

impl<'de> Deserialize<'de> for Fast<serde_json::Number> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Number::deserialize(d).map(Fast)
    }
}

/// The keys of one object seen so far: a short list (records have a few
/// dozen keys), a hash set past that, so a hostile line of thousands of
/// keys costs linear time.
#[derive(Default)]
struct KeysSeen<'a> {
    few: Vec<Cow<'a, str>>,
    many: std::collections::HashSet<Cow<'a, str>>,
}

impl<'a> KeysSeen<'a> {
    /// False if `key` was seen already.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        const FEW: usize = 32;
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return false;
            }
            if self.few.len() < FEW {
                self.few.push(key);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
}

/// Any JSON value, walked for repeated keys and dropped.
struct NoRepeatedKeys;

impl<'de> Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoRepeatedKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_unit<E>(self) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_none<E>(self) -> Result<NoRepeatedKeys, E> {
                Ok(NoRepeatedKeys)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NoRepeatedKeys, D::Error> {
                NoRepeatedKeys::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoRepeatedKeys, A::Error> {
                while seq.next_element::<NoRepeatedKeys>()?.is_some() {}
                Ok(NoRepeatedKeys)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoRepeatedKeys, A::Error> {
                let mut keys = KeysSeen::default();
                while let Some(Text(key)) = map.next_key()? {
                    if !keys.insert(key) {
                        return Err(de::Error::custom("repeated key"));
                    }
                    map.next_value::<NoRepeatedKeys>()?;
                }
                Ok(NoRepeatedKeys)
            }
        }
        d.deserialize_any(V)
    }
}

fast_reader! {
    /// A record line read by the typed fast path (see [`fast_reader`]).
    FastRecord {
        id: Cow<'a, str>,
        merchant: Cow<'a, str>,
        kind: Cow<'a, str>,
        date: Cow<'a, str>,
        source: Cow<'a, str>,
        hazards: serde_json::Number,
        deadline: Cow<'a, str>,
        rectified: bool,
        rectified_on: Cow<'a, str>,
        plan: Cow<'a, str>,
        product: Cow<'a, str>,
        standard: Cow<'a, str>,
        passed: bool,
        failed_items: Vec<Cow<'a, str>>,
        decision_no: Cow<'a, str>,
        severity: Cow<'a, str>,
        fine_cny: serde_json::Number,
        publicity_until: Cow<'a, str>,
        substantiated: bool,
        summary: Cow<'a, str>,
        list: Cow<'a, str>,
        action: Cow<'a, str>,
        reason: Cow<'a, str>,
        report_type: Cow<'a, str>,
        record: Cow<'a, str>,
        rule: Cow<'a, str>,
        text: Cow<'a, str>,
    }
}

fn s<'a>(v: &'a Option<Cow<'_, str>>) -> Option<Val<'a>> {
    v.as_deref().map(Val::Str)
}

impl Source for FastRecord<'_> {
    fn field(&self, key: &str) -> Option<Val<'_>> {
        match key {
            "id" => s(&self.id),
            "merchant" => s(&self.merchant),
            "kind" => s(&self.kind),
            "date" => s(&self.date),
            "source" => s(&self.source),
            "hazards" => self.hazards.as_ref().map(Val::Num),
            "deadline" => s(&self.deadline),
            "rectified" => self.rectified.map(Val::Bool),
            "rectified_on" => s(&self.rectified_on),
            "plan" => s(&self.plan),
            "product" => s(&self.product),
            "standard" => s(&self.standard),
            "passed" => self.passed.map(Val::Bool),
            "failed_items" => self
                .failed_items
                .as_deref()
                .map(|v| Val::List(ListRef::Strs(v))),
            "decision_no" => s(&self.decision_no),
            "severity" => s(&self.severity),
            "fine_cny" => self.fine_cny.as_ref().map(Val::Num),
            "publicity_until" => s(&self.publicity_until),
            "substantiated" => self.substantiated.map(Val::Bool),
            "summary" => s(&self.summary),
            "list" => s(&self.list),
            "action" => s(&self.action),
            "reason" => s(&self.reason),
            "report_type" => s(&self.report_type),
            "record" => s(&self.record),
            "rule" => s(&self.rule),
            "text" => s(&self.text),
            _ => None,
        }
    }
}

fast_reader! {
    /// The merchant counterpart of [`FastRecord`].
    FastMerchant {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        kind: Cow<'a, str>,
        uscc: Cow<'a, str>,
        address: Cow<'a, str>,
        region: Cow<'a, str>,
        categories: Vec<Cow<'a, str>>,
        contact_name: Cow<'a, str>,
        contact_phone: Cow<'a, str>,
        id_number: Cow<'a, str>,
    }
}

impl Source for FastMerchant<'_> {
    fn field(&self, key: &str) -> Option<Val<'_>> {
        match key {
            "id" => s(&self.id),
            "name" => s(&self.name),
            "kind" => s(&self.kind),
            "uscc" => s(&self.uscc),
            "address" => s(&self.address),
            "region" => s(&self.region),
            "categories" => self
                .categories
                .as_deref()
                .map(|v| Val::List(ListRef::Strs(v))),
            "contact_name" => s(&self.contact_name),
            "contact_phone" => s(&self.contact_phone),
            "id_number" => s(&self.id_number),
            _ => None,
        }
    }
}
