//! Generated records of all seven kinds, their merchant and findings drawn
//! by the merchant's risk profile, as JSONL or one CSV file per kind.

use std::io::Write;

use anyhow::Context;
use rayon::prelude::*;

use crate::progress::{Progress, Unit};

use super::common::{create, csv_row, json_str, Ctx, Risk, Rng};
use super::options::{GenFormat, GenOptions, GenSummary};
use super::vocabulary::{
    COMMITMENTS, COMPLAINTS, FAILED_ITEMS, LIST_REASONS, PRODUCTS, REGIONS, SELF_REPORTS, SOURCES,
};

/// Records per generator chunk (fixed: part of the output's determinism).
const CHUNK: u64 = 1 << 15;

/// Record kinds in [`crate::model::RECORD_KINDS`] order.
const INSPECTION: usize = 0;
const SAMPLING: usize = 1;
const PENALTY: usize = 2;
const COMPLAINT: usize = 3;
const LIST: usize = 4;
const SELF_REPORT: usize = 5;
const COMMITMENT: usize = 6;
const ID_PREFIX: [&str; 7] = ["JC", "CY", "CF", "TS", "ML", "ZC", "CN"];

/// Kind weights (per mille-ish) by risk.
const KIND_WEIGHTS: [[u32; 7]; 3] = [
    // inspection, sampling, penalty, complaint, list, self_report, commitment
    [330, 200, 3, 70, 3, 300, 94],
    [300, 220, 40, 150, 30, 200, 60],
    [280, 220, 120, 160, 80, 100, 40],
];

/// CSV header of each kind's file.
const CSV_HEADERS: [&str; 7] = [
    "id,merchant,kind,date,source,hazards,deadline,rectified,rectified_on\n",
    "id,merchant,kind,date,source,product,standard,passed,failed_items\n",
    "id,merchant,kind,date,source,decision_no,severity,fine_cny,publicity_until\n",
    "id,merchant,kind,date,source,substantiated,summary\n",
    "id,merchant,kind,date,source,list,action,reason\n",
    "id,merchant,kind,date,source,report_type,summary\n",
    "id,merchant,kind,date,source,summary\n",
];

/// Output buffers of one chunk: one for JSONL, seven (one per kind) for CSV.
struct RecordBufs {
    bufs: Vec<Vec<u8>>,
    by_kind: [u64; 7],
}

/// Writes the records file (JSONL) or files (CSV, one per kind).
pub(super) fn write_records(
    ctx: &Ctx,
    opts: &GenOptions,
    summary: &mut GenSummary,
) -> anyhow::Result<()> {
    let mut outs = Vec::new();
    match opts.format {
        GenFormat::Jsonl => {
            let path = opts.out.join("records.jsonl");
            outs.push(create(&path)?);
            summary.files.push(path);
        }
        GenFormat::Csv => {
            for (kind, header) in crate::model::RECORD_KINDS.iter().zip(CSV_HEADERS) {
                let path = opts.out.join(format!("{kind}.csv"));
                let mut out = create(&path)?;
                out.write_all(header.as_bytes())?;
                outs.push(out);
                summary.files.push(path);
            }
        }
    }
    let progress = Progress::new("records", opts.records, Unit::Items, opts.progress);
    let chunks = opts.records.div_ceil(CHUNK);
    let window = (rayon::current_num_threads() * 2) as u64;
    let mut c = 0;
    while c < chunks {
        let end = (c + window).min(chunks);
        let parts: Vec<RecordBufs> = (c..end)
            .into_par_iter()
            .map(|chunk| record_chunk(ctx, opts, chunk))
            .collect();
        for part in parts {
            for (out, buf) in outs.iter_mut().zip(&part.bufs) {
                out.write_all(buf)?;
            }
            for (total, n) in summary.by_kind.iter_mut().zip(part.by_kind) {
                *total += n;
            }
        }
        progress.set((end * CHUNK).min(opts.records));
        c = end;
    }
    for out in &mut outs {
        out.flush().context("cannot write the records")?;
    }
    progress.finish();
    summary.records = opts.records;
    Ok(())
}

