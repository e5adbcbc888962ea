//! The grid in the store: a run reads the roster, the merchants (from
//! their projections) and the previous assignment, assigns, and writes the
//! documents that changed (see the module documentation of `crate::grid`).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::assign::{assign, Region, NONE};
use crate::model::{AuditEntry, MerchantId, RegionCode};
use crate::roster::{self, Role, StaffId};
use crate::store::documents::{self, Collection};
use crate::store::{Store, StoreResult};

/// Each assistant's merchants, keyed by assistant id.
pub const GRID: Collection = Collection::new("grid");
/// The merchants no assistant can take, in pages keyed `000000`, `000001`, ...
pub const GRID_UNASSIGNED: Collection = Collection::new("grid_unassigned");
/// The summary of the latest run, under `latest`.
pub const GRID_RUNS: Collection = Collection::new("grid_runs");
/// Ids on one page of unassigned merchants.
pub const UNASSIGNED_PAGE: usize = 1000;
/// The most merchants one assistant may be given (`--per-assistant`).
pub const MAX_PER_ASSISTANT: u32 = 1000;

const LATEST: &str = "latest";

/// One assistant's merchants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantGrid {
    pub assistant: StaffId,
    pub region: RegionCode,
    /// Ascending by id.
    pub merchants: Vec<MerchantId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UnassignedPage {
    merchants: Vec<MerchantId>,
}

/// The summary of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridRun {
    pub at: Timestamp,
    pub actor: String,
    pub per_assistant: u32,
    pub merchants: u64,
    pub assistants: u64,
    pub assigned: u64,
    pub unassigned: u64,
    /// Merchants with the same assistant as before.
    pub kept: u64,
    /// Merchants given another assistant than before.
    pub moved: u64,
    /// Merchants that had none before (new, or unassigned last time).
    pub newly_assigned: u64,
    /// Merchants that had one before and have none now.
    pub dropped: u64,
    pub unassigned_pages: u64,
}

/// What a run did, for the command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridReport {
    pub run: GridRun,
    /// Documents written or removed.
    pub documents_written: u64,
}

fn region_bytes(r: &RegionCode) -> Region {
    let mut out = [b'0'; 6];
    out.copy_from_slice(&r.as_str().as_bytes()[..6]);
    out
}

