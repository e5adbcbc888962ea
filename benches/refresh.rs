//! Per-item costs of the batch job: parsing an input line (JSONL and CSV),
//! the stored record's JSON round trip, its binary form (what a first bulk
//! import sorts for its regrade), grading one merchant, serializing its
//! projection.
//!
//! `cargo bench --bench refresh -- --warm-up-time 1 --measurement-time 3`
//!
//! The end-to-end figures (1,000,000 merchants, 10,000,000 records) are in
//! BENCHMARKS.md; this bench says where the time per record goes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use yisaozhi::grading::{self, Rules};
use yisaozhi::model::{self, Record};
use yisaozhi::records;

const MERCHANT: &str = r#"{"id":"M0005001","name":"市中区顺达餐馆0","kind":"shop","uscc":"91511102XP2UU84X6L","address":"柏溪西街256号","region":"511102","categories":["餐饮服务","粮油"],"contact_name":"孙静","contact_phone":"13735545840"}"#;

fn lines() -> Vec<String> {
    vec![
        r#"{"id":"JC0000310925","merchant":"M0005001","kind":"inspection","date":"2026-04-18","source":"专项整治","hazards":0,"rectified":true}"#.into(),
        r#"{"id":"JC0001282122","merchant":"M0005001","kind":"inspection","date":"2025-08-13","source":"双随机抽查","hazards":2,"deadline":"2025-08-30","rectified":true,"rectified_on":"2025-08-20"}"#.into(),
        r#"{"id":"CY0003539032","merchant":"M0005001","kind":"sampling","date":"2025-10-15","source":"日常监督检查","product":"鲜猪肉","standard":"GB 2707-2016","passed":true}"#.into(),
        r#"{"id":"CY0009637391","merchant":"M0005001","kind":"sampling","date":"2026-02-26","source":"双随机抽查","product":"散装白酒","standard":"GB 2757-2012","passed":false,"failed_items":["甲醇"]}"#.into(),
        r#"{"id":"TS0001731112","merchant":"M0005001","kind":"complaint","date":"2025-01-06","source":"12315平台","substantiated":true,"summary":"缺斤短两"}"#.into(),
        r#"{"id":"CF0000823885","merchant":"M0005001","kind":"penalty","date":"2025-11-03","source":"专项整治","decision_no":"市中市监处罚〔2025〕23885号","severity":"general","fine_cny":5300,"publicity_until":"2026-11-03"}"#.into(),
        r#"{"id":"ML0007301639","merchant":"M0005001","kind":"list","date":"2024-07-16","source":"国家企业信用信息公示系统","list":"abnormal","action":"add","reason":"未按期公示年度报告"}"#.into(),
        r#"{"id":"ZC0006648199","merchant":"M0005001","kind":"self_report","date":"2025-11-04","source":"商户自主填报","report_type":"self_check","summary":"自查未发现问题"}"#.into(),
        r#"{"id":"ZC0006913452","merchant":"M0005001","kind":"self_report","date":"2024-12-31","source":"商户自主填报","report_type":"invoice"}"#.into(),
        r#"{"id":"CN0006401282","merchant":"M0005001","kind":"commitment","date":"2026-01-31","source":"商户自主填报","summary":"食品安全承诺书"}"#.into(),
    ]
}

fn per_record(c: &mut Criterion) {
    let lines = lines();
    let records: Vec<Record> = lines
        .iter()
        .map(|l| records::parse_record(l).unwrap())
        .collect();
    let stored: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse input line (JSONL)", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(records::parse_record(black_box(l)).unwrap());
            }
        })
    });
    g.bench_function("serialize for the store", |b| {
        b.iter(|| {
            for r in &records {
                black_box(serde_json::to_string(black_box(r)).unwrap());
            }
        })
    });
    g.bench_function("parse from the store", |b| {
        b.iter(|| {
            for s in &stored {
                black_box(serde_json::from_str::<Record>(black_box(s)).unwrap());
            }
        })
    });
    // The form a first bulk import sorts records in for its regrade.
    let mut binary = Vec::new();
    let ends: Vec<usize> = records
        .iter()
        .map(|r| {
            model::encode_record(r, &mut binary);
            binary.len()
        })
        .collect();
    g.bench_function("encode binary (bulk import's sort)", |b| {
        let mut out = Vec::with_capacity(binary.len());
        b.iter(|| {
            out.clear();
            for r in &records {
                model::encode_record(black_box(r), &mut out);
            }
            black_box(&out);
        })
    });
    g.bench_function("decode binary (regrade after a bulk import)", |b| {
        b.iter(|| {
            let mut start = 0;
            for (r, &end) in records.iter().zip(&ends) {
                let bytes = &binary[start..end];
                black_box(model::decode_record(&r.merchant, black_box(bytes)).unwrap());
                start = end;
            }
        })
    });
    g.finish();
}

fn per_merchant(c: &mut Criterion) {
    let merchant = records::parse_merchant(MERCHANT).unwrap();
    let records: Vec<Record> = lines()
        .iter()
        .map(|l| records::parse_record(l).unwrap())
        .collect();
    let rules = Rules::default();
    let as_of = "2026-06-01".parse().unwrap();
    let now = jiff::Timestamp::UNIX_EPOCH;
    let p = grading::project(&merchant, &records, None, &rules, as_of, now);
    let mut g = c.benchmark_group("merchant (10 records)");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse merchant line", |b| {
        b.iter(|| black_box(records::parse_merchant(black_box(MERCHANT)).unwrap()))
    });
    g.bench_function("grade", |b| {
        b.iter(|| black_box(grading::grade(&rules, black_box(&records), as_of)))
    });
    g.bench_function("project", |b| {
        b.iter(|| {
            black_box(grading::project(
                &merchant,
                black_box(&records),
                None,
                &rules,
                as_of,
                now,
            ))
        })
    });
    g.bench_function("serialize projection", |b| {
        b.iter(|| black_box(serde_json::to_string(black_box(&p)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, per_record, per_merchant);
criterion_main!(benches);
