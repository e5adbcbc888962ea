//! `yisaozhi gen`: synthetic merchants and records for benchmarks and tests,
//! in the input formats of CONTRACT §3.
//!
//! Realistic on purpose: about 10 % of merchants are itinerant vendors (most
//! without a credit code); every shop has a valid GB 32100-2015 credit code;
//! all seven record kinds appear; dates fall in the `days` before `as_of`.
//! Each merchant has a hidden risk profile (clean, risky, bad) that shapes
//! its records, so most merchants grade green with a tail of yellow and red
//! (with the default rules and 10 records per merchant: roughly 85 / 11 / 4 %).
//!
//! Deterministic: the same options give byte-identical files. Merchants are
//! drawn from a generator seeded by (seed, merchant number) and records from
//! one seeded by (seed, chunk number) with a fixed chunk size, so the output
//! does not depend on the number of threads. Chunks are generated in parallel
//! (rayon) and written in order through a `BufWriter`; memory stays bounded
//! by a few chunks whatever the sizes.
//!
//! Here: `generate`; the options and the summary in `options`, the state
//! both halves share (`Ctx`, `Rng`) in `common`; the halves in `merchants`
//! and `records`, their words in `vocabulary`.

use anyhow::Context;

mod common;
mod merchants;
mod options;
mod records;
mod vocabulary;

pub use options::{GenFormat, GenOptions, GenSummary};

use common::Ctx;
use merchants::write_merchants;
use records::write_records;

/// Writes the data set into `opts.out`.
pub fn generate(opts: &GenOptions) -> anyhow::Result<GenSummary> {
    anyhow::ensure!(opts.merchants > 0, "--merchants must be at least 1");
    anyhow::ensure!(opts.days > 0, "--days must be at least 1");
    if let Some(t) = opts.touch {
        anyhow::ensure!(
            (1..=opts.merchants).contains(&t),
            "--touch must be between 1 and --merchants"
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    crate::refresh::name_rayon_threads();
    let ctx = Ctx::new(opts)?;
    let mut summary = GenSummary::default();
    if opts.write_merchants {
        write_merchants(&ctx, opts, &mut summary)?;
    }
    write_records(&ctx, opts, &mut summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use jiff::civil::Date;
    use jiff::ToSpan;

    use super::common::Rng;
    use super::merchants::{id_number, merchant};
    use super::*;
    use crate::model::CreditCode;
    use crate::records::{parse_merchant, parse_record};

    fn opts(dir: &Path, format: GenFormat) -> GenOptions {
        GenOptions {
            merchants: 500,
            records: 5000,
            seed: 7,
            out: dir.to_owned(),
            as_of: "2026-06-01".parse().unwrap(),
            days: 730,
            format,
            first_record: 0,
            touch: None,
            write_merchants: true,
            progress: false,
        }
    }

    #[test]
    fn output_is_valid_deterministic_and_covers_every_kind() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let s = generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&opts(b.path(), GenFormat::Jsonl)).unwrap();
        for f in ["merchants.jsonl", "records.jsonl"] {
            let x = std::fs::read(a.path().join(f)).unwrap();
            assert_eq!(x, std::fs::read(b.path().join(f)).unwrap(), "{f} differs");
        }
        let merchants = std::fs::read_to_string(a.path().join("merchants.jsonl")).unwrap();
        let mut vendors = 0;
        for line in merchants.lines() {
            let m = parse_merchant(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            vendors += usize::from(m.kind == crate::model::MerchantKind::Vendor);
            if m.kind == crate::model::MerchantKind::Shop {
                assert!(m.uscc.is_some(), "{line}");
            }
        }
        assert_eq!(merchants.lines().count(), 500);
        assert!((25..=80).contains(&vendors), "{vendors} vendors");
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let as_of: Date = "2026-06-01".parse().unwrap();
        for line in records.lines() {
            let r = parse_record(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(r.date <= as_of && r.date > as_of.checked_sub(730.days()).unwrap());
        }
        assert_eq!(s.records, 5000);
        assert!(s.by_kind.iter().all(|&n| n > 0), "{:?}", s.by_kind);
    }

    #[test]
    fn another_seed_gives_other_data() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&GenOptions {
            seed: 8,
            ..opts(b.path(), GenFormat::Jsonl)
        })
        .unwrap();
        let x = std::fs::read(a.path().join("records.jsonl")).unwrap();
        assert_ne!(x, std::fs::read(b.path().join("records.jsonl")).unwrap());
    }

    #[test]
    fn csv_has_one_file_per_kind_with_the_same_records() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        let s = generate(&opts(b.path(), GenFormat::Csv)).unwrap();
        assert_eq!(s.files.len(), 8);
        let jsonl = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut rows = 0;
        // The kinds it generates: every kind but the shop's `repair` and `reply`.
        for kind in &crate::model::RECORD_KINDS[..s.files.len() - 1] {
            let csv = std::fs::read_to_string(b.path().join(format!("{kind}.csv"))).unwrap();
            rows += csv.lines().count() - 1;
        }
        assert_eq!(rows, jsonl.lines().count());
    }

    #[test]
    fn touch_limits_the_merchants_and_first_record_shifts_ids() {
        let a = tempfile::tempdir().unwrap();
        generate(&GenOptions {
            touch: Some(5),
            first_record: 1_000_000,
            write_merchants: false,
            ..opts(a.path(), GenFormat::Jsonl)
        })
        .unwrap();
        assert!(!a.path().join("merchants.jsonl").exists());
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut merchants = std::collections::BTreeSet::new();
        for line in records.lines() {
            let r = parse_record(line).unwrap();
            assert!(r.id[2..].parse::<u64>().unwrap() > 1_000_000, "{}", r.id);
            merchants.insert(r.merchant);
        }
        assert_eq!(merchants.len(), 5, "{merchants:?}");
    }

    #[test]
    fn generated_id_numbers_and_credit_codes_check() {
        let mut r = Rng::new(1, 1, 1);
        let id = id_number(&mut r, "511504");
        assert_eq!(id.len(), 18);
        for n in 0..200 {
            let ctx = Ctx::new(&opts(Path::new("."), GenFormat::Jsonl)).unwrap();
            if let Some(u) = merchant(&ctx, n).uscc {
                CreditCode::parse(&u).unwrap();
            }
        }
    }
}