/// Assigns every merchant with a projection to the active assistants on
/// the roster, at most `per_assistant` each, starting from the stored
/// assignment, and stores what changed.
pub async fn assign_and_store(
    store: &dyn Store,
    per_assistant: u32,
    actor: &str,
) -> StoreResult<GridReport> {
    let members = roster::load(store).await?;
    let assistants = roster::active(&members, Role::Assistant);
    let mut merchants: Vec<(MerchantId, RegionCode)> = Vec::new();
    store
        .for_each_projection(&mut |p| merchants.push((p.merchant.id, p.merchant.region)))
        .await?;
    merchants.sort_by(|a, b| a.0.cmp(&b.0));
    merchants.dedup_by(|a, b| a.0 == b.0);

    let old: Vec<(String, AssistantGrid)> = documents::all(store, GRID).await?;
    let (before, previous) = previous_assignment(&merchants, &assistants, &old);
    let of = assign(
        &merchants
            .iter()
            .map(|m| region_bytes(&m.1))
            .collect::<Vec<_>>(),
        &assistants
            .iter()
            .map(|a| region_bytes(&a.region))
            .collect::<Vec<_>>(),
        per_assistant,
        &previous,
    );

    let mut lists: Vec<Vec<MerchantId>> = vec![Vec::new(); assistants.len()];
    let mut unassigned: Vec<MerchantId> = Vec::new();
    let (mut kept, mut moved, mut newly, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    for (i, (id, _)) in merchants.iter().enumerate() {
        let now = (of[i] != NONE).then(|| &assistants[of[i] as usize].id);
        match (before[i], now) {
            (Some(b), Some(n)) if b == n => kept += 1,
            (Some(_), Some(_)) => moved += 1,
            (None, Some(_)) => newly += 1,
            (Some(_), None) => dropped += 1,
            (None, None) => {}
        }
        let now = of[i];
        if now == NONE {
            unassigned.push(id.clone());
        } else {
            lists[now as usize].push(id.clone());
        }
    }

    let mut written = 0u64;
    let old_docs: HashMap<&str, &AssistantGrid> =
        old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (a, list) in assistants.iter().zip(lists) {
        let doc = AssistantGrid {
            assistant: a.id.clone(),
            region: a.region.clone(),
            merchants: list,
        };
        if old_docs.get(a.id.as_str()) != Some(&&doc) {
            documents::put(store, GRID, a.id.as_str(), &doc, None).await?;
            written += 1;
        }
    }
    let active: std::collections::HashSet<&str> =
        assistants.iter().map(|a| a.id.as_str()).collect();
    for (key, _) in &old {
        if !active.contains(key.as_str()) {
            documents::remove(store, GRID, key, None).await?;
            written += 1;
        }
    }
    written += store_unassigned(store, &unassigned).await?;

    let run = GridRun {
        at: crate::clock::now(),
        actor: actor.to_owned(),
        per_assistant,
        merchants: merchants.len() as u64,
        assistants: assistants.len() as u64,
        assigned: (merchants.len() - unassigned.len()) as u64,
        unassigned: unassigned.len() as u64,
        kept,
        moved,
        newly_assigned: newly,
        dropped,
        unassigned_pages: unassigned.len().div_ceil(UNASSIGNED_PAGE) as u64,
    };
    let audit = AuditEntry {
        at: run.at,
        actor: actor.to_owned(),
        action: "grid.assign".into(),
        target: "grid".into(),
        before: serde_json::Value::Null,
        after: json!(run),
        reason: None,
    };
    documents::put(store, GRID_RUNS, LATEST, &run, Some(audit)).await?;
    Ok(GridReport {
        run,
        documents_written: written,
    })
}

/// The stored assignment: each merchant's assistant as stored (for the
/// report), and as an index among the active assistants (for the run; an
/// assistant no longer active counts as none). A merchant listed by two
/// (a run stopped half-way) counts once, with the first in key order.
fn previous_assignment<'a>(
    merchants: &[(MerchantId, RegionCode)],
    assistants: &[&roster::Member],
    old: &'a [(String, AssistantGrid)],
) -> (Vec<Option<&'a StaffId>>, Vec<u32>) {
    let merchant_index: HashMap<&str, usize> = merchants
        .iter()
        .enumerate()
        .map(|(i, m)| (m.0.as_str(), i))
        .collect();
    let assistant_index: HashMap<&str, u32> = assistants
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i as u32))
        .collect();
    let mut before: Vec<Option<&StaffId>> = vec![None; merchants.len()];
    let mut previous = vec![NONE; merchants.len()];
    for (_, doc) in old {
        let active = assistant_index.get(doc.assistant.as_str()).copied();
        for id in &doc.merchants {
            if let Some(&m) = merchant_index.get(id.as_str()) {
                if before[m].is_none() {
                    before[m] = Some(&doc.assistant);
                    previous[m] = active.unwrap_or(NONE);
                }
            }
        }
    }
    (before, previous)
}

fn page_key(i: usize) -> String {
    format!("{i:06}")
}

/// Writes the pages of unassigned merchants that changed and removes the
/// pages past the last; the number of documents written or removed.
async fn store_unassigned(store: &dyn Store, ids: &[MerchantId]) -> StoreResult<u64> {
    let mut written = 0;
    let pages: Vec<&[MerchantId]> = ids.chunks(UNASSIGNED_PAGE).collect();
    for (i, page) in pages.iter().enumerate() {
        let doc = UnassignedPage {
            merchants: page.to_vec(),
        };
        let old: Option<UnassignedPage> =
            documents::get(store, GRID_UNASSIGNED, &page_key(i)).await?;
        if old.as_ref() != Some(&doc) {
            documents::put(store, GRID_UNASSIGNED, &page_key(i), &doc, None).await?;
            written += 1;
        }
    }
    let mut i = pages.len();
    while documents::remove(store, GRID_UNASSIGNED, &page_key(i), None).await? {
        written += 1;
        i += 1;
    }
    Ok(written)
}

/// An assistant's merchants, as of the latest run.
pub async fn assistant_grid(store: &dyn Store, id: &StaffId) -> StoreResult<Option<AssistantGrid>> {
    documents::get(store, GRID, id.as_str()).await
}

/// Page `page` (from 0) of the unassigned merchants.
pub async fn unassigned_page(store: &dyn Store, page: usize) -> StoreResult<Vec<MerchantId>> {
    Ok(
        documents::get::<UnassignedPage>(store, GRID_UNASSIGNED, &page_key(page))
            .await?
            .map(|p| p.merchants)
            .unwrap_or_default(),
    )
}

/// The summary of the latest run, if there was one.
pub async fn latest_run(store: &dyn Store) -> StoreResult<Option<GridRun>> {
    documents::get(store, GRID_RUNS, LATEST).await
}
