//! Plans in the store: what a draw reads (the candidates from their
//! projections and records, the roster, the grid), the plan document it
//! writes once (collection `plans`, keyed by name), and its results (the
//! inspection records that name the plan).

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::draw::{
    draw, Candidate, DrawError, DrawInput, NoTeam, PoolInspector, MAX_SIZE, MAX_TEAM, VERSION,
};
use super::weights::Weights;
use crate::grid::{AssistantGrid, GRID};
use crate::model::{
    check_text, truncate, AuditEntry, Grade, MerchantId, RecordBody, RegionCode, TextKind,
};
use crate::roster::{self, covers, Role, StaffId};
use crate::store::documents::{self, Collection};
use crate::store::{Store, StoreError};

/// The plans, keyed by name.
pub const PLANS: Collection = Collection::new("plans");
/// Longest plan name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest seed, in characters.
pub const MAX_SEED_CHARS: usize = 128;

/// Why a plan was not made or not found.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "plan `{0}` already exists: a published plan is never drawn again; choose another name"
    )]
    Exists(String),
    #[error(transparent)]
    Draw(#[from] DrawError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A plan's name: 1–64 letters (any script), digits, `.`, `_` or `-`.
pub fn check_plan_name(raw: &str) -> Result<(), String> {
    let n = raw.chars().count();
    let ok = (1..=MAX_NAME_CHARS).contains(&n)
        && raw
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "plan name `{}`: expected 1-{MAX_NAME_CHARS} letters, digits, `.`, `_` or `-`",
            truncate(raw)
        ))
    }
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub name: String,
    pub seed: String,
    pub size: u32,
    pub region: Option<RegionCode>,
    pub weights: Weights,
    pub team_size: u32,
    pub as_of: Date,
}

impl PlanRequest {
    /// Checks every field and says in one line what is wrong.
    pub fn check(&self) -> Result<(), PlanError> {
        check_plan_name(&self.name).map_err(PlanError::Invalid)?;
        if self.seed.trim().is_empty() || self.seed.trim() != self.seed {
            return Err(PlanError::Invalid(
                "seed: expected text without leading or trailing spaces, not empty".into(),
            ));
        }
        check_text(&self.seed, MAX_SEED_CHARS, TextKind::Line)
            .map_err(|e| PlanError::Invalid(format!("seed: {e}")))?;
        if !(1..=MAX_SIZE).contains(&self.size) {
            return Err(DrawError::Size(self.size).into());
        }
        if !(1..=MAX_TEAM).contains(&self.team_size) {
            return Err(DrawError::TeamSize(self.team_size).into());
        }
        let w = &self.weights;
        if w.red == 0 && w.yellow == 0 && w.green == 0 {
            return Err(DrawError::Weights.into());
        }
        Ok(())
    }
}

/// An inspector in a team, as the plan document keeps it (the public
/// answer shows only the unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    pub id: StaffId,
    pub name: String,
    pub unit: String,
}

/// One drawn merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// 1-based, in the order drawn.
    pub order: u32,
    pub merchant_id: MerchantId,
    pub name: String,
    pub address: String,
    pub region: RegionCode,
    pub grade: Grade,
    /// In thousandths.
    pub weight: u64,
    pub doubled: bool,
    pub team: Option<Vec<TeamMember>>,
    pub no_team: Option<NoTeam>,
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub version: u32,
    pub seed: String,
    pub as_of: Date,
    pub region: Option<RegionCode>,
    /// As asked; fewer are drawn when fewer merchants have a weight.
    pub size: u32,
    pub inspectors_per_check: u32,
    pub weights: Weights,
    pub created_at: Timestamp,
    pub created_by: String,
    /// SHA-256 (hex) of the draw's input as `plan --inputs-out` writes it.
    pub input_sha256: String,
    pub candidates: u64,
    pub total_weight: u64,
    pub doubled_categories: Vec<String>,
    pub pool: u64,
    pub load_limit: u64,
    pub entries: Vec<PlanEntry>,
}

