//! The batch job: import merchants and records, regrade who is due, write
//! projections.
//!
//! Safe to kill at any point: records are committed with a "regrade" mark in
//! the same write, and a projection clears the mark in the same write as it
//! lands, so a re-run picks up exactly what the killed run left undone.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::civil::Date;

use crate::clock;
use crate::domain::{Grade, MerchantId};
use crate::grading::{self, Projection, Rules};
use crate::records::{self, Merchant, Record, Reject};
use crate::store::Store;

/// How many records are written per store batch.
const BATCH: usize = 5_000;

/// What to import and how to regrade.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub merchants: Option<PathBuf>,
    pub records: Vec<PathBuf>,
    pub as_of: Date,
    /// Regrade every merchant, not only those that are due.
    pub full: bool,
    pub rejects: PathBuf,
}

/// The counts a refresh reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read (merchants and records), blank lines included.
    pub read: u64,
    /// New or changed merchants, and new records.
    pub imported: u64,
    /// Unchanged merchants, and records whose id was already stored.
    pub duplicate: u64,
    pub rejected: u64,
    pub regraded: u64,
    pub by_grade: BTreeMap<Grade, u64>,
    /// Merchants whose grade changed: (id, before, after).
    pub changed: Vec<(MerchantId, Option<Grade>, Grade)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "read {} lines: imported {}, duplicate {}, rejected {}",
            self.read, self.imported, self.duplicate, self.rejected
        )?;
        let grades: Vec<String> = Grade::ALL
            .iter()
            .map(|g| format!("{} {}", g.name(), self.by_grade.get(g).copied().unwrap_or(0)))
            .collect();
        write!(f, "regraded {} merchants: {}", self.regraded, grades.join(", "))?;
        if !self.changed.is_empty() {
            write!(f, "\ngrade changed for {} merchants:", self.changed.len())?;
            for (id, before, after) in self.changed.iter().take(20) {
                let before = before.map_or("new", |g| g.name());
                write!(f, "\n  {id}: {before} -> {after}")?;
            }
            if self.changed.len() > 20 {
                write!(f, "\n  … and {} more", self.changed.len() - 20)?;
            }
        }
        Ok(())
    }
}

/// Collects rejected lines into the rejects file as JSON lines.
struct Rejects {
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
}

impl Rejects {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create rejects file {}", path.display()))?;
        Ok(Self {
            out: std::io::BufWriter::new(file),
            count: 0,
        })
    }

    fn push(&mut self, r: &Reject) -> anyhow::Result<()> {
        let line = serde_json::json!({"file": r.file, "line": r.line, "reason": r.reason});
        writeln!(self.out, "{line}")?;
        self.count += 1;
        Ok(())
    }
}

fn read_file<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, String>,
    rejects: &mut Rejects,
) -> anyhow::Result<(Vec<(T, u64)>, u64)> {
    let mut items = Vec::new();
    let mut failed = Ok(());
    let read = records::read_jsonl(path, parse, |t, line| items.push((t, line)), |r| {
        if failed.is_ok() {
            failed = rejects.push(&r);
        }
    })
    .with_context(|| format!("cannot read {}", path.display()))?;
    failed?;
    Ok((items, read))
}

/// Imports the files, then regrades the merchants that are due.
pub async fn run(store: &dyn Store, rules: &Rules, opts: &RefreshOptions) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut rejects = Rejects::create(&opts.rejects)?;
    let mut in_file = HashSet::new();
    if let Some(path) = &opts.merchants {
        let (merchants, read) = read_file(path, records::parse_merchant, &mut rejects)?;
        summary.read += read;
        let merchants: Vec<Merchant> = merchants.into_iter().map(|(m, _)| m).collect();
        in_file.extend(merchants.iter().map(|m| m.id.clone()));
        for chunk in merchants.chunks(BATCH) {
            let changed = store.upsert_merchants(chunk.to_vec()).await?;
            summary.imported += changed;
            summary.duplicate += chunk.len() as u64 - changed;
        }
        tracing::info!(file = %path.display(), merchants = merchants.len(), "merchants imported");
    }
    for path in &opts.records {
        let (parsed, read) = read_file(path, records::parse_record, &mut rejects)?;
        summary.read += read;
        let file = path.display().to_string();
        let known = known_merchants(store, &parsed, &in_file).await?;
        let mut batch = Vec::with_capacity(BATCH);
        for (record, line) in parsed {
            if known.contains(&record.merchant) {
                batch.push(record);
            } else {
                rejects.push(&Reject {
                    file: file.clone(),
                    line,
                    reason: format!(
                        "unknown merchant `{}`: import it in the merchants file first",
                        record.merchant
                    ),
                })?;
            }
            if batch.len() == BATCH {
                add(store, std::mem::take(&mut batch), &mut summary).await?;
            }
        }
        add(store, batch, &mut summary).await?;
        tracing::info!(file = %file, "records imported");
    }
    rejects.out.flush()?;
    summary.rejected = rejects.count;
    let due = if opts.full {
        store.all_merchant_ids().await?
    } else {
        store.due_for_regrade(opts.as_of).await?
    };
    regrade(store, rules, &due, opts.as_of, &mut summary).await?;
    Ok(summary)
}

