//! The roster: law-enforcement inspectors (执法人员, role `inspector`), who
//! are drawn into the teams of random inspection plans, and grid
//! assistants (协管员, role `assistant`), who are given merchants to patrol
//! (CONTRACT §7).
//!
//! A line of `inspectors.jsonl` (or a row of a CSV file with the same
//! column names) is `{"id", "name", "unit", "region", "role", "active"?}`,
//! parsed here into a [`Member`] once. An id names a person; a person may be
//! on the roster in both roles (two lines, one per role), which is what
//! makes "never the merchant's own assistant" a real constraint on plans.
//! Importing the same (role, id) again replaces the entry; `"active":
//! false` takes a person off duty (kept for the audit trail, left out of
//! the grid and of plans).
//!
//! Members are documents of the collection `inspectors`, keyed
//! `ROLE:ID`: a county's roster is hundreds to a few tens of thousands of
//! people, which a listing reads whole.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::{
    check_text, truncate, AuditEntry, MerchantId, RegionCode, TextKind, MAX_NAME_CHARS,
};
use crate::records::{json_without_repeated_keys, read_jsonl_from, Reject};
use crate::store::documents::{self, Collection};
use crate::store::{Documents, StoreResult};

/// The roster's collection.
pub const ROSTER: Collection = Collection::new("inspectors");

/// The largest roster file or body read, in bytes: a province's staff
/// fits many times over.
pub const MAX_ROSTER_BYTES: u64 = 16 * 1024 * 1024;

/// A person's id on the roster: 1–32 characters of `A-Z a-z 0-9 . _ -`
/// (an employee or badge number).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaffId(String);

impl StaffId {
    pub const MAX_LEN: usize = MerchantId::MAX_LEN;

    /// The rule of a merchant's id (`MerchantId`), which it shares.
    pub fn parse(raw: &str) -> Result<StaffId, String> {
        match MerchantId::parse(raw) {
            Ok(id) => Ok(StaffId(id.as_str().to_owned())),
            Err(_) => Err(format!(
                "id `{}`: expected 1-{} characters of A-Z a-z 0-9 . _ -",
                truncate(raw),
                Self::MAX_LEN
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StaffId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StaffId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StaffId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        StaffId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What a person does on the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 执法人员: drawn into inspection teams.
    Inspector,
    /// 协管员: looks after merchants on the grid.
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::Assistant => "assistant",
        }
    }

    pub fn from_name(raw: &str) -> Option<Role> {
        match raw {
            "inspector" => Some(Role::Inspector),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One person in one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: StaffId,
    pub name: String,
    /// The unit (所, 队, 科室) a plan publishes instead of the name.
    pub unit: String,
    /// The area the person covers (see [`covers`]).
    pub region: RegionCode,
    pub role: Role,
    pub active: bool,
}

impl Member {
    /// The document key: `ROLE:ID`.
    pub fn key(&self) -> String {
        member_key(self.role, &self.id)
    }
}

/// The document key of a person in a role.
pub fn member_key(role: Role, id: &StaffId) -> String {
    format!("{}:{}", role.name(), id)
}

/// The prefix a region code covers: the code without its trailing zeros
/// (`511500` → `5115`, `510000` → `51`, `000000` → every region).
pub fn cover_prefix(area: &RegionCode) -> &str {
    area.as_str().trim_end_matches('0')
}

/// Whether someone whose region is `area` covers a merchant in `region`:
/// `region` starts with `area`'s non-zero prefix (CONTRACT §7: `511500`
/// covers `511504`).
pub fn covers(area: &RegionCode, region: &RegionCode) -> bool {
    region.as_str().starts_with(cover_prefix(area))
}

/// Reads one roster line (a JSON object) into a member.
pub fn parse_member_line(line: &str) -> Result<Member, String> {
    match json_without_repeated_keys(line)? {
        Value::Object(m) => member_from_object(&m),
        _ => Err("expected a JSON object".into()),
    }
}

fn member_from_object(m: &Map<String, Value>) -> Result<Member, String> {
    let text = |key: &str| -> Result<&str, String> {
        match m.get(key) {
            None | Some(Value::Null) => Err(format!("missing field `{key}`")),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!("field `{key}`: expected a string")),
        }
    };
    let bounded = |key: &str| -> Result<String, String> {
        let s = text(key)?.trim();
        if s.is_empty() {
            return Err(format!("field `{key}`: must not be empty"));
        }
        check_text(s, MAX_NAME_CHARS, TextKind::Line).map_err(|e| format!("field `{key}`: {e}"))?;
        Ok(s.to_owned())
    };
    let id = StaffId::parse(text("id")?.trim()).map_err(|e| format!("field `id`: {e}"))?;
    let region_raw = text("region")?.trim();
    let region = RegionCode::parse(region_raw).map_err(|_| {
        format!(
            "field `region`: expected 6 digits (GB/T 2260 code), got `{}`",
            truncate(region_raw)
        )
    })?;
    let role_raw = text("role")?.trim();
    let role = Role::from_name(role_raw).ok_or_else(|| {
        format!(
            "field `role`: expected inspector or assistant, got `{}`",
            truncate(role_raw)
        )
    })?;
    let active = match m.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("field `active`: expected true or false".into()),
    };
    Ok(Member {
        id,
        name: bounded("name")?,
        unit: bounded("unit")?,
        region,
        role,
        active,
    })
}

/// The members read (with their line numbers) and the rejected lines.
pub type RosterLines = (Vec<(u64, Member)>, Vec<Reject>);

/// The members of a JSONL text and its rejected lines.
pub fn read_jsonl_roster(reader: impl BufRead, file: &str) -> RosterLines {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let read = read_jsonl_from(
        reader,
        file,
        parse_member_line,
        |m, line| ok.push((line, m)),
        |r| bad.push(r),
    );
    if let Err(e) = read {
        bad.push(Reject {
            file: file.to_owned(),
            line: 0,
            reason: format!("cannot read: {e}"),
        });
    }
    (ok, bad)
}

/// The members of a CSV text (a header row of the JSONL field names) and
/// its rejected rows; `active` reads true/false, 1/0, yes/no, 是/否.
pub fn read_csv_roster(reader: impl std::io::Read, file: &str) -> RosterLines {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let reject = |line: u64, reason: String| Reject {
        file: file.to_owned(),
        line,
        reason,
    };
    let mut rows = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header: Vec<String> = match rows.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim().trim_start_matches('\u{feff}').to_owned())
            .collect(),
        Err(e) => return (ok, vec![reject(1, format!("header row: invalid CSV: {e}"))]),
    };
    for row in rows.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad.push(reject(line, format!("invalid CSV: {e}")));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        if row.len() != header.len() {
            bad.push(reject(
                line,
                format!(
                    "expected {} fields as in the header row, got {}",
                    header.len(),
                    row.len()
                ),
            ));
            continue;
        }
        let parsed = csv_object(&header, &row).and_then(|m| member_from_object(&m));
        match parsed {
            Ok(m) => ok.push((line, m)),
            Err(reason) => bad.push(reject(line, reason)),
        }
    }
    (ok, bad)
}

