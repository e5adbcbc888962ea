//! What an identity client's scan answer costs to unpack: a scan page kept
//! as a cached view keeps it, as runs beside the wording every page shares
//! (`scan::packed::Runs`, `web::page_wording`), its own runs inflated as
//! one stream by `Runs::inflate_into`, the shared texts copied between
//! them; the same page kept as one piece deflated after the
//! shared head, inflated by `Piece::inflate_into` (flate2's zlib-rs
//! backend) and by miniz_oxide's raw inflate (the decoder before); beside a
//! copy of the plain page (what serving it plain would cost).
//!
//!   cargo bench --bench inflate -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use yisaozhi::scan::packed::{deflate, deflate_runs, Piece};

/// A demo merchant's scan page (`yisaozhi demo`, `/s/<token>`).
const PAGE: &[u8] = include_bytes!("fixtures/scan_page.html");

/// The head every scan page shares: up to its `<title>`.
fn split_page() -> (&'static [u8], &'static [u8]) {
    let title = PAGE
        .windows(7)
        .position(|w| w == b"<title>")
        .expect("a title")
        + 7;
    PAGE.split_at(title)
}

/// The piece's text after `head`, inflated by miniz_oxide.
fn miniz_inflate(d: &mut DecompressorOxide, piece: &Piece, head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + piece.len());
    out.extend_from_slice(head);
    out.resize(head.len() + piece.len(), 0);
    d.init();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
        | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
    let (status, _, written) = decompress(d, piece.deflated(), &mut out, head.len(), flags);
    assert!(matches!(
        status,
        TINFLStatus::NeedsMoreInput | TINFLStatus::Done | TINFLStatus::HasMoreOutput
    ));
    assert_eq!(written, piece.len());
    out
}

fn bench(c: &mut Criterion) {
    let (head, rest) = split_page();
    let piece = deflate(head, rest);
    let mut d = Box::<DecompressorOxide>::default();
    assert_eq!(miniz_inflate(&mut d, &piece, head), PAGE);
    let zlib_rs = || {
        let mut out = Vec::with_capacity(PAGE.len());
        out.extend_from_slice(head);
        piece.inflate_into(head.len(), &mut out).expect("inflates");
        out
    };
    assert_eq!(zlib_rs(), PAGE);
    let wording = yisaozhi::web::page_wording();
    let runs = deflate_runs(head, rest, wording);
    let runs_inflate = || {
        let mut out = Vec::with_capacity(PAGE.len());
        out.extend_from_slice(head);
        runs.inflate_into(wording, head.len(), &mut out)
            .expect("inflates");
        out
    };
    assert_eq!(runs_inflate(), PAGE);
    eprintln!(
        "kept: runs {} B ({} runs), one piece {} B",
        runs.heap_bytes(),
        runs.count(),
        piece.heap_bytes()
    );
    let mut g = c.benchmark_group("identity-inflate");
    g.bench_function(
        "page, runs beside the shared wording (Runs::inflate_into)",
        |b| b.iter(|| black_box(runs_inflate())),
    );
    g.bench_function("page, zlib-rs (Piece::inflate_into)", |b| {
        b.iter(|| black_box(zlib_rs()))
    });
    g.bench_function("page, miniz_oxide", |b| {
        b.iter(|| black_box(miniz_inflate(&mut d, &piece, head)))
    });
    g.bench_function("page, plain copy", |b| b.iter(|| black_box(PAGE.to_vec())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
