//! Imports from an HTTP request body (the regulator's import routes): the
//! same line rules as a refresh, each line judged against the caller's
//! scope, and the merchants concerned regraded at once.

use std::collections::BTreeMap;

use jiff::civil::Date;

use crate::grading::Rules;
use crate::model::{Merchant, MerchantId, Record};
use crate::records::{Input, Reject, RowParser};
use crate::store::BatchStore;

use super::regrade::regrade;
use super::summary::Summary;

/// What an import over HTTP did: the counts and the rejected lines.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub summary: Summary,
    pub rejects: Vec<Reject>,
    /// How many of the rejected lines were outside the caller's scope.
    pub out_of_scope: u64,
    /// Each merchant the import changed, as stored before and as written,
    /// in input order (a merchant named twice changes twice).
    pub changes: Vec<MerchantChange>,
}

/// A merchant as stored before an import (`None`: new) and as written.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantChange {
    pub before: Option<Merchant>,
    pub after: Merchant,
}

/// At most this many rejects are returned in one HTTP answer.
const MAX_REJECTS_SHOWN: usize = 1000;

impl ImportReport {
    fn reject_out_of_scope(&mut self, file: &str, line: u64, what: &str) {
        self.out_of_scope += 1;
        self.reject(Reject {
            file: file.to_owned(),
            line,
            reason: format!("{what} is outside the regions your token may change"),
        });
    }

    fn reject(&mut self, r: Reject) {
        self.summary.rejected += 1;
        if self.rejects.len() < MAX_REJECTS_SHOWN {
            self.rejects.push(r);
        }
    }
}

/// Reads the entries of `body`, a file named `name` (JSONL, or CSV when
/// the name ends in `.csv`, as `refresh` reads files), with the line rules
/// of a refresh.
fn parse_body<T>(
    body: &[u8],
    name: &str,
    parse: impl Fn(&RowParser, &str) -> Result<T, String>,
    report: &mut ImportReport,
) -> Vec<(T, u64)> {
    let mut items = Vec::new();
    // Reading a slice cannot fail.
    let Ok(mut input) = Input::from_reader(body, name) else {
        return items;
    };
    let parser = input.parser();
    while let Ok(Some(mut chunk)) = input.next_chunk(usize::MAX, usize::MAX) {
        for r in std::mem::take(&mut chunk.rejects) {
            report.reject(r);
        }
        for (line, text) in chunk.entries() {
            match parse(&parser, text) {
                Ok(t) => items.push((t, line)),
                Err(reason) => report.reject(Reject {
                    file: name.to_owned(),
                    line,
                    reason,
                }),
            }
        }
    }
    report.summary.read += input.lines();
    items
}

/// Registers or updates merchants from a body (JSONL, or CSV when `name`
/// ends in `.csv`) and grades them at once.
/// `may_write` says which regions the caller may change: a line is accepted
/// only if it may change the merchant as stored *and* as written, so moving
/// a merchant between regions takes a scope that covers both.
pub async fn import_merchants_body(
    store: &dyn BatchStore,
    rules: &Rules,
    body: &[u8],
    name: &str,
    may_write: &(dyn Fn(&crate::model::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let mut merchants = Vec::new();
    // Each merchant as it stands before the next line: stored, or as an
    // earlier line of this body wrote it.
    let mut current: BTreeMap<MerchantId, Option<Merchant>> = BTreeMap::new();
    for (m, line) in parse_body(body, name, RowParser::merchant, &mut report) {
        if !may_write(&m.region) {
            report.reject_out_of_scope(
                name,
                line,
                &format!("merchant `{}` (region {})", m.id, m.region),
            );
            continue;
        }
        if !current.contains_key(&m.id) {
            current.insert(m.id.clone(), store.merchant(&m.id).await?);
        }
        let before = current.get(&m.id).cloned().flatten();
        if let Some(stored) = before.as_ref().filter(|b| !may_write(&b.region)) {
            report.reject_out_of_scope(
                name,
                line,
                &format!(
                    "merchant `{}` is registered in region {}, which",
                    m.id, stored.region
                ),
            );
        } else {
            if before.as_ref() != Some(&m) {
                report.changes.push(MerchantChange {
                    before,
                    after: m.clone(),
                });
            }
            current.insert(m.id.clone(), Some(m.clone()));
            merchants.push(m);
        }
    }
    let ids: Vec<MerchantId> = merchants.iter().map(|m| m.id.clone()).collect();
    let changed = store.upsert_merchants(merchants).await?;
    report.summary.imported += changed;
    report.summary.duplicate += ids.len() as u64 - changed;
    regrade(store, rules, &ids, as_of, &mut report.summary).await?;
    Ok((report, ids))
}

/// Imports records from a body (JSONL, or CSV when `name` ends in `.csv`)
/// with the same rules as `refresh`, and
/// regrades the merchants they belong to at once.
pub async fn import_records_body(
    store: &dyn BatchStore,
    rules: &Rules,
    body: &[u8],
    name: &str,
    may_write: &(dyn Fn(&crate::model::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let parsed = parse_body(body, name, RowParser::record, &mut report);
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
                file: name.to_owned(),
                line,
                reason: format!("unknown merchant `{}`: register it first", r.merchant),
            }),
            Some(region) if !may_write(region) => report.reject_out_of_scope(
                name,
                line,
                &format!("merchant `{}` (region {region})", r.merchant),
            ),
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

async fn add(
    store: &dyn BatchStore,
    batch: Vec<Record>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let added = store.add_records(batch).await?;
    summary.imported += added.inserted;
    summary.duplicate += added.duplicate;
    Ok(())
}
