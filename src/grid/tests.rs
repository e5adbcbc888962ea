//! The grid's rules and its stability, as property tests over small
//! random grids: the rules are checked by an independent reading of them
//! (covering by prefix, specificity by prefix length), not by the
//! algorithm's own bookkeeping.

use proptest::prelude::*;

use super::assign::{assign, Region, NONE};

/// Merchant regions, and assistant regions at several levels.
const MERCHANT_REGIONS: [&str; 6] = ["511425", "511426", "511502", "511504", "511524", "440304"];
const ASSISTANT_REGIONS: [&str; 8] = [
    "511425", "511426", "511400", "511500", "511504", "510000", "000000", "440304",
];
/// Regions where no assistant's area covers another's merchants.
const LEAF_REGIONS: [&str; 4] = ["511425", "511426", "511504", "440304"];

fn r(s: &str) -> Region {
    s.as_bytes().try_into().unwrap()
}

fn prefix(a: &Region) -> &[u8] {
    let len = a.iter().rposition(|&b| b != b'0').map_or(0, |i| i + 1);
    &a[..len]
}

fn covers(a: &Region, m: &Region) -> bool {
    m.starts_with(prefix(a))
}

/// The distinct assistant regions covering `m`, most specific first.
fn chain(assistants: &[Region], m: &Region) -> Vec<Region> {
    let mut codes: Vec<Region> = assistants
        .iter()
        .filter(|a| covers(a, m))
        .copied()
        .collect();
    codes.sort_by_key(|c| std::cmp::Reverse(prefix(c).len()));
    codes.dedup();
    codes
}

fn loads(assistants: &[Region], of: &[u32]) -> Vec<u32> {
    let mut load = vec![0u32; assistants.len()];
    for &a in of {
        if a != NONE {
            load[a as usize] += 1;
        }
    }
    load
}

fn group_full(assistants: &[Region], load: &[u32], code: &Region, cap: u32) -> bool {
    assistants
        .iter()
        .zip(load)
        .filter(|(a, _)| *a == code)
        .all(|(_, &l)| l == cap)
}

/// Coverage, specificity, completeness and balance (`crate::grid` docs).
fn check_rules(
    merchants: &[Region],
    assistants: &[Region],
    cap: u32,
    of: &[u32],
) -> Result<(), String> {
    let load = loads(assistants, of);
    for (a, &l) in load.iter().enumerate() {
        if l > cap {
            return Err(format!("assistant {a} has {l} > {cap}"));
        }
    }
    for (m, &a) in of.iter().enumerate() {
        let ch = chain(assistants, &merchants[m]);
        let rank = if a == NONE {
            ch.len()
        } else {
            let code = assistants[a as usize];
            if !covers(&code, &merchants[m]) {
                return Err(format!(
                    "merchant {m} with assistant {a}, who does not cover it"
                ));
            }
            ch.iter().position(|c| *c == code).unwrap()
        };
        for code in &ch[..rank] {
            if !group_full(assistants, &load, code, cap) {
                return Err(format!(
                    "merchant {m} (rank {rank}) while group {} has room",
                    String::from_utf8_lossy(code)
                ));
            }
        }
    }
    let mut codes: Vec<Region> = assistants.to_vec();
    codes.sort();
    codes.dedup();
    for code in codes {
        let ls: Vec<u32> = assistants
            .iter()
            .zip(&load)
            .filter(|(a, _)| **a == code)
            .map(|(_, &l)| l)
            .collect();
        let (lo, hi) = (ls.iter().min().unwrap(), ls.iter().max().unwrap());
        if hi - lo > 1 {
            return Err(format!(
                "group {} uneven: {ls:?}",
                String::from_utf8_lossy(&code)
            ));
        }
    }
    Ok(())
}

fn grid(
    regions: &'static [&'static str],
    max_m: usize,
    max_a: usize,
) -> impl Strategy<Value = (Vec<Region>, Vec<Region>, u32)> {
    (
        prop::collection::vec(prop::sample::select(&MERCHANT_REGIONS[..]), 0..max_m),
        prop::collection::vec(prop::sample::select(regions), 0..max_a),
        1u32..6,
    )
        .prop_map(|(m, a, cap)| {
            (
                m.into_iter().map(r).collect(),
                a.into_iter().map(r).collect(),
                cap,
            )
        })
}