/// Reads what a draw depends on: every merchant with a projection whose
/// region `region` covers, its live grade on `as_of`, its categories, its
/// failed sampling tests and its assistant; the active inspectors.
pub async fn gather(store: &dyn Store, req: &PlanRequest) -> Result<DrawInput, PlanError> {
    let mut merchants: Vec<Candidate> = Vec::new();
    store
        .for_each_projection(&mut |p| {
            if req
                .region
                .as_ref()
                .is_none_or(|r| covers(r, &p.merchant.region))
            {
                merchants.push(Candidate {
                    grade: p.effective(req.as_of).0,
                    id: p.merchant.id,
                    region: p.merchant.region,
                    categories: p.merchant.categories,
                    assistant: None,
                    failed_sampling: Vec::new(),
                });
            }
        })
        .await?;
    merchants.sort_by(|a, b| a.id.cmp(&b.id));
    let index: HashMap<MerchantId, usize> = merchants
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();

    // Failed sampling tests, from the records, in one pass.
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let ids: Vec<MerchantId> = merchants.iter().map(|m| m.id.clone()).collect();
    let read = store.stream_grading_inputs(ids, 2048, None, tx);
    let collect = async {
        while let Some(batch) = rx.recv().await {
            for input in batch {
                let Some(&i) = index.get(&input.merchant.id) else {
                    continue;
                };
                for r in &input.records {
                    if let RecordBody::Sampling { passed: false, .. } = r.body {
                        merchants[i].failed_sampling.push(r.date);
                    }
                }
            }
        }
    };
    let (read, ()) = tokio::join!(read, collect);
    read?;
    for m in &mut merchants {
        m.failed_sampling.sort();
    }

    // Assistants, from the grid.
    let mut after: Option<String> = None;
    loop {
        let page = documents::page::<AssistantGrid>(store, GRID, after.as_deref(), 1000).await?;
        for (_, doc) in &page {
            for id in &doc.merchants {
                if let Some(&i) = index.get(id) {
                    merchants[i]
                        .assistant
                        .get_or_insert_with(|| doc.assistant.clone());
                }
            }
        }
        match page.last() {
            Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
            _ => break,
        }
    }

    let members = roster::load(store).await?;
    let inspectors = roster::active(&members, Role::Inspector)
        .into_iter()
        .map(|m| PoolInspector {
            id: m.id.clone(),
            unit: m.unit.clone(),
            region: m.region.clone(),
        })
        .collect();
    Ok(DrawInput {
        version: VERSION,
        seed: req.seed.clone(),
        as_of: req.as_of,
        size: req.size,
        team_size: req.team_size,
        weights: req.weights,
        merchants,
        inspectors,
    })
}

/// The SHA-256 (hex) of an input's JSON.
pub fn input_digest(input: &DrawInput) -> String {
    let json = serde_json::to_vec(input).expect("a draw input serializes");
    data_encoding::HEXLOWER.encode(&Sha256::digest(json))
}

