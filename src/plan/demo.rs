//! The demo's grid and plan: a small roster of the demo county (叙州区,
//! `511504`), written to `inspectors.jsonl` beside the other sample files
//! (editable; a re-run imports edits), the grid assigned, and a plan named
//! `demo` drawn once, so that `yisaozhi demo` shows patrol lists and a
//! published plan at `/plans/demo`.

use std::path::Path;

use anyhow::Context;
use jiff::civil::Date;
use serde_json::json;

use super::stored::{create, get, PlanRequest};
use super::weights::Weights;
use crate::model::RegionCode;
use crate::store::Store;

/// The demo plan's name.
pub const DEMO_PLAN: &str = "demo";

/// (id, name, unit, region, role); `XZ-J02` is both an inspector and an
/// assistant, so the plan's "never its own assistant" rule has work to do.
const ROSTER: &[(&str, &str, &str, &str, &str)] = &[
    ("XZ-A01", "刘协管", "柏溪镇网格站", "511504", "assistant"),
    ("XZ-A02", "陈协管", "南岸街道网格站", "511504", "assistant"),
    (
        "XZ-J02",
        "王执法",
        "叙州区市场监管局柏溪所",
        "511504",
        "assistant",
    ),
    (
        "XZ-J01",
        "李执法",
        "叙州区市场监管局柏溪所",
        "511504",
        "inspector",
    ),
    (
        "XZ-J02",
        "王执法",
        "叙州区市场监管局柏溪所",
        "511504",
        "inspector",
    ),
    (
        "XZ-J03",
        "张执法",
        "叙州区市场监管局南岸所",
        "511504",
        "inspector",
    ),
    (
        "XZ-J04",
        "赵执法",
        "叙州区市场监管局南岸所",
        "511504",
        "inspector",
    ),
    (
        "XZ-J05",
        "周执法",
        "叙州区市场监管综合执法大队",
        "511504",
        "inspector",
    ),
    (
        "YB-J01",
        "孙执法",
        "宜宾市市场监管局稽查支队",
        "511500",
        "inspector",
    ),
];

/// Writes the sample roster if it is missing, imports it, assigns the grid
/// (30 per assistant) and draws the demo plan if there is none yet.
pub async fn prepare_demo(store: &dyn Store, dir: &Path, today: Date) -> anyhow::Result<()> {
    let file = dir.join("inspectors.jsonl");
    if !file.exists() {
        let text: String = ROSTER
            .iter()
            .map(|(id, name, unit, region, role)| {
                format!(
                    "{}\n",
                    json!({"id": id, "name": name, "unit": unit, "region": region, "role": role})
                )
            })
            .collect();
        crate::files::create_file(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    let (members, rejects) = crate::roster::read_roster_file(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    crate::roster::import_members(store, &name, members, rejects, &|_| true, "demo").await?;
    crate::grid::assign_and_store(store, 30, "demo").await?;
    if get(store, DEMO_PLAN).await?.is_none() {
        let req = PlanRequest {
            name: DEMO_PLAN.into(),
            seed: format!("demo-{today}"),
            size: 8,
            region: Some(RegionCode::parse("511504").expect("a region code")),
            weights: Weights::default(),
            team_size: 2,
            as_of: today,
        };
        create(store, &req, "demo").await?;
    }
    Ok(())
}