fn leaf_grid() -> impl Strategy<Value = (Vec<Region>, Vec<Region>, u32)> {
    (
        prop::collection::vec(prop::sample::select(&LEAF_REGIONS[..]), 0..60),
        prop::collection::vec(prop::sample::select(&LEAF_REGIONS[..]), 1..10),
        1u32..8,
    )
        .prop_map(|(m, a, cap)| {
            (
                m.into_iter().map(r).collect(),
                a.into_iter().map(r).collect(),
                cap,
            )
        })
}

/// Merchants whose assistant changed from one assistant to another;
/// `same` maps an old assistant index to the new one (or `NONE`).
fn moved(before: &[u32], after: &[u32], same: impl Fn(u32) -> u32) -> Vec<usize> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (&b, &a))| b != NONE && a != NONE && same(b) != a)
        .map(|(i, _)| i)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_assignment_keeps_the_four_rules(
        (merchants, assistants, cap) in grid(&ASSISTANT_REGIONS, 80, 14),
        seed_prev in prop::collection::vec(0u32..20, 80),
    ) {
        // From nothing, and from an arbitrary (partly invalid) previous one.
        let fresh = assign(&merchants, &assistants, cap, &[]);
        prop_assert!(check_rules(&merchants, &assistants, cap, &fresh).is_ok(), "{:?}", check_rules(&merchants, &assistants, cap, &fresh));
        let prev: Vec<u32> = seed_prev.iter().take(merchants.len()).map(|&x| if x >= 16 { NONE } else { x }).collect();
        let from_prev = assign(&merchants, &assistants, cap, &prev);
        prop_assert!(check_rules(&merchants, &assistants, cap, &from_prev).is_ok(), "{:?}", check_rules(&merchants, &assistants, cap, &from_prev));
        // Running again on the same input moves no one.
        prop_assert_eq!(assign(&merchants, &assistants, cap, &from_prev), from_prev);
    }

    #[test]
    fn adding_a_merchant_moves_no_other_merchant(
        (merchants, assistants, cap) in grid(&ASSISTANT_REGIONS, 60, 12),
        at in any::<prop::sample::Index>(),
        region in prop::sample::select(&MERCHANT_REGIONS[..]),
    ) {
        let before = assign(&merchants, &assistants, cap, &[]);
        let pos = at.index(merchants.len() + 1);
        let mut grown = merchants.clone();
        grown.insert(pos, r(region));
        let mut prev = before.clone();
        prev.insert(pos, NONE);
        let after = assign(&grown, &assistants, cap, &prev);
        prop_assert!(check_rules(&grown, &assistants, cap, &after).is_ok());
        let mut others = after.clone();
        others.remove(pos);
        prop_assert_eq!(others, before);
    }

    #[test]
    fn removing_an_assistant_moves_only_its_merchants(
        (merchants, assistants, cap) in grid(&ASSISTANT_REGIONS, 60, 12),
        which in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!assistants.is_empty());
        let before = assign(&merchants, &assistants, cap, &[]);
        let j = which.index(assistants.len()) as u32;
        let mut fewer = assistants.clone();
        fewer.remove(j as usize);
        let renumber = |a: u32| if a == NONE || a == j { NONE } else if a > j { a - 1 } else { a };
        let prev: Vec<u32> = before.iter().map(|&a| renumber(a)).collect();
        let after = assign(&merchants, &fewer, cap, &prev);
        prop_assert!(check_rules(&merchants, &fewer, cap, &after).is_ok());
        for (m, (&b, &a)) in before.iter().zip(&after).enumerate() {
            if b != j {
                prop_assert_eq!(renumber(b), a, "merchant {} was not the removed assistant's", m);
            }
        }
    }

    #[test]
    fn in_a_one_level_grid_a_new_assistant_takes_exactly_what_balance_needs(
        (merchants, assistants, cap) in leaf_grid(),
        at in any::<prop::sample::Index>(),
        region in prop::sample::select(&LEAF_REGIONS[..]),
    ) {
        let before = assign(&merchants, &assistants, cap, &[]);
        let b = at.index(assistants.len() + 1) as u32;
        let mut more = assistants.clone();
        more.insert(b as usize, r(region));
        let renumber = |a: u32| if a != NONE && a >= b { a + 1 } else { a };
        let prev: Vec<u32> = before.iter().map(|&a| renumber(a)).collect();
        let after = assign(&merchants, &more, cap, &prev);
        prop_assert!(check_rules(&merchants, &more, cap, &after).is_ok());
        let moved = moved(&before, &after, renumber);
        prop_assert!(moved.iter().all(|&m| after[m] == b), "a merchant moved elsewhere than to the new assistant");
        let newly = before.iter().zip(&after).filter(|(&x, &y)| x == NONE && y == b).count() as u32;
        let group: Vec<usize> = (0..more.len()).filter(|&i| more[i] == r(region)).collect();
        let total: u32 = after.iter().filter(|&&a| a != NONE && group.contains(&(a as usize))).count() as u32;
        let needed = (total / group.len() as u32).saturating_sub(newly);
        prop_assert_eq!(moved.len() as u32, needed);
    }

    #[test]
    fn removing_a_merchant_moves_few_others(
        (merchants, assistants, cap) in grid(&ASSISTANT_REGIONS, 60, 12),
        (leaf_m, leaf_a, leaf_cap) in leaf_grid(),
        which in any::<prop::sample::Index>(),
    ) {
        for (merchants, assistants, cap, bound) in [
            (&merchants, &assistants, cap, None),
            (&leaf_m, &leaf_a, leaf_cap, Some(1usize)),
        ] {
            if merchants.is_empty() {
                continue;
            }
            let before = assign(merchants, assistants, cap, &[]);
            let k = which.index(merchants.len());
            let levels = chain(assistants, &merchants[k]).len().max(1);
            let mut fewer = merchants.clone();
            fewer.remove(k);
            let mut prev = before.clone();
            prev.remove(k);
            let after = assign(&fewer, assistants, cap, &prev);
            prop_assert!(check_rules(&fewer, assistants, cap, &after).is_ok());
            let moved = moved(&prev, &after, |a| a).len();
            prop_assert!(moved <= bound.unwrap_or(2 * levels), "{} moved, bound {:?} / {} levels", moved, bound, levels);
        }
    }
}

