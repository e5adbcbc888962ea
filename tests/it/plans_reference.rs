//! Re-drawing plans with a second, independent implementation:
//! `tests/plan_reference.py`, written from `docs/PLAN.md` alone, must draw
//! exactly what the service draws, on random inputs and on a plan drawn
//! from a real store through the command line.

use std::io::Write;
use std::process::{Command, Stdio};

use jiff::civil::date;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use yisaozhi::model::{Grade, MerchantId, RegionCode};
use yisaozhi::plan::{
    draw, milli_json, Candidate, DrawError, DrawInput, PoolInspector, Stream, Weights, VERSION,
};
use yisaozhi::roster::StaffId;

use crate::helpers::spawn_app;
use crate::plans::cli;

fn reference(input: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plan_reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The test's deterministic choices (any fixed sequence would do; the
/// plan's own stream is at hand).
struct Mix(Stream<'static>);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const REGIONS: [&str; 5] = ["511425", "511426", "511502", "511504", "440304"];
const AREAS: [&str; 8] = [
    "511425", "511426", "511400", "511500", "511504", "510000", "000000", "440300",
];
const CATEGORIES: [&str; 5] = ["餐饮", "超市", "白酒", "药店", "Food"];
const GRADES: [Grade; 3] = [Grade::Green, Grade::Yellow, Grade::Red];

fn random_input(mix: &mut Mix, case: u64) -> DrawInput {
    let as_of = date(2026, 6, 1);
    let merchants = (0..mix.below(60))
        .map(|i| Candidate {
            id: MerchantId::parse(&format!("M{:04}", mix.below(10_000) * 100 + i)).unwrap(),
            region: RegionCode::parse(mix.pick::<&str>(&REGIONS)).unwrap(),
            categories: (0..mix.below(3))
                .map(|_| mix.pick(&CATEGORIES).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            grade: *mix.pick(&GRADES),
            assistant: (mix.below(3) > 0)
                .then(|| StaffId::parse(&format!("P{}", mix.below(12))).unwrap()),
            failed_sampling: (0..mix.below(3))
                .map(|_| {
                    as_of
                        .checked_sub(jiff::Span::new().days(mix.below(420) as i64 - 20))
                        .unwrap()
                })
                .collect(),
        })
        .collect();
    let inspectors = (0..mix.below(14))
        .map(|i| PoolInspector {
            id: StaffId::parse(&format!("P{i}")).unwrap(),
            unit: format!("第{}所", i % 4),
            region: RegionCode::parse(mix.pick::<&str>(&AREAS)).unwrap(),
        })
        .collect();
    DrawInput {
        version: VERSION,
        seed: format!("参考-{case}-{}", mix.next()),
        as_of,
        size: 1 + mix.below(40) as u32,
        team_size: 1 + mix.below(4) as u32,
        weights: Weights {
            red: mix.below(5000),
            yellow: mix.below(3000),
            green: if mix.below(4) == 0 {
                0
            } else {
                mix.below(2000)
            },
        },
        merchants,
        inspectors,
    }
}

fn error_kind(e: &DrawError) -> &'static str {
    match e {
        DrawError::Size(_) => "size",
        DrawError::TeamSize(_) => "team_size",
        DrawError::Weights => "weights",
        DrawError::DuplicateMerchant(_) => "duplicate_merchant",
        DrawError::DuplicateInspector(_) => "duplicate_inspector",
        DrawError::NoCandidates(_) => "no_candidates",
        DrawError::Version(_) => "version",
    }
}

#[test]
fn the_reference_implementation_draws_the_same_plans_as_the_service() {
    let mut mix = Mix(Stream::new("reference inputs", "test"));
    let inputs: Vec<DrawInput> = (0..300).map(|case| random_input(&mut mix, case)).collect();
    let expected: Vec<Value> = inputs
        .iter()
        .map(|input| match draw(input) {
            Ok(drawn) => serde_json::to_value(drawn).unwrap(),
            Err(e) => json!({"error": error_kind(&e)}),
        })
        .collect();
    let got = reference(&serde_json::to_value(&inputs).unwrap());
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    let mut drawn = 0;
    for (i, (want, got)) in expected.iter().zip(got).enumerate() {
        assert_eq!(
            want,
            got,
            "case {i}: input {}",
            serde_json::to_string(&inputs[i]).unwrap()
        );
        if want.get("entries").is_some() {
            drawn += 1;
        }
    }
    // Most cases draw; some refuse (no candidates, weights of 0).
    assert!(drawn >= 200, "only {drawn} of 300 cases drew a plan");
}

#[tokio::test]
async fn a_plan_drawn_from_the_store_is_re_drawn_from_its_published_input() {
    let app = spawn_app().await;
    let dir = app.dir.path();
    let out = cli(
        dir,
        &[
            "plan",
            "--name",
            "redraw",
            "--seed",
            "2026年第23周 福彩3D 517",
            "--size",
            "12",
            "--inspectors-per-check",
            "3",
            "--inputs-out",
            "redraw-input.json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join("redraw-input.json")).unwrap();
    let input: Value = serde_json::from_slice(&bytes).unwrap();
    let (status, admin) = app
        .admin(
            reqwest::Method::GET,
            "/api/v1/admin/plans/redraw",
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let plan = &admin["plan"];
    // The published digest is the digest of the input file.
    let digest = data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes));
    assert_eq!(plan["input_sha256"], digest);
    let (_, public) = app.get("/api/v1/plans/redraw").await;
    assert_eq!(public["input_sha256"], digest);

    let again = reference(&input);
    let entries = plan["entries"].as_array().unwrap();
    let redrawn = again["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 12);
    assert_eq!(redrawn.len(), 12);
    for (e, r) in entries.iter().zip(redrawn) {
        assert_eq!(e["merchant_id"], r["merchant_id"]);
        // The admin answer shows weights as decimals; the draw counts thousandths.
        assert_eq!(e["weight"], milli_json(r["weight"].as_u64().unwrap()));
        assert_eq!(e["doubled"], r["doubled"]);
        let team: Option<Vec<&Value>> = e["team"]
            .as_array()
            .map(|t| t.iter().map(|m| &m["id"]).collect());
        let want: Option<Vec<&Value>> = r["team"].as_array().map(|t| t.iter().collect());
        assert_eq!(team, want);
        assert_eq!(e["no_team"], r["no_team"]);
    }
    assert_eq!(plan["load_limit"], again["load_limit"]);
    assert_eq!(plan["doubled_categories"], again["doubled_categories"]);
}
