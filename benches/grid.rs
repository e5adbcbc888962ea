//! The grid assignment at county-to-province scale: 10^6 merchants and
//! 30,000 assistants (29,000 in 2,900 counties, 1,000 at city level), 30
//! places each, from nothing and again from the previous assignment, with
//! nothing changed and after 1 % more merchants and 1 % fewer assistants.
//! The baseline, measured in the same run, is sorting the 10^6 merchant ids.
//!
//! `cargo bench --bench grid` (prints CSV rows for benches/results/grid.csv:
//! case, median ms of 3 rounds, baseline ms, ratio, and what moved).

use std::hint::black_box;
use std::time::Instant;

use yisaozhi::grid::{assign, Region, NONE};
use yisaozhi::plan::Stream;

const MERCHANTS: usize = 1_000_000;
const COUNTIES: usize = 2_900;
const PER_COUNTY: usize = 10;
const CITY_ASSISTANTS: usize = 1_000;
const CAPACITY: u32 = 30;
const ROUNDS: usize = 3;

/// County `i` as a region code: 58 cities of 50 counties, 20 cities a
/// province.
fn county(i: usize) -> Region {
    let city = i / 50;
    let code = format!("{:02}{:02}{:02}", 11 + city / 20, 1 + city % 20, 1 + i % 50);
    code.as_bytes().try_into().unwrap()
}

fn city(c: &Region) -> Region {
    let mut r = *c;
    r[4] = b'0';
    r[5] = b'0';
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<T>(f: impl FnMut() -> T) -> (f64, T) {
    let mut f = f;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = black_box(f());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(out);
    }
    (median(times), last.unwrap())
}

fn main() {
    // A fixed stream, so every run measures the same grid.
    let mut mix = Stream::new("grid bench", "regions");
    let counties: Vec<Region> = (0..COUNTIES).map(county).collect();
    let merchant_ids: Vec<String> = (0..MERCHANTS).map(|i| format!("M{i:07}")).collect();
    let merchants: Vec<Region> = (0..MERCHANTS)
        .map(|_| counties[mix.below(COUNTIES as u64) as usize])
        .collect();
    let mut assistants: Vec<Region> = counties
        .iter()
        .flat_map(|c| std::iter::repeat_n(*c, PER_COUNTY))
        .collect();
    assistants
        .extend((0..CITY_ASSISTANTS).map(|i| city(&counties[i * COUNTIES / CITY_ASSISTANTS])));
    assert_eq!(assistants.len(), 30_000);

    let (baseline, _) = time(|| {
        let mut ids = merchant_ids.clone();
        ids.sort_unstable();
        ids
    });
    let (fresh, first) = time(|| assign(&merchants, &assistants, CAPACITY, &[]));
    let (again, second) = time(|| assign(&merchants, &assistants, CAPACITY, &first));
    let moved = |a: &[u32], b: &[u32]| {
        a.iter()
            .zip(b)
            .filter(|(x, y)| **x != NONE && **y != NONE && x != y)
            .count()
    };
    assert_eq!(moved(&first, &second), 0);

    // 1 % more merchants (appended: new ids sort last), 1 % fewer assistants
    // (every 100th), the previous assignment renumbered.
    let mut grown = merchants.clone();
    grown.extend((0..MERCHANTS / 100).map(|_| counties[mix.below(COUNTIES as u64) as usize]));
    let keep: Vec<usize> = (0..assistants.len()).filter(|i| i % 100 != 7).collect();
    let fewer: Vec<Region> = keep.iter().map(|&i| assistants[i]).collect();
    let mut new_index = vec![NONE; assistants.len()];
    for (n, &i) in keep.iter().enumerate() {
        new_index[i] = n as u32;
    }
    let mut prev: Vec<u32> = first
        .iter()
        .map(|&a| {
            if a == NONE {
                NONE
            } else {
                new_index[a as usize]
            }
        })
        .collect();
    prev.resize(grown.len(), NONE);
    let (changed, third) = time(|| assign(&grown, &fewer, CAPACITY, &prev));
    let moved_changed = moved(&prev, &third);
    // The merchants of the assistants who left, placed again.
    let orphaned = first
        .iter()
        .zip(&prev)
        .filter(|(a, p)| **a != NONE && **p == NONE)
        .count();
    let unassigned = |v: &[u32]| v.iter().filter(|&&a| a == NONE).count();

    println!("case,median_ms,baseline_ms,ratio,notes");
    println!("sort 10^6 merchant ids (baseline),{baseline:.0},{baseline:.0},1.00,");
    println!(
        "assign 10^6 merchants / 30000 assistants from nothing,{fresh:.0},{baseline:.0},{:.2},{} unassigned",
        fresh / baseline,
        unassigned(&first)
    );
    println!(
        "assign again from the previous assignment (no change),{again:.0},{baseline:.0},{:.2},0 moved",
        again / baseline
    );
    println!(
        "assign after +1 % merchants and -1 % assistants,{changed:.0},{baseline:.0},{:.2},{moved_changed} moved besides the {orphaned} merchants of the assistants who left; {} unassigned",
        changed / baseline,
        unassigned(&third)
    );
    assert!(fresh < 10_000.0, "over 10 s: {fresh:.0} ms");
}
