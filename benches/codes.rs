//! Benchmarks of the code pipeline (issue: ≥ 2,000 complete codes/s per core).
//!
//! `cargo bench --bench codes -- --warm-up-time 1 --measurement-time 3`
//!
//! Every bench has a throughput of one element, so criterion reports codes
//! per second next to the time per code.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use yisaozhi_codes::{sign, url, verify, Claims, Day, Grade, KeyId, Qr, SigningKey, Token};

const BASE: &str = "https://ysz.example.gov.cn";

fn claims(serial: u32) -> Claims {
    Claims {
        kid: KeyId(1),
        merchant: "SH000001".into(),
        serial,
        issued: Day::from_ymd(2026, 3, 1).unwrap(),
        expires: Day::from_ymd(2027, 2, 28).unwrap(),
        grade: Grade::Yellow,
    }
}

fn codes(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = key.public_key();
    let today = Day::from_ymd(2026, 6, 1).unwrap();
    let claims = claims(123_456);
    let token = sign(&claims, &key).unwrap();
    let link = url(BASE, &token);
    let qr = Qr::encode(&link).unwrap();
    eprintln!(
        "code under test: {} chars of URL, QR version {} ({} modules) at level Q",
        link.len(),
        qr.version(),
        qr.width()
    );

    let mut g = c.benchmark_group("codes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter(|| sign(black_box(&claims), &key).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            verify(
                black_box(&link),
                |kid| (kid == KeyId(1)).then_some(public),
                today,
            )
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| Token::parse(black_box(token.as_str())).unwrap())
    });
    g.bench_function("qr_encode", |b| {
        b.iter(|| Qr::encode(black_box(&link)).unwrap())
    });
    g.bench_function("svg", |b| {
        b.iter(|| yisaozhi_codes::svg(black_box(&qr), Grade::Yellow, Some("SH000001")))
    });
    g.bench_function("png_8px", |b| {
        b.iter(|| yisaozhi::render::png(black_box(&qr), Grade::Yellow, 8))
    });
    let mut serial = 0u32;
    g.bench_function("complete_code", |b| {
        b.iter(|| {
            serial = serial.wrapping_add(1);
            let token = sign(&self::claims(serial), &key).unwrap();
            let link = url(BASE, &token);
            let qr = Qr::encode(&link).unwrap();
            yisaozhi_codes::svg(&qr, Grade::Yellow, Some("SH000001"))
        })
    });
    g.finish();
}

criterion_group!(benches, codes);
criterion_main!(benches);