fn record_chunk(ctx: &Ctx, opts: &GenOptions, chunk: u64) -> RecordBufs {
    let lo = chunk * CHUNK;
    let hi = (lo + CHUNK).min(opts.records);
    let nbufs = if opts.format == GenFormat::Jsonl {
        1
    } else {
        7
    };
    let mut out = RecordBufs {
        bufs: (0..nbufs)
            .map(|_| Vec::with_capacity(((hi - lo) * 200) as usize / nbufs))
            .collect(),
        by_kind: [0; 7],
    };
    let mut r = Rng::new(ctx.seed, 4, chunk);
    let mut rec = GenRecord::default();
    for n in lo..hi {
        gen_record(ctx, &mut r, ctx.first_record + n, &mut rec);
        out.by_kind[rec.kind] += 1;
        match opts.format {
            GenFormat::Jsonl => rec.json(ctx, &mut out.bufs[0]),
            GenFormat::Csv => rec.csv(ctx, &mut out.bufs[rec.kind]),
        }
    }
    out
}

/// One generated record: common fields and the kind's fields as text
/// (empty = absent), reused across records to avoid allocation.
#[derive(Default)]
struct GenRecord {
    kind: usize,
    id: String,
    merchant: String,
    date: i64,
    source: &'static str,
    /// Kind-specific fields in CSV header order: (name, value, is JSON literal).
    fields: Vec<(&'static str, String, bool)>,
}

impl GenRecord {
    fn set(&mut self, name: &'static str, value: impl std::fmt::Display, literal: bool) {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = write!(s, "{value}");
        self.fields.push((name, s, literal));
    }

    fn json(&self, ctx: &Ctx, b: &mut Vec<u8>) {
        b.extend_from_slice(b"{\"id\":");
        json_str(b, &self.id);
        b.extend_from_slice(b",\"merchant\":");
        json_str(b, &self.merchant);
        b.extend_from_slice(b",\"kind\":");
        json_str(b, crate::model::RECORD_KINDS[self.kind]);
        b.extend_from_slice(b",\"date\":");
        json_str(b, ctx.date(self.date));
        b.extend_from_slice(b",\"source\":");
        json_str(b, self.source);
        for (name, value, literal) in &self.fields {
            if value.is_empty() {
                continue;
            }
            b.extend_from_slice(b",\"");
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(b"\":");
            if *literal {
                b.extend_from_slice(value.as_bytes());
            } else if *name == "failed_items" {
                b.push(b'[');
                for (i, item) in value.split(';').enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    json_str(b, item);
                }
                b.push(b']');
            } else {
                json_str(b, value);
            }
        }
        b.extend_from_slice(b"}\n");
    }

    fn csv(&self, ctx: &Ctx, b: &mut Vec<u8>) {
        let mut fields: Vec<&str> = Vec::with_capacity(5 + self.fields.len());
        fields.extend([
            self.id.as_str(),
            self.merchant.as_str(),
            crate::model::RECORD_KINDS[self.kind],
            ctx.date(self.date),
            self.source,
        ]);
        fields.extend(self.fields.iter().map(|(_, v, _)| v.as_str()));
        csv_row(b, &fields);
    }
}

