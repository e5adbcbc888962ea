//! `inspectors`, `grid` and `plan`: the roster, the grid assignment and
//! random inspection plans (CONTRACT §7), over `crate::roster`,
//! `crate::grid` and `crate::plan`.

use anyhow::Context;

use crate::clock;
use crate::model::RegionCode;
use crate::plan::{milli_text, PlanError, PlanRequest, Weights};

use super::args::{parse_date, GridAction, InspectorsAction, PlanArgs};

/// `inspectors import|list`.
pub(super) async fn inspectors(action: InspectorsAction) -> anyhow::Result<()> {
    match action {
        InspectorsAction::Import { common, file } => {
            let store = common.settings()?.open_store().await?;
            let (members, rejects) = crate::roster::read_roster_file(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display().to_string();
            let report = crate::roster::import_members(
                store.as_ref(),
                &name,
                members,
                rejects,
                &|_| true,
                "cli",
            )
            .await?;
            for r in &report.rejects {
                eprintln!("{r}");
            }
            println!(
                "imported {}, unchanged {}, rejected {}",
                report.imported, report.unchanged, report.rejected
            );
            if report.imported + report.unchanged == 0 && report.rejected > 0 {
                anyhow::bail!("nothing imported: every line of {name} was rejected");
            }
            Ok(())
        }
        InspectorsAction::List { common } => {
            let store = common.settings()?.open_store().await?;
            println!(
                "{:<10} {:<16} {:<8} {:<7} unit",
                "role", "id", "region", "active"
            );
            for m in crate::roster::load(store.as_ref()).await? {
                println!(
                    "{:<10} {:<16} {:<8} {:<7} {}",
                    m.role.name(),
                    m.id,
                    m.region,
                    if m.active { "yes" } else { "no" },
                    m.unit
                );
            }
            Ok(())
        }
    }
}

/// `grid assign`.
pub(super) async fn grid(action: GridAction) -> anyhow::Result<()> {
    match action {
        GridAction::Assign {
            common,
            per_assistant,
        } => {
            let store = common.settings()?.open_store().await?;
            let report =
                crate::grid::assign_and_store(store.as_ref(), per_assistant, "cli").await?;
            let r = &report.run;
            println!(
                "merchants {}, assistants {}, assigned {}, unassigned {} (at most {} each)",
                r.merchants, r.assistants, r.assigned, r.unassigned, r.per_assistant
            );
            println!(
                "kept {}, moved {}, newly assigned {}, no longer assigned {}; {} documents written",
                r.kept, r.moved, r.newly_assigned, r.dropped, report.documents_written
            );
            Ok(())
        }
    }
}

/// `plan`: draws, stores and prints a plan.
pub(super) async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let region = args
        .region
        .as_deref()
        .map(|r| RegionCode::parse(r).map_err(|e| anyhow::anyhow!("--region: {e}")))
        .transpose()?;
    let weights = Weights::parse(&args.weights).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let as_of = match &args.as_of {
        Some(raw) => parse_date(raw, "--as-of")?,
        None => clock::today(),
    };
    let req = PlanRequest {
        name: args.name,
        seed: args.seed,
        size: args.size,
        region,
        weights,
        team_size: args.inspectors_per_check,
        as_of,
    };
    req.check().map_err(|e| anyhow::anyhow!(flag_error(e)))?;
    let store = args.common.settings()?.open_store().await?;
    let (plan, input) = crate::plan::create(store.as_ref(), &req, "cli")
        .await
        .map_err(|e| anyhow::anyhow!(flag_error(e)))?;
    if let Some(path) = &args.inputs_out {
        let json = serde_json::to_vec(&input).context("draw input")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "plan {}: seed `{}`, weights {}, {} of {} candidates drawn, as of {}",
        plan.name,
        plan.seed,
        plan.weights.to_text(),
        plan.entries.len(),
        plan.candidates,
        plan.as_of
    );
    if !plan.doubled_categories.is_empty() {
        println!(
            "doubled (failed sampling): {}",
            plan.doubled_categories.join(", ")
        );
    }
    for e in &plan.entries {
        let team = match &e.team {
            Some(team) => team
                .iter()
                .map(|m| format!("{} ({})", m.id, m.unit))
                .collect::<Vec<_>>()
                .join(", "),
            None => format!("no team: {}", e.no_team.map_or("", |n| n.text())),
        };
        println!(
            "{:>4} {:<20} {:<6} w={:<6} {}",
            e.order,
            e.merchant_id,
            e.grade,
            milli_text(e.weight),
            team
        );
    }
    println!("input sha256 {}", plan.input_sha256);
    Ok(())
}

/// A plan error in the words of the command line's flags.
fn flag_error(e: PlanError) -> String {
    match e {
        PlanError::Draw(crate::plan::DrawError::Size(n)) => {
            format!("--size {n}: expected 1 to {}", crate::plan::MAX_SIZE)
        }
        PlanError::Draw(crate::plan::DrawError::TeamSize(n)) => {
            format!(
                "--inspectors-per-check {n}: expected 1 to {}",
                crate::plan::MAX_TEAM
            )
        }
        PlanError::Draw(crate::plan::DrawError::Weights) => {
            "--weights: at least one grade needs a weight above 0".into()
        }
        other => other.to_string(),
    }
}
