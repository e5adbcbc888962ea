//! The scan-robustness benchmark's harness (`benches/scan_robustness/`),
//! checked cheaply so it cannot rot: every grade's printed code, photographed
//! sharp and level, reads back to its exact URL with rqrr, rxing and zbarimg;
//! the baseline differs from the printed symbol in its mask only; the photo
//! of a trial is a function of its seed; the readers tell a misread from
//! nothing read; the interval arithmetic matches a reference computation.
//!
//! zbarimg (`apt-get install zbar-tools`) is required: a missing tool fails
//! the test, never skips it.

#[allow(dead_code)]
#[path = "../benches/scan_robustness/photo.rs"]
mod photo;
#[allow(dead_code)]
#[path = "../benches/scan_robustness/printed.rs"]
mod printed;
#[allow(dead_code)]
#[path = "../benches/scan_robustness/readers.rs"]
mod readers;
#[allow(dead_code)]
#[path = "../benches/scan_robustness/stats.rs"]
mod stats;

use std::path::PathBuf;

use photo::{photograph, Rng, Shot};
use printed::{hex_rgb, FRAME_BAND, INK, PAPER};
use readers::Read;
use stats::{wilson, Paired};
use yisaozhi_codes::{sign, url, Claims, Day, Grade, KeyId, Qr, SigningKey};

fn link(grade: Grade, merchant: &str) -> String {
    let claims = Claims {
        kid: KeyId(1),
        merchant: merchant.to_owned(),
        serial: 4_000_000_001,
        issued: Day::from_ymd(2026, 3, 1).unwrap(),
        expires: Day::from_ymd(2027, 2, 28).unwrap(),
        grade,
    };
    url(
        "https://ysz.example.gov.cn",
        &sign(&claims, &SigningKey::from_bytes(&[0x5A; 32])).unwrap(),
    )
}