fn csv_object(header: &[String], row: &csv::StringRecord) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for (name, cell) in header.iter().zip(row.iter()) {
        let t = cell.trim();
        if t.is_empty() {
            continue;
        }
        let v = if name == "active" {
            match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "y" | "是" => Value::Bool(true),
                "false" | "0" | "no" | "n" | "否" => Value::Bool(false),
                _ => {
                    return Err(format!(
                        "field `active`: expected true or false, got `{}`",
                        truncate(t)
                    ))
                }
            }
        } else {
            Value::String(cell.to_owned())
        };
        m.insert(name.clone(), v);
    }
    Ok(m)
}

/// Reads a roster file: CSV if its name ends in `.csv`, else JSONL.
pub fn read_roster_file(path: &Path) -> std::io::Result<RosterLines> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_ROSTER_BYTES {
        return Err(std::io::Error::other(format!(
            "{}: {len} bytes, over the roster limit of {MAX_ROSTER_BYTES}",
            path.display()
        )));
    }
    let name = path.display().to_string();
    let csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let reader = std::io::BufReader::new(file);
    Ok(if csv {
        read_csv_roster(reader, &name)
    } else {
        read_jsonl_roster(reader, &name)
    })
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RosterImport {
    /// New or changed members written.
    pub imported: u64,
    /// Members identical to what was stored.
    pub unchanged: u64,
    pub rejected: u64,
    /// Lines refused because the member (as written or as stored) is
    /// outside the caller's regions.
    pub out_of_scope: u64,
    pub rejects: Vec<Reject>,
}

/// Writes parsed members: a (role, id) repeated within the input is
/// refused on its later lines; one outside `may_write` (as written or as
/// stored) is refused; an unchanged one is not written again; each change
/// is written with its audit entry by `actor`.
pub async fn import_members(
    store: &(impl Documents + ?Sized),
    file: &str,
    members: Vec<(u64, Member)>,
    mut rejects: Vec<Reject>,
    may_write: &(dyn Fn(&RegionCode) -> bool + Sync),
    actor: &str,
) -> StoreResult<RosterImport> {
    let mut report = RosterImport::default();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, m) in members {
        let key = m.key();
        if let Some(first) = first_line.get(&key) {
            rejects.push(Reject {
                file: file.to_owned(),
                line,
                reason: format!(
                    "{} `{}` appears twice (first on line {first}): keep one",
                    m.role.name(),
                    m.id
                ),
            });
            continue;
        }
        first_line.insert(key.clone(), line);
        let before: Option<Member> = documents::get(store, ROSTER, &key).await?;
        let stored_outside = before.as_ref().is_some_and(|b| !may_write(&b.region));
        if !may_write(&m.region) || stored_outside {
            report.out_of_scope += 1;
            rejects.push(Reject {
                file: file.to_owned(),
                line,
                reason: format!(
                    "{} `{}`: region {} is outside the regions this caller may change",
                    m.role.name(),
                    m.id,
                    before
                        .as_ref()
                        .filter(|_| stored_outside)
                        .map_or(&m.region, |b| &b.region)
                ),
            });
            continue;
        }
        if before.as_ref() == Some(&m) {
            report.unchanged += 1;
            continue;
        }
        let audit = AuditEntry {
            at: crate::clock::now(),
            actor: actor.to_owned(),
            action: "roster.upsert".into(),
            target: key.clone(),
            before: json!({ "member": before }),
            after: json!({ "member": m }),
            reason: None,
        };
        documents::put(store, ROSTER, &key, &m, Some(audit)).await?;
        report.imported += 1;
    }
    report.rejected = rejects.len() as u64;
    report.rejects = rejects;
    Ok(report)
}

