//! Statistics, not hope: over many seeds the draws follow the weights
//! (chi-square tests at α = 0.001 over fixed seeds, so they cannot flake),
//! and no draw ever breaks a constraint (property tests that check every
//! rule of `docs/PLAN.md` by reading it again, not through the draw's own
//! bookkeeping).

use std::collections::{BTreeSet, HashMap};

use jiff::civil::{date, Date};
use proptest::prelude::*;

use super::draw::{draw, Candidate, DrawError, DrawInput, NoTeam, PoolInspector, VERSION};
use super::weights::Weights;
use crate::model::{Grade, MerchantId, RegionCode};
use crate::roster::{covers, StaffId};

const AS_OF: Date = date(2026, 6, 1);

fn mid(s: &str) -> MerchantId {
    MerchantId::parse(s).unwrap()
}
fn sid(s: &str) -> StaffId {
    StaffId::parse(s).unwrap()
}
fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).unwrap()
}

fn candidate(id: &str, r: &str, grade: Grade, categories: &[&str], failed: &[Date]) -> Candidate {
    Candidate {
        id: mid(id),
        region: region(r),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        grade,
        assistant: None,
        failed_sampling: failed.to_vec(),
    }
}

fn inspector(id: &str, r: &str) -> PoolInspector {
    PoolInspector {
        id: sid(id),
        unit: format!("{id}所"),
        region: region(r),
    }
}

fn input(
    seed: String,
    size: u32,
    team: u32,
    merchants: Vec<Candidate>,
    inspectors: Vec<PoolInspector>,
) -> DrawInput {
    DrawInput {
        version: VERSION,
        seed,
        as_of: AS_OF,
        size,
        team_size: team,
        weights: Weights::default(),
        merchants,
        inspectors,
    }
}

/// Pearson's statistic of observed counts against expected ones.
fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum()
}

/// Six merchants weighted 4, 2, 1, 1, 4 and 8 (the last two doubled by a
/// failed test in their category 364 days ago; one exactly 365 days ago
/// doubles nothing).
fn six() -> Vec<Candidate> {
    vec![
        candidate("m1", "511425", Grade::Red, &["药店"], &[]),
        candidate(
            "m2",
            "511425",
            Grade::Yellow,
            &["超市"],
            &[date(2025, 6, 1)],
        ),
        candidate("m3", "511425", Grade::Green, &[], &[]),
        candidate("m4", "511425", Grade::Green, &["超市"], &[]),
        candidate("m5", "511425", Grade::Yellow, &["白酒"], &[]),
        candidate(
            "m6",
            "511425",
            Grade::Red,
            &["白酒", "餐饮"],
            &[date(2025, 6, 2)],
        ),
    ]
}

#[test]
fn first_picks_follow_the_weights() {
    // Weights 4, 2, 1, 1, 4, 8 (sum 20); 20,000 plans; df = 5, and the
    // critical value of chi-square at α = 0.001 is 20.515.
    let weights = [4.0, 2.0, 1.0, 1.0, 4.0, 8.0];
    let runs = 20_000u64;
    let mut counts = [0u64; 6];
    let order: Vec<MerchantId> = six().into_iter().map(|c| c.id).collect();
    for i in 0..runs {
        let d = draw(&input(format!("chi-{i}"), 1, 1, six(), vec![])).unwrap();
        assert_eq!(d.doubled_categories, vec!["白酒", "餐饮"]);
        let pos = order
            .iter()
            .position(|id| *id == d.entries[0].merchant_id)
            .unwrap();
        counts[pos] += 1;
    }
    let expected: Vec<f64> = weights.iter().map(|w| runs as f64 * w / 20.0).collect();
    let x2 = chi_square(&counts, &expected);
    assert!(
        x2 < 20.515,
        "chi-square {x2:.2} ≥ 20.515 (counts {counts:?})"
    );
}