async fn known_merchants(
    store: &dyn Store,
    parsed: &[(Record, u64)],
    in_file: &HashSet<MerchantId>,
) -> anyhow::Result<HashSet<MerchantId>> {
    let mut ask: Vec<MerchantId> = parsed
        .iter()
        .map(|(r, _)| r.merchant.clone())
        .filter(|m| !in_file.contains(m))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    ask.sort();
    let mut known: HashSet<MerchantId> = in_file.clone();
    for chunk in ask.chunks(BATCH) {
        known.extend(store.known_merchants(chunk.to_vec()).await?);
    }
    Ok(known)
}

async fn add(store: &dyn Store, batch: Vec<Record>, summary: &mut Summary) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let added = store.add_records(batch).await?;
    summary.imported += added.inserted;
    summary.duplicate += added.duplicate;
    Ok(())
}

/// Recomputes and stores the projections of `ids` as of `as_of`.
pub async fn regrade(
    store: &dyn Store,
    rules: &Rules,
    ids: &[MerchantId],
    as_of: Date,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let now = clock::now();
    let mut batch: Vec<Projection> = Vec::new();
    for id in ids {
        let Some(merchant) = store.merchant(id).await? else {
            continue;
        };
        let records = store.records(id).await?;
        let override_ = store.override_of(id).await?;
        let before = store.projection(id).await?.map(|p| p.grade);
        let p = grading::project(&merchant, &records, override_.as_ref(), rules, as_of, now);
        if before != Some(p.grade) {
            summary.changed.push((id.clone(), before, p.grade));
        }
        *summary.by_grade.entry(p.grade).or_default() += 1;
        summary.regraded += 1;
        batch.push(p);
        if batch.len() == BATCH {
            store.put_projections(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        store.put_projections(batch).await?;
    }
    Ok(())
}

/// What an import over HTTP did: the counts and the rejected lines.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub summary: Summary,
    pub rejects: Vec<Reject>,
}

/// At most this many rejects are returned in one HTTP answer.
const MAX_REJECTS_SHOWN: usize = 1000;

impl ImportReport {
    fn reject(&mut self, r: Reject) {
        self.summary.rejected += 1;
        if self.rejects.len() < MAX_REJECTS_SHOWN {
            self.rejects.push(r);
        }
    }
}

fn parse_body<T>(
    body: &[u8],
    parse: impl Fn(&str) -> Result<T, String>,
    report: &mut ImportReport,
) -> Vec<(T, u64)> {
    let mut items = Vec::new();
    let read = records::read_jsonl_from(
        body,
        "request body",
        parse,
        |t, line| items.push((t, line)),
        |r| report.reject(r),
    )
    .unwrap_or(0);
    report.summary.read += read;
    items
}

fn out_of_scope(line: u64, what: &str) -> Reject {
    Reject {
        file: "request body".into(),
        line,
        reason: format!("{what} is outside the regions your token may change"),
    }
}

/// Registers or updates merchants from a JSONL body and grades them at once.
/// `may_write` says which regions the caller may change.
pub async fn import_merchants_body(
    store: &dyn Store,
    rules: &Rules,
    body: &[u8],
    may_write: &(dyn Fn(&crate::domain::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let mut merchants = Vec::new();
    for (m, line) in parse_body(body, records::parse_merchant, &mut report) {
        if may_write(&m.region) {
            merchants.push(m);
        } else {
            report.reject(out_of_scope(line, &format!("merchant `{}` (region {})", m.id, m.region)));
        }
    }
    let ids: Vec<MerchantId> = merchants.iter().map(|m| m.id.clone()).collect();
    let changed = store.upsert_merchants(merchants).await?;
    report.summary.imported += changed;
    report.summary.duplicate += ids.len() as u64 - changed;
    regrade(store, rules, &ids, as_of, &mut report.summary).await?;
    Ok((report, ids))
}

/// Imports records from a JSONL body with the same rules as `refresh`, and
/// regrades the merchants they belong to at once.
pub async fn import_records_body(
    store: &dyn Store,
    rules: &Rules,
    body: &[u8],
    may_write: &(dyn Fn(&crate::domain::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let parsed = parse_body(body, records::parse_record, &mut report);
    let mut regions = BTreeMap::new();
    for (r, _) in &parsed {
        if !regions.contains_key(&r.merchant) {
            let region = store.merchant(&r.merchant).await?.map(|m| m.region);
            regions.insert(r.merchant.clone(), region);
        }
    }
    let mut accepted = Vec::new();
    for (r, line) in parsed {
        match regions.get(&r.merchant).and_then(Option::as_ref) {
            None => report.reject(Reject {
                file: "request body".into(),
                line,
                reason: format!("unknown merchant `{}`: register it first", r.merchant),
            }),
            Some(region) if !may_write(region) => {
                report.reject(out_of_scope(line, &format!("merchant `{}`", r.merchant)))
            }
            Some(_) => accepted.push(r),
        }
    }
    let mut ids: Vec<MerchantId> = accepted.iter().map(|r| r.merchant.clone()).collect();
    ids.sort();
    ids.dedup();
    add(store, accepted, &mut report.summary).await?;
    regrade(store, rules, &ids, as_of, &mut report.summary).await?;
    Ok((report, ids))
}
