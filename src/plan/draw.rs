//! The draw of a plan as a pure function of its input (`docs/PLAN.md`):
//! the candidates and the roster in, the merchants and their teams out.
//! The input serialises to the JSON that `docs/PLAN.md` §1 describes, so
//! another program can draw the same plan from the same file.

use std::collections::{BTreeSet, HashSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::random::Stream;
use super::weights::Weights;
use crate::model::{Grade, MerchantId, RegionCode};
use crate::roster::{covers, StaffId};

/// The most merchants one plan draws.
pub const MAX_SIZE: u32 = 5000;
/// The most inspectors in one team.
pub const MAX_TEAM: u32 = 10;
/// The window of failed sampling tests that double a category's weight.
pub const FAILED_SAMPLING_DAYS: i64 = 365;
/// The version of the algorithm and of its input format.
pub const VERSION: u32 = 1;

/// A merchant that may be drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: MerchantId,
    pub region: RegionCode,
    pub categories: Vec<String>,
    /// The live grade on the plan's `as_of`.
    pub grade: Grade,
    /// Its assistant on the grid, if it has one.
    pub assistant: Option<StaffId>,
    /// The dates of its failed sampling tests (any date; the draw applies
    /// the window).
    pub failed_sampling: Vec<Date>,
}

/// An active inspector (role `inspector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInspector {
    pub id: StaffId,
    pub unit: String,
    pub region: RegionCode,
}

/// Everything a draw depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawInput {
    pub version: u32,
    pub seed: String,
    pub as_of: Date,
    pub size: u32,
    pub team_size: u32,
    /// In thousandths.
    pub weights: Weights,
    pub merchants: Vec<Candidate>,
    pub inspectors: Vec<PoolInspector>,
}

/// Why a drawn merchant has no team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoTeam {
    /// Fewer inspectors cover its region (its own assistant left out) than
    /// a team needs.
    TooFewInspectors,
    /// Enough cover it, but too few of them were below the load limit
    /// when its turn came.
    LoadLimit,
}

impl NoTeam {
    /// What the plan page says.
    pub fn text(self) -> &'static str {
        match self {
            NoTeam::TooFewInspectors => "无法组队：覆盖该地区的执法人员不足",
            NoTeam::LoadLimit => "无法组队：可抽取的执法人员已达抽取次数上限",
        }
    }
}

/// One drawn merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawnEntry {
    pub merchant_id: MerchantId,
    /// In thousandths.
    pub weight: u64,
    pub doubled: bool,
    /// Inspector ids in the order drawn; `None`: no team.
    pub team: Option<Vec<StaffId>>,
    pub no_team: Option<NoTeam>,
}

/// The outcome of a draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drawn {
    /// Categories with a failed sampling test in the window, ascending.
    pub doubled_categories: Vec<String>,
    /// Candidates with a weight above zero.
    pub candidates: u64,
    /// Sum of their weights, in thousandths.
    pub total_weight: u64,
    /// Inspectors who cover at least one drawn merchant.
    pub pool: u64,
    /// The most teams one inspector joins: ⌈team_size × drawn ÷ pool⌉ + 1.
    pub load_limit: u64,
    /// In the order drawn.
    pub entries: Vec<DrawnEntry>,
}

/// Why a plan cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error("size {0}: expected 1 to {MAX_SIZE} merchants")]
    Size(u32),
    #[error("inspectors per check {0}: expected 1 to {MAX_TEAM}")]
    TeamSize(u32),
    #[error("weights: at least one grade needs a weight above 0")]
    Weights,
    #[error("merchant `{0}` is listed twice")]
    DuplicateMerchant(String),
    #[error("inspector `{0}` is listed twice")]
    DuplicateInspector(String),
    #[error("no merchant to draw: {0}")]
    NoCandidates(&'static str),
    #[error("input version {0}: this program draws version {VERSION}")]
    Version(u32),
}

/// A Fenwick tree of weights: prefix sums and "the item where the running
/// sum passes `r`" in log time, so a draw of 5,000 from 10^6 is quick.
struct Fenwick(Vec<u64>);

impl Fenwick {
    fn new(weights: &[u64]) -> Fenwick {
        let mut t = vec![0u64; weights.len() + 1];
        for (i, &w) in weights.iter().enumerate() {
            let mut j = i + 1;
            while j < t.len() {
                t[j] += w;
                j += j & j.wrapping_neg();
            }
        }
        Fenwick(t)
    }

    fn sub(&mut self, i: usize, w: u64) {
        let mut j = i + 1;
        while j < self.0.len() {
            self.0[j] -= w;
            j += j & j.wrapping_neg();
        }
    }

    /// The smallest index whose running sum (itself included) exceeds `r`.
    fn find(&self, mut r: u64) -> usize {
        let n = self.0.len() - 1;
        let mut pos = 0;
        let mut step = n.checked_next_power_of_two().unwrap_or(1);
        while step > 0 {
            if pos + step <= n && self.0[pos + step] <= r {
                pos += step;
                r -= self.0[pos];
            }
            step /= 2;
        }
        pos
    }
}