#[test]
fn second_picks_follow_the_weights_of_what_is_left() {
    // Ordered pairs (first, second): P = w_i / W × w_j / (W − w_i);
    // 30 cells, df = 29, critical value at α = 0.001: 58.301.
    let w = [4.0, 2.0, 1.0, 1.0, 4.0, 8.0];
    let runs = 20_000u64;
    let order: Vec<MerchantId> = six().into_iter().map(|c| c.id).collect();
    let mut counts: HashMap<(usize, usize), u64> = HashMap::new();
    for i in 0..runs {
        let d = draw(&input(format!("pair-{i}"), 2, 1, six(), vec![])).unwrap();
        let at = |k: usize| {
            order
                .iter()
                .position(|id| *id == d.entries[k].merchant_id)
                .unwrap()
        };
        assert_ne!(at(0), at(1), "drawn twice");
        *counts.entry((at(0), at(1))).or_default() += 1;
    }
    let (mut observed, mut expected) = (Vec::new(), Vec::new());
    for i in 0..6 {
        for j in 0..6 {
            if i != j {
                observed.push(counts.get(&(i, j)).copied().unwrap_or(0));
                expected.push(runs as f64 * w[i] / 20.0 * w[j] / (20.0 - w[i]));
            }
        }
    }
    let x2 = chi_square(&observed, &expected);
    assert!(x2 < 58.301, "chi-square {x2:.2} ≥ 58.301");
}

#[test]
fn inspectors_are_drawn_uniformly_from_those_allowed() {
    // One merchant in 511425 whose assistant is also inspector `i2`;
    // inspectors i1..i6 cover it except i6 (another county): i2 is never
    // drawn, the other four equally often. df = 3, critical value 16.266.
    let mut m = candidate("m1", "511425", Grade::Red, &[], &[]);
    m.assistant = Some(sid("i2"));
    let pool = vec![
        inspector("i1", "511425"),
        inspector("i2", "511425"),
        inspector("i3", "511400"),
        inspector("i4", "510000"),
        inspector("i5", "511425"),
        inspector("i6", "511500"),
    ];
    let runs = 8_000u64;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for i in 0..runs {
        let d = draw(&input(
            format!("team-{i}"),
            1,
            1,
            vec![m.clone()],
            pool.clone(),
        ))
        .unwrap();
        let team = d.entries[0].team.as_ref().unwrap();
        *counts.entry(team[0].to_string()).or_default() += 1;
    }
    assert_eq!(counts.get("i2"), None, "the merchant's own assistant");
    assert_eq!(counts.get("i6"), None, "an inspector who does not cover it");
    let observed: Vec<u64> = ["i1", "i3", "i4", "i5"]
        .iter()
        .map(|k| counts[*k])
        .collect();
    let x2 = chi_square(&observed, &[runs as f64 / 4.0; 4]);
    assert!(x2 < 16.266, "chi-square {x2:.2} ≥ 16.266 ({observed:?})");
}