#[test]
fn township_staff_take_their_shops_first_and_county_staff_the_overflow() {
    // Two county assistants (511500) and one township assistant (511504),
    // three places each; five shops in 511504 and two in 511502.
    let assistants = [r("511500"), r("511500"), r("511504")];
    let merchants: Vec<Region> = ["511504"; 5]
        .iter()
        .chain(["511502"; 2].iter())
        .map(|s| r(s))
        .collect();
    let of = assign(&merchants, &assistants, 3, &[]);
    assert_eq!(&of[..3], &[2, 2, 2], "the township assistant first");
    let county: Vec<u32> = of[3..].to_vec();
    assert!(county.iter().all(|&a| a == 0 || a == 1));
    let load = loads(&assistants, &of);
    assert_eq!(load, vec![2, 2, 3]);
    check_rules(&merchants, &assistants, 3, &of).unwrap();

    // A second township assistant joins: overflow comes back to the
    // township, and nothing else moves.
    let more = [r("511500"), r("511500"), r("511504"), r("511504")];
    let again = assign(&merchants, &more, 3, &of);
    check_rules(&merchants, &more, 3, &again).unwrap();
    assert!(again[..5].iter().all(|&a| a == 2 || a == 3), "{again:?}");
    assert_eq!(
        &again[5..],
        &of[5..],
        "the 511502 shops stay with the county"
    );

    // Without any assistant, everyone is unassigned; with capacity 1, one each.
    assert!(assign(&merchants, &[], 3, &[]).iter().all(|&a| a == NONE));
    let one = assign(&merchants, &assistants, 1, &[]);
    assert_eq!(one.iter().filter(|&&a| a != NONE).count(), 3);
    check_rules(&merchants, &assistants, 1, &one).unwrap();
}

#[test]
fn lowering_the_capacity_lets_the_highest_ids_go_first() {
    let assistants = [r("511425")];
    let merchants = vec![r("511425"); 4];
    let all = assign(&merchants, &assistants, 4, &[]);
    assert_eq!(all, vec![0, 0, 0, 0]);
    let two = assign(&merchants, &assistants, 2, &all);
    assert_eq!(two, vec![0, 0, NONE, NONE]);
}