/// The categories of candidates with a failed sampling test dated in
/// `(as_of − 365 days, as_of]`.
fn doubled_categories(merchants: &[&Candidate], as_of: Date) -> BTreeSet<String> {
    let start = as_of
        .checked_sub(jiff::Span::new().days(FAILED_SAMPLING_DAYS))
        .unwrap_or(Date::MIN);
    merchants
        .iter()
        .filter(|m| m.failed_sampling.iter().any(|&d| d > start && d <= as_of))
        .flat_map(|m| m.categories.iter().cloned())
        .collect()
}

/// Draws a plan (`docs/PLAN.md` §3–§5).
pub fn draw(input: &DrawInput) -> Result<Drawn, DrawError> {
    if input.version != VERSION {
        return Err(DrawError::Version(input.version));
    }
    if !(1..=MAX_SIZE).contains(&input.size) {
        return Err(DrawError::Size(input.size));
    }
    if !(1..=MAX_TEAM).contains(&input.team_size) {
        return Err(DrawError::TeamSize(input.team_size));
    }
    let w = &input.weights;
    if w.red == 0 && w.yellow == 0 && w.green == 0 {
        return Err(DrawError::Weights);
    }
    let mut merchants: Vec<&Candidate> = input.merchants.iter().collect();
    merchants.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = merchants.windows(2).find(|p| p[0].id == p[1].id) {
        return Err(DrawError::DuplicateMerchant(pair[0].id.to_string()));
    }
    let mut inspectors: Vec<&PoolInspector> = input.inspectors.iter().collect();
    inspectors.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = inspectors.windows(2).find(|p| p[0].id == p[1].id) {
        return Err(DrawError::DuplicateInspector(pair[0].id.to_string()));
    }
    if merchants.is_empty() {
        return Err(DrawError::NoCandidates("no graded merchant in the region"));
    }

    // Weights, in id order.
    let doubled = doubled_categories(&merchants, input.as_of);
    let is_doubled: Vec<bool> = merchants
        .iter()
        .map(|m| m.categories.iter().any(|c| doubled.contains(c)))
        .collect();
    let weights: Vec<u64> = merchants
        .iter()
        .zip(&is_doubled)
        .map(|(m, &d)| w.of(m.grade) * if d { 2 } else { 1 })
        .collect();
    let positive = weights.iter().filter(|&&x| x > 0).count();
    if positive == 0 {
        return Err(DrawError::NoCandidates(
            "every merchant in the region has a grade weighted 0",
        ));
    }
    let total: u64 = weights.iter().sum();

    // Merchants: sequential draws without replacement.
    let mut tree = Fenwick::new(&weights);
    let mut remaining = total;
    let mut stream = Stream::new(&input.seed, "merchants");
    let n = (input.size as usize).min(positive);
    let mut picked: Vec<usize> = Vec::with_capacity(n);
    for _ in 0..n {
        let r = stream.below(remaining);
        let i = tree.find(r);
        picked.push(i);
        tree.sub(i, weights[i]);
        remaining -= weights[i];
    }

    // Teams.
    let pool: Vec<&PoolInspector> = inspectors
        .iter()
        .copied()
        .filter(|p| {
            picked
                .iter()
                .any(|&i| covers(&p.region, &merchants[i].region))
        })
        .collect();
    let k = input.team_size as usize;
    let load_limit = if pool.is_empty() {
        0
    } else {
        (k * n).div_ceil(pool.len()) as u64 + 1
    };
    let mut load = vec![0u64; pool.len()];
    let mut stream = Stream::new(&input.seed, "teams");
    let mut entries = Vec::with_capacity(n);
    for &i in &picked {
        let m = merchants[i];
        let allowed =
            |p: &PoolInspector| covers(&p.region, &m.region) && m.assistant.as_ref() != Some(&p.id);
        let mut team: Vec<usize> = Vec::with_capacity(k);
        let mut in_team: HashSet<usize> = HashSet::new();
        for _ in 0..k {
            let eligible: Vec<usize> = (0..pool.len())
                .filter(|&j| allowed(pool[j]) && !in_team.contains(&j) && load[j] < load_limit)
                .collect();
            if eligible.is_empty() {
                break;
            }
            let j = eligible[stream.below(eligible.len() as u64) as usize];
            team.push(j);
            in_team.insert(j);
        }
        let (team, no_team) = if team.len() == k {
            for &j in &team {
                load[j] += 1;
            }
            (
                Some(team.iter().map(|&j| pool[j].id.clone()).collect()),
                None,
            )
        } else if pool.iter().filter(|p| allowed(p)).count() < k {
            (None, Some(NoTeam::TooFewInspectors))
        } else {
            (None, Some(NoTeam::LoadLimit))
        };
        entries.push(DrawnEntry {
            merchant_id: m.id.clone(),
            weight: weights[i],
            doubled: is_doubled[i],
            team,
            no_team,
        });
    }
    Ok(Drawn {
        doubled_categories: doubled.into_iter().collect(),
        candidates: positive as u64,
        total_weight: total,
        pool: pool.len() as u64,
        load_limit,
        entries,
    })
}