/// A fresh directory for zbarimg's input files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ysz-scan-harness-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_grade_as_printed_reads_back_with_every_reader_when_the_photo_is_clean() {
    let dir = scratch("clean");
    for (grade, merchant) in [
        (Grade::Green, "M0000001"),
        (Grade::Yellow, "SC511521-004711"),
        (Grade::Red, "M9999999"),
    ] {
        let url = link(grade, merchant);
        let qr = Qr::encode(&url).unwrap();
        let auto = printed::reference_symbol(&url, None);
        let stickers = [
            ("printed", printed::printed(&qr, grade)),
            ("baseline", printed::lay_out_symbol(&auto, None)),
        ];
        for (what, sticker) in &stickers {
            let photo = photograph(sticker, &Shot::clean(3.0));
            assert_eq!(
                readers::rqrr(&photo, &url),
                Read::Url,
                "rqrr, {grade} {what}"
            );
            assert_eq!(
                readers::rxing(&photo, &url),
                Read::Url,
                "rxing, {grade} {what}"
            );
            let zbar = readers::zbar(&dir, &[(format!("{grade}-{what}"), &photo, &url)])
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(zbar, [Read::Url], "zbar, {grade} {what}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_printed_sticker_has_the_png_colours_and_the_crates_layout() {
    for grade in Grade::ALL {
        let url = link(grade, "M0000042");
        let qr = Qr::encode(&url).unwrap();
        let sticker = printed::printed(&qr, grade);
        // The crate's raster, laid out again from the symbol alone.
        assert_eq!(
            sticker,
            printed::lay_out(qr.width(), |x, y| qr.is_dark(x, y), Some(grade))
        );
        assert_eq!(sticker.side, qr.width() + 12);
        assert_eq!(sticker.cell(0, 0), FRAME_BAND);
        assert_eq!(sticker.cell(2, 2), PAPER);
        assert_eq!(sticker.cell(6, 6), INK, "finder pattern corner");
        assert_eq!(
            sticker.colours[usize::from(FRAME_BAND)],
            hex_rgb(grade.colour())
        );
        assert_eq!(
            sticker.colours[usize::from(INK)],
            hex_rgb(grade.dark_colour())
        );
        assert_eq!(sticker.colours[usize::from(PAPER)], [255, 255, 255]);
    }
}

#[test]
fn the_baseline_differs_from_the_printed_symbol_in_its_mask_only() {
    let mut masks = std::collections::BTreeSet::new();
    let mut rng = Rng::for_trial(1, 1);
    for i in 0..40 {
        let url = link(
            Grade::ALL[i % 3],
            &format!("M{:07}", rng.next_u64() % 10_000_000),
        );
        let qr = Qr::encode(&url).unwrap();
        assert!(printed::same_modules(
            &printed::reference_symbol(&url, Some(2)),
            &qr
        ));
        let auto = printed::reference_symbol(&url, None);
        assert_eq!(i16::from(auto.version().value()), qr.version());
        assert_eq!(
            auto.error_correction_level(),
            qrcodegen::QrCodeEcc::Quartile
        );
        assert_eq!(printed::same_modules(&auto, &qr), auto.mask().value() == 2);
        masks.insert(auto.mask().value());
        let baseline = printed::lay_out_symbol(&auto, None);
        assert_eq!(baseline.cell(0, 0), printed::BACKGROUND, "no frame band");
        assert_eq!(baseline.cell(2, 2), PAPER, "4-module quiet zone");
        assert_eq!(baseline.colours[usize::from(INK)], [0, 0, 0]);
    }
    assert!(
        masks.len() > 1,
        "the penalty rule picks various masks: {masks:?}"
    );
}

#[test]
fn a_trial_is_reproducible_from_its_seed_and_degrades_the_photo() {
    let url = link(Grade::Yellow, "M0000007");
    let sticker = printed::printed(&Qr::encode(&url).unwrap(), Grade::Yellow);
    let shot = Shot::draw(&mut Rng::for_trial(7, 3));
    assert_eq!(shot, Shot::draw(&mut Rng::for_trial(7, 3)));
    assert_ne!(shot, Shot::draw(&mut Rng::for_trial(7, 4)));
    assert_eq!(photograph(&sticker, &shot), photograph(&sticker, &shot));
    assert!((1.5..3.0).contains(&shot.px_per_module));

    // A shot no phone could read: 1.5 px per module blurred by 2 px.
    let mut hopeless = Shot::clean(1.5);
    hopeless.blur_px = 2.0;
    let photo = photograph(&sticker, &hopeless);
    assert_eq!(readers::rqrr(&photo, &url), Read::Nothing);
    assert_eq!(readers::rxing(&photo, &url), Read::Nothing);
}

#[test]
fn readers_tell_a_misread_from_nothing_read() {
    let dir = scratch("misread");
    let url = link(Grade::Red, "M0000099");
    let other = link(Grade::Red, "M0000100");
    let photo = photograph(
        &printed::printed(&Qr::encode(&other).unwrap(), Grade::Red),
        &Shot::clean(3.0),
    );
    let expect_other = Read::Other(other.clone());
    assert_eq!(readers::rqrr(&photo, &url), expect_other);
    assert_eq!(readers::rxing(&photo, &url), expect_other);
    let blank = photo::Photo {
        width: 90,
        height: 90,
        rgb: vec![200; 90 * 90 * 3],
    };
    assert_eq!(readers::rqrr(&blank, &url), Read::Nothing);
    assert_eq!(readers::rxing(&blank, &url), Read::Nothing);
    let zbar = readers::zbar(
        &dir,
        &[
            ("other".into(), &photo, &url),
            ("blank".into(), &blank, &url),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(zbar, [expect_other, Read::Nothing]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zbar_xml_is_parsed_per_file() {
    let xml = "<barcodes xmlns='http://zbar.sourceforge.net/2008/barcode'>\n\
        <source href='/t/a.ppm'>\n<index num='0'>\n\
        <symbol type='QR-Code' quality='1' orientation='UP'><data><![CDATA[HTTPS://A/S/12]]></data></symbol>\n\
        </index>\n</source>\n<source href='/t/b.ppm'>\n</source>\n</barcodes>\n";
    let found = readers::parse_zbar_xml(xml).unwrap();
    assert_eq!(found[&PathBuf::from("/t/a.ppm")], ["HTTPS://A/S/12"]);
    assert!(found[&PathBuf::from("/t/b.ppm")].is_empty());
    assert!(readers::parse_zbar_xml("<source href='/t/c.ppm").is_err());
}

#[test]
fn wilson_interval_matches_a_reference_computation() {
    // 81 of 263 (Newcombe's 1998 single-proportion example), evaluated
    // independently in Python: 0.2553–0.3662.
    let (lo, hi) = wilson(81, 263);
    assert!((lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4);
    assert_eq!(wilson(0, 10).0, 0.0);
}

#[test]
fn paired_interval_matches_a_reference_computation() {
    // a=8 both, b=5 only the first, c=4 only the second, d=0 (n=17):
    // the same formula evaluated independently (Python, from the R
    // function `confIntPairedProportion` of biostatUZH).
    let p = Paired {
        n: 17,
        only_a: 5,
        only_b: 4,
    };
    let (lo, hi) = p.diff_interval(8);
    assert!((p.diff() - 0.0588).abs() < 1e-4);
    assert!((lo + 0.2725).abs() < 1e-4, "{lo}");
    assert!((hi - 0.3743).abs() < 1e-4, "{hi}");
    assert!((p.mcnemar_p() - 1.0).abs() < 1e-9);
}

#[test]
fn paired_interval_brackets_the_difference_and_excludes_zero_when_lopsided() {
    let even = Paired {
        n: 1000,
        only_a: 0,
        only_b: 0,
    };
    let (lo, hi) = even.diff_interval(700);
    assert!(lo < 0.0 && hi > 0.0 && hi - lo < 0.01, "{lo} {hi}");
    let worse = Paired {
        n: 1000,
        only_a: 10,
        only_b: 60,
    };
    let (lo, hi) = worse.diff_interval(600);
    assert!(
        lo < worse.diff() && worse.diff() < hi && hi < 0.0,
        "{lo} {hi}"
    );
    assert!(worse.mcnemar_p() < 1e-6);
}