/// Draws a plan from the store's state and stores it under its name, with
/// its audit entry; a name already taken is refused. Returns the plan and
/// the input it was drawn from.
pub async fn create(
    store: &dyn Store,
    req: &PlanRequest,
    actor: &str,
) -> Result<(Plan, DrawInput), PlanError> {
    req.check()?;
    if store.document(PLANS, &req.name).await?.is_some() {
        return Err(PlanError::Exists(req.name.clone()));
    }
    let input = gather(store, req).await?;
    let drawn = draw(&input)?;
    let members = roster::load(store).await?;
    let people: HashMap<&StaffId, &roster::Member> = members
        .iter()
        .filter(|m| m.role == Role::Inspector)
        .map(|m| (&m.id, m))
        .collect();
    let by_id: HashMap<&MerchantId, &Candidate> =
        input.merchants.iter().map(|m| (&m.id, m)).collect();
    let mut entries = Vec::with_capacity(drawn.entries.len());
    for (i, e) in drawn.entries.iter().enumerate() {
        let c = by_id[&e.merchant_id];
        let (name, address) = store
            .projection(&e.merchant_id)
            .await?
            .map(|p| (p.merchant.name, p.merchant.address))
            .unwrap_or_default();
        entries.push(PlanEntry {
            order: i as u32 + 1,
            merchant_id: e.merchant_id.clone(),
            name,
            address,
            region: c.region.clone(),
            grade: c.grade,
            weight: e.weight,
            doubled: e.doubled,
            team: e.team.as_ref().map(|team| {
                team.iter()
                    .map(|id| TeamMember {
                        id: id.clone(),
                        name: people.get(id).map(|m| m.name.clone()).unwrap_or_default(),
                        unit: people.get(id).map(|m| m.unit.clone()).unwrap_or_default(),
                    })
                    .collect()
            }),
            no_team: e.no_team,
        });
    }
    let plan = Plan {
        name: req.name.clone(),
        version: VERSION,
        seed: req.seed.clone(),
        as_of: req.as_of,
        region: req.region.clone(),
        size: req.size,
        inspectors_per_check: req.team_size,
        weights: req.weights,
        created_at: crate::clock::now(),
        created_by: actor.to_owned(),
        input_sha256: input_digest(&input),
        candidates: drawn.candidates,
        total_weight: drawn.total_weight,
        doubled_categories: drawn.doubled_categories,
        pool: drawn.pool,
        load_limit: drawn.load_limit,
        entries,
    };
    let audit = AuditEntry {
        at: plan.created_at,
        actor: actor.to_owned(),
        action: "plan.create".into(),
        target: format!("plan:{}", plan.name),
        before: serde_json::Value::Null,
        after: json!({
            "seed": plan.seed, "size": plan.size, "drawn": plan.entries.len(),
            "region": plan.region, "weights": plan.weights, "as_of": plan.as_of,
            "input_sha256": plan.input_sha256,
        }),
        reason: None,
    };
    if !documents::insert(store, PLANS, &plan.name, &plan, Some(audit)).await? {
        return Err(PlanError::Exists(plan.name));
    }
    Ok((plan, input))
}

/// A stored plan by name.
pub async fn get(store: &dyn Store, name: &str) -> Result<Option<Plan>, StoreError> {
    if check_plan_name(name).is_err() {
        return Ok(None);
    }
    documents::get(store, PLANS, name).await
}

/// A plan as listed: name, when, how many.
#[derive(Debug, Clone, Serialize)]
pub struct PlanListItem {
    pub name: String,
    pub created_at: Timestamp,
    pub as_of: Date,
    pub region: Option<RegionCode>,
    pub drawn: usize,
}

/// Every stored plan, newest first.
pub async fn list(store: &dyn Store) -> Result<Vec<PlanListItem>, StoreError> {
    let mut out: Vec<PlanListItem> = documents::all::<Plan>(store, PLANS)
        .await?
        .into_iter()
        .map(|(_, p)| PlanListItem {
            drawn: p.entries.len(),
            name: p.name,
            created_at: p.created_at,
            as_of: p.as_of,
            region: p.region,
        })
        .collect();
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// The outcome of one planned inspection: an `inspection` record of a
/// drawn merchant whose `plan` names the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanResult {
    pub merchant_id: MerchantId,
    pub record_id: String,
    pub date: Date,
    pub hazards: u32,
    pub rectified: bool,
}

/// The results that have arrived, in the plan's order (a merchant's
/// records by date).
pub async fn results(store: &dyn Store, plan: &Plan) -> Result<Vec<PlanResult>, StoreError> {
    use futures_util::{StreamExt, TryStreamExt};
    let per_merchant: Vec<Vec<PlanResult>> = futures_util::stream::iter(&plan.entries)
        .map(|e| async move {
            let records = store.records(&e.merchant_id).await?;
            let mut out: Vec<PlanResult> = records
                .into_iter()
                .filter_map(|r| match r.body {
                    RecordBody::Inspection {
                        hazards,
                        rectified,
                        plan: Some(p),
                        ..
                    } if p == plan.name => Some(PlanResult {
                        merchant_id: r.merchant,
                        record_id: r.id,
                        date: r.date,
                        hazards,
                        rectified,
                    }),
                    _ => None,
                })
                .collect();
            out.sort_by(|a, b| {
                a.date
                    .cmp(&b.date)
                    .then_with(|| a.record_id.cmp(&b.record_id))
            });
            Ok::<_, StoreError>(out)
        })
        .buffered(16)
        .try_collect()
        .await?;
    Ok(per_merchant.into_iter().flatten().collect())
}