#[test]
fn bad_input_gives_an_error_or_an_explicit_no_team_never_a_panic() {
    let ok = || input("s".into(), 3, 2, six(), vec![inspector("i1", "511425")]);
    let mut zero = ok();
    zero.size = 0;
    assert_eq!(draw(&zero).unwrap_err(), DrawError::Size(0));
    let mut no_team = ok();
    no_team.team_size = 0;
    assert_eq!(draw(&no_team).unwrap_err(), DrawError::TeamSize(0));
    let mut weights = ok();
    weights.weights = Weights {
        red: 0,
        yellow: 0,
        green: 0,
    };
    assert_eq!(draw(&weights).unwrap_err(), DrawError::Weights);
    let mut only_green = ok();
    only_green.weights = Weights {
        red: 0,
        yellow: 0,
        green: 1000,
    };
    only_green.merchants.retain(|m| m.grade != Grade::Green);
    assert!(matches!(draw(&only_green), Err(DrawError::NoCandidates(_))));
    let mut empty = ok();
    empty.merchants.clear();
    assert!(matches!(draw(&empty), Err(DrawError::NoCandidates(_))));
    let mut twice = ok();
    twice.merchants.push(six().remove(0));
    assert_eq!(
        draw(&twice).unwrap_err(),
        DrawError::DuplicateMerchant("m1".into())
    );
    let mut version = ok();
    version.version = 2;
    assert_eq!(draw(&version).unwrap_err(), DrawError::Version(2));

    // One inspector for teams of two: every entry says why it has none.
    let d = draw(&ok()).unwrap();
    assert_eq!(d.entries.len(), 3);
    assert!(d
        .entries
        .iter()
        .all(|e| e.team.is_none() && e.no_team == Some(NoTeam::TooFewInspectors)));
    // Nobody covers: the pool is empty.
    let far = input("s".into(), 2, 1, six(), vec![inspector("i9", "440300")]);
    let d = draw(&far).unwrap();
    assert_eq!((d.pool, d.load_limit), (0, 0));
    assert!(d
        .entries
        .iter()
        .all(|e| e.no_team == Some(NoTeam::TooFewInspectors)));
    // More asked for than there are: every merchant with a weight, once.
    let d = draw(&input("s".into(), 100, 1, six(), vec![])).unwrap();
    assert_eq!(d.entries.len(), 6);
}

const REGIONS: [&str; 4] = ["511425", "511426", "511502", "440304"];
const INSPECTOR_REGIONS: [&str; 7] = [
    "511425", "511426", "511400", "511500", "510000", "440304", "000000",
];
const CATEGORIES: [&str; 4] = ["餐饮", "超市", "白酒", "药店"];
const GRADES: [Grade; 3] = [Grade::Green, Grade::Yellow, Grade::Red];

fn arbitrary_input() -> impl Strategy<Value = DrawInput> {
    let merchant = (
        prop::sample::select(&REGIONS[..]),
        prop::sample::select(&GRADES[..]),
        prop::collection::btree_set(prop::sample::select(&CATEGORIES[..]), 0..3),
        proptest::option::of(0usize..8),
        prop::collection::vec(-400i64..30, 0..2),
    );
    (
        prop::collection::vec(merchant, 0..40),
        prop::collection::vec(prop::sample::select(&INSPECTOR_REGIONS[..]), 0..10),
        1u32..30,
        1u32..4,
        (0u64..3000, 0u64..3000, 0u64..3000),
        any::<u32>(),
    )
        .prop_map(
            |(ms, is, size, team, (red, yellow, green), seed)| DrawInput {
                version: VERSION,
                seed: format!("prop-{seed}"),
                as_of: AS_OF,
                size,
                team_size: team,
                weights: Weights { red, yellow, green },
                merchants: ms
                    .into_iter()
                    .enumerate()
                    .map(|(i, (r, g, cats, assistant, failed))| Candidate {
                        id: mid(&format!("M{i:03}")),
                        region: region(r),
                        categories: cats.into_iter().map(str::to_owned).collect(),
                        grade: g,
                        // Assistants are often inspectors too: the rule bites.
                        assistant: assistant.map(|a| sid(&format!("P{a}"))),
                        failed_sampling: failed
                            .into_iter()
                            .map(|d| AS_OF.checked_add(jiff::Span::new().days(d)).unwrap())
                            .collect(),
                    })
                    .collect(),
                inspectors: is
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| PoolInspector {
                        id: sid(&format!("P{i}")),
                        unit: format!("第{}所", i % 3),
                        region: region(r),
                    })
                    .collect(),
            },
        )
}