/// Every member on the roster (active or not), in key order.
pub async fn load(store: &(impl Documents + ?Sized)) -> StoreResult<Vec<Member>> {
    Ok(documents::all::<Member>(store, ROSTER)
        .await?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// The active members of one role, ordered by id.
pub fn active(members: &[Member], role: Role) -> Vec<&Member> {
    let mut out: Vec<&Member> = members
        .iter()
        .filter(|m| m.active && m.role == role)
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A member by role and id.
pub async fn member(
    store: &(impl Documents + ?Sized),
    role: Role,
    id: &StaffId,
) -> StoreResult<Option<Member>> {
    documents::get(store, ROSTER, &member_key(role, id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn a_region_ending_in_zeros_covers_every_region_under_its_prefix() {
        let cases = [
            ("511500", "511504", true),
            ("511500", "511500", true),
            ("511500", "511600", false),
            ("510000", "511504", true),
            ("511504", "511504", true),
            ("511504", "511505", false),
            ("511050", "511054", true),
            ("511050", "511004", false),
            ("000000", "440304", true),
        ];
        for (area, r, want) in cases {
            assert_eq!(covers(&region(area), &region(r)), want, "{area} covers {r}");
        }
    }

    #[test]
    fn roster_lines_parse_into_members_or_say_what_is_wrong() {
        let ok = parse_member_line(
            r#"{"id":"A-01","name":"张三","unit":"青神县市场监管局城区所","region":"511425","role":"assistant"}"#,
        )
        .unwrap();
        assert_eq!(ok.role, Role::Assistant);
        assert!(ok.active);
        let off = parse_member_line(
            r#"{"id":"I1","name":"李四","unit":"执法大队","region":"511400","role":"inspector","active":false}"#,
        )
        .unwrap();
        assert!(!off.active);
        let cases = [
            (
                r#"{"name":"x","unit":"u","region":"511425","role":"inspector"}"#,
                "missing field `id`",
            ),
            (
                r#"{"id":"a b","name":"x","unit":"u","region":"511425","role":"inspector"}"#,
                "field `id`",
            ),
            (
                r#"{"id":"a","name":"x","unit":"u","region":"5114","role":"inspector"}"#,
                "field `region`: expected 6 digits",
            ),
            (
                r#"{"id":"a","name":"x","unit":"u","region":"511425","role":"boss"}"#,
                "field `role`: expected inspector or assistant",
            ),
            (
                r#"{"id":"a","name":" ","unit":"u","region":"511425","role":"inspector"}"#,
                "field `name`: must not be empty",
            ),
            (
                r#"{"id":"a","name":"x\u202e","unit":"u","region":"511425","role":"inspector"}"#,
                "field `name`: contains an invisible",
            ),
            (
                r#"{"id":"a","id":"b","name":"x","unit":"u","region":"511425","role":"inspector"}"#,
                "appears twice",
            ),
            (
                r#"{"id":"a","name":"x","unit":"u","region":"511425","role":"inspector","active":"yes"}"#,
                "field `active`",
            ),
            (r#"[1]"#, "expected a JSON object"),
        ];
        for (line, want) in cases {
            let err = parse_member_line(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn csv_rows_read_like_jsonl_lines_and_bad_rows_are_rejected_by_line() {
        let text = "\u{feff}id,name,unit,region,role,active\n\
                    A1,王五,城区所,511425,assistant,\n\
                    I1,赵六,执法大队,511400,inspector,否\n\
                    I2,钱七,执法大队,51140,inspector,\n\
                    I3,孙八,执法大队,511400\n";
        let (ok, bad) = read_csv_roster(text.as_bytes(), "roster.csv");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].0, 2);
        assert!(ok[0].1.active && !ok[1].1.active);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0].line, 4);
        assert!(
            bad[0].reason.contains("field `region`"),
            "{}",
            bad[0].reason
        );
        assert_eq!(bad[1].line, 5);
        assert!(
            bad[1].reason.contains("expected 6 fields"),
            "{}",
            bad[1].reason
        );
    }
}