fn gen_record(ctx: &Ctx, r: &mut Rng, number: u64, rec: &mut GenRecord) {
    use std::fmt::Write as _;
    // Merchant: uniform over everyone (or the touched subset); vendors are
    // visited half as often as shops.
    let pick = |r: &mut Rng| match ctx.touch {
        Some(t) => r.below(t) * (ctx.merchants / t),
        None => r.below(ctx.merchants),
    };
    let mut m = pick(r);
    if ctx.is_vendor(m) && r.chance(500) {
        m = pick(r);
    }
    let risk = ctx.risk(m);
    let vendor = ctx.is_vendor(m);
    let weights = &KIND_WEIGHTS[match risk {
        Risk::Clean => 0,
        Risk::Risky => 1,
        Risk::Bad => 2,
    }];
    let kind = r.weighted(weights);
    rec.kind = kind;
    rec.id.clear();
    let _ = write!(rec.id, "{}{:010}", ID_PREFIX[kind], number + 1);
    rec.merchant.clear();
    ctx.merchant_id(m, &mut rec.merchant);
    let date = -(r.below(u64::from(ctx.days)) as i64);
    rec.date = date;
    rec.fields.clear();
    let by_risk = |clean: u64, risky: u64, bad: u64| match risk {
        Risk::Clean => clean,
        Risk::Risky => risky,
        Risk::Bad => bad,
    };
    match kind {
        INSPECTION => {
            rec.source = *r.pick(&SOURCES[..3]);
            let hazards = if r.chance(by_risk(40, 250, 450)) {
                r.range(1, 4)
            } else {
                0
            };
            rec.set("hazards", hazards, true);
            if hazards > 0 {
                let deadline = date + r.range(7, 30) as i64;
                rec.set("deadline", ctx.date(deadline), false);
                let rectified = r.chance(by_risk(970, 850, 650));
                rec.set("rectified", rectified, true);
                if rectified {
                    let on = (date + r.range(1, (deadline - date) as u64) as i64).min(0);
                    rec.set("rectified_on", ctx.date(on), false);
                } else {
                    rec.set("rectified_on", "", false);
                }
            } else {
                rec.set("deadline", "", false);
                rec.set("rectified", true, true);
                rec.set("rectified_on", "", false);
            }
        }
        SAMPLING => {
            rec.source = *r.pick(&SOURCES[..3]);
            let (product, standard) = *r.pick(&PRODUCTS);
            rec.set("product", product, false);
            rec.set("standard", if r.chance(900) { standard } else { "" }, false);
            let passed = !r.chance(by_risk(15, 120, 300));
            rec.set("passed", passed, true);
            if passed {
                rec.set("failed_items", "", false);
            } else if r.chance(300) {
                let a = *r.pick(&FAILED_ITEMS);
                let mut b = *r.pick(&FAILED_ITEMS);
                if b == a {
                    b = FAILED_ITEMS[(FAILED_ITEMS.iter().position(|x| *x == a).unwrap_or(0) + 1)
                        % FAILED_ITEMS.len()];
                }
                rec.set("failed_items", format_args!("{a};{b}"), false);
            } else {
                rec.set("failed_items", r.pick(&FAILED_ITEMS), false);
            }
        }
        PENALTY => {
            rec.source = *r.pick(&SOURCES[..3]);
            let severity = r.weighted(&[by_risk(70, 50, 30) as u32, 28, by_risk(2, 12, 35) as u32]);
            let (sev, fine, publicity) = match severity {
                0 => ("minor", r.range(2, 30) * 100, 90),
                1 => ("general", r.range(20, 99) * 100, 365),
                _ => ("severe", r.range(10, 200) * 1000, 1095),
            };
            let county = &REGIONS[(m % REGIONS.len() as u64) as usize].1[..3];
            rec.set(
                "decision_no",
                format_args!(
                    "{county}市监处罚〔{}〕{}号",
                    &ctx.date(date)[..4],
                    number % 100_000
                ),
                false,
            );
            rec.set("severity", sev, false);
            rec.set("fine_cny", fine, true);
            let until = if severity == 0 && r.chance(300) {
                String::new()
            } else {
                ctx.date(date + publicity).to_owned()
            };
            rec.set("publicity_until", until, false);
        }
        COMPLAINT => {
            rec.source = "12315平台";
            rec.set("substantiated", r.chance(by_risk(150, 450, 600)), true);
            rec.set(
                "summary",
                if r.chance(800) {
                    *r.pick(&COMPLAINTS)
                } else {
                    ""
                },
                false,
            );
        }
        LIST => {
            rec.source = "国家企业信用信息公示系统";
            let serious = r.chance(by_risk(20, 60, 250));
            rec.set("list", if serious { "serious" } else { "abnormal" }, false);
            rec.set(
                "action",
                if r.chance(600) { "add" } else { "remove" },
                false,
            );
            let reason = if serious {
                *r.pick(&LIST_REASONS[2..])
            } else {
                *r.pick(&LIST_REASONS[..2])
            };
            rec.set("reason", reason, false);
        }
        SELF_REPORT => {
            rec.source = "商户自主填报";
            let t = *r.pick(&["invoice", "incoming_check", "self_check"]);
            rec.set("report_type", t, false);
            rec.set(
                "summary",
                if r.chance(700) {
                    *r.pick(&SELF_REPORTS)
                } else {
                    ""
                },
                false,
            );
        }
        _ => {
            debug_assert_eq!(kind, COMMITMENT);
            rec.source = if vendor {
                "游商登记"
            } else {
                "商户自主填报"
            };
            rec.set("summary", r.pick(&COMMITMENTS), false);
        }
    }
}