/// Every rule of `docs/PLAN.md`, read again from the input.
fn check(input: &DrawInput) -> Result<(), TestCaseError> {
    let start = AS_OF.checked_sub(jiff::Span::new().days(365)).unwrap();
    let doubled: BTreeSet<&str> = input
        .merchants
        .iter()
        .filter(|m| m.failed_sampling.iter().any(|&d| d > start && d <= AS_OF))
        .flat_map(|m| m.categories.iter().map(String::as_str))
        .collect();
    let weight = |m: &Candidate| {
        input.weights.of(m.grade)
            * if m.categories.iter().any(|c| doubled.contains(c.as_str())) {
                2
            } else {
                1
            }
    };
    let positive = input.merchants.iter().filter(|m| weight(m) > 0).count();
    let d = match draw(input) {
        Err(DrawError::NoCandidates(_)) => {
            prop_assert_eq!(positive, 0);
            return Ok(());
        }
        Err(DrawError::Weights) => {
            prop_assert_eq!(
                input.weights,
                Weights {
                    red: 0,
                    yellow: 0,
                    green: 0
                }
            );
            return Ok(());
        }
        other => other.unwrap(),
    };
    prop_assert_eq!(d.entries.len(), positive.min(input.size as usize));
    prop_assert_eq!(
        d.doubled_categories
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        doubled.clone()
    );
    let by_id: HashMap<&MerchantId, &Candidate> =
        input.merchants.iter().map(|m| (&m.id, m)).collect();
    let mut seen = BTreeSet::new();
    let drawn: Vec<&Candidate> = d.entries.iter().map(|e| by_id[&e.merchant_id]).collect();
    let pool: Vec<&PoolInspector> = input
        .inspectors
        .iter()
        .filter(|p| drawn.iter().any(|m| covers(&p.region, &m.region)))
        .collect();
    prop_assert_eq!(d.pool as usize, pool.len());
    let k = input.team_size as usize;
    let limit = if pool.is_empty() {
        0
    } else {
        (k * drawn.len()).div_ceil(pool.len()) + 1
    };
    prop_assert_eq!(d.load_limit as usize, limit);
    let mut load: HashMap<&StaffId, usize> = HashMap::new();
    for (e, m) in d.entries.iter().zip(&drawn) {
        prop_assert!(seen.insert(&e.merchant_id), "drawn twice");
        prop_assert!(weight(m) > 0);
        prop_assert_eq!(e.weight, weight(m));
        let allowed: Vec<&&PoolInspector> = pool
            .iter()
            .filter(|p| covers(&p.region, &m.region) && m.assistant.as_ref() != Some(&p.id))
            .collect();
        match (&e.team, e.no_team) {
            (Some(team), None) => {
                prop_assert_eq!(team.len(), k);
                let distinct: BTreeSet<_> = team.iter().collect();
                prop_assert_eq!(distinct.len(), k, "an inspector twice in one team");
                for id in team {
                    prop_assert!(
                        allowed.iter().any(|p| p.id == *id),
                        "{} may not inspect {}",
                        id,
                        m.id
                    );
                    *load.entry(id).or_default() += 1;
                }
            }
            (None, Some(NoTeam::TooFewInspectors)) => prop_assert!(allowed.len() < k),
            (None, Some(NoTeam::LoadLimit)) => prop_assert!(allowed.len() >= k),
            other => prop_assert!(false, "team and reason disagree: {:?}", other),
        }
    }
    for (id, n) in load {
        prop_assert!(n <= limit, "{} drawn {} times, limit {}", id, n, limit);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn no_draw_breaks_a_rule(input in arbitrary_input()) {
        check(&input)?;
    }

    #[test]
    fn the_same_input_in_any_order_draws_the_same_plan(input in arbitrary_input(), rot in 0usize..40) {
        let first = draw(&input);
        let mut shuffled = input.clone();
        if !shuffled.merchants.is_empty() {
            let k = rot % shuffled.merchants.len();
            shuffled.merchants.rotate_left(k);
        }
        shuffled.inspectors.reverse();
        prop_assert_eq!(first, draw(&shuffled));
    }
}
