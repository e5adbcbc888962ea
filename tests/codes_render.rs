//! Rendered codes read back by real QR decoders, to the exact URL.
//!
//! Two independent decoders: the `rqrr` crate (lenient) and ZBar's
//! `zbarimg` (what many phone and desk scanners are built on, stricter about
//! the quiet zone). The SVG is rasterised with librsvg's `rsvg-convert`, as
//! a print shop or browser would. Both tools are required: a missing tool is
//! a failure, never a skip.
//!
//! Needs: `apt-get install zbar-tools librsvg2-bin`.

use std::path::{Path, PathBuf};
use std::process::Command;

use yisaozhi::render;
use yisaozhi_codes::{sign, url, Claims, Day, Grade, KeyId, Qr, SigningKey, Token};

const INSTALL: &str = "apt-get install zbar-tools librsvg2-bin";
const BIN: &str = env!("CARGO_BIN_EXE_yisaozhi");

/// Checks that `tool` runs; fails the test with the install hint otherwise.
fn require(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => {}
        Err(e) => panic!("`{tool}` is required by this test and cannot be run ({e}): {INSTALL}"),
    }
}

/// `zbarimg --raw -q FILE`: the one symbol's text.
fn zbar(file: &Path) -> String {
    require("zbarimg");
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running zbarimg: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "zbarimg found no code in {} (exit {:?}): {}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("zbarimg prints UTF-8");
    let text = text.strip_suffix('\n').unwrap_or(&text);
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one symbol expected: {text:?}"
    );
    text.to_owned()
}

/// Decodes an image file's bytes (PNG) with rqrr: the one symbol's text.
fn rqrr_decode(png: &[u8]) -> String {
    let img = image::load_from_memory(png)
        .expect("a decodable PNG")
        .to_luma8();
    let (w, h) = img.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            img.get_pixel(x as u32, y as u32).0[0]
        });
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "rqrr: one symbol expected, found {}",
        grids.len()
    );
    let (_, content) = grids[0].decode().expect("rqrr decodes the symbol");
    content
}

/// `rsvg-convert` SVG → PNG at the SVG's own size (8 px per module).
fn rasterise(svg: &str, dir: &Path, name: &str) -> PathBuf {
    require("rsvg-convert");
    let svg_path = dir.join(format!("{name}.svg"));
    let png_path = dir.join(format!("{name}.svg.png"));
    std::fs::write(&svg_path, svg).unwrap();
    let out = Command::new("rsvg-convert")
        .arg("--output")
        .arg(&png_path)
        .arg(&svg_path)
        .output()
        .unwrap_or_else(|e| panic!("running rsvg-convert: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "rsvg-convert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    png_path
}

fn hex_rgb(hex: &str) -> [u8; 3] {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [c(1), c(3), c(5)]
}

fn token_for(grade: Grade, merchant: &str) -> Token {
    let key = SigningKey::from_bytes(&[42; 32]);
    let claims = Claims {
        kid: KeyId(3),
        merchant: merchant.to_owned(),
        serial: 123_456,
        issued: Day::from_ymd(2026, 3, 1).unwrap(),
        expires: Day::from_ymd(2027, 2, 28).unwrap(),
        grade,
    };
    sign(&claims, &key).expect("signs")
}

const CASES: [(Grade, &str); 3] = [
    (Grade::Green, "SH000001"),
    (Grade::Yellow, "V-2026.07_x"),
    (Grade::Red, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"),
];
const BASES: [&str; 2] = ["https://ysz.example.gov.cn", "http://127.0.0.1:8080"];

#[test]
fn png_of_a_signed_code_decodes_to_the_exact_url_for_every_grade() {
    require("zbarimg");
    let dir = tempfile::tempdir().unwrap();
    for (grade, merchant) in CASES {
        let token = token_for(grade, merchant);
        for base in BASES {
            let link = url(base, &token);
            let qr = Qr::encode(&link).unwrap();
            for module_px in [3, 8, 12] {
                let png = render::png(&qr, grade, module_px);
                let what = format!("{grade} {merchant} {base} at {module_px} px");

                // The colours are the grade's: frame, white quiet zone, dark modules.
                let img = image::load_from_memory(&png).unwrap();
                assert_eq!(img.color(), image::ColorType::Rgb8, "{what}");
                let img = img.to_rgb8();
                let side = (qr.width() as u32 + 12) * module_px;
                assert_eq!(img.dimensions(), (side, side), "{what}");
                let at = |mx: u32, my: u32| img.get_pixel(mx * module_px, my * module_px).0;
                assert_eq!(at(0, 0), hex_rgb(grade.colour()), "{what}: frame");
                assert_eq!(at(2, 2), [255, 255, 255], "{what}: quiet zone");
                assert_eq!(
                    at(6, 6),
                    hex_rgb(grade.dark_colour()),
                    "{what}: finder corner"
                );

                assert_eq!(rqrr_decode(&png), link, "rqrr, {what}");
                let file = dir.path().join(format!("{merchant}-{module_px}.png"));
                std::fs::write(&file, &png).unwrap();
                assert_eq!(zbar(&file), link, "zbarimg, {what}");
            }
        }
    }
}

#[test]
fn svg_rasterised_by_librsvg_decodes_to_the_exact_url_for_every_grade() {
    require("rsvg-convert");
    require("zbarimg");
    let dir = tempfile::tempdir().unwrap();
    for (grade, merchant) in CASES {
        let token = token_for(grade, merchant);
        for base in BASES {
            let link = url(base, &token);
            let qr = Qr::encode(&link).unwrap();
            // As served (no caption) and as `codes issue` writes it (caption).
            for (i, caption) in [None, Some(merchant), Some(grade.label_zh())]
                .into_iter()
                .enumerate()
            {
                let svg = yisaozhi_codes::svg(&qr, grade, caption);
                let png = rasterise(&svg, dir.path(), &format!("{merchant}-{i}"));
                let what = format!("{grade} {merchant} {base} caption {caption:?}");
                assert_eq!(zbar(&png), link, "zbarimg, {what}");
                assert_eq!(
                    rqrr_decode(&std::fs::read(&png).unwrap()),
                    link,
                    "rqrr, {what}"
                );
            }
        }
    }
}

/// The running service: `code.png` and `code.svg` of one merchant per grade
/// decode to the URL that `/code` names, and the CLI writes PNGs that decode
/// and verify against the keys the service publishes over plain HTTP.
#[tokio::test]
async fn served_and_bulk_issued_codes_decode_and_verify() {
    require("zbarimg");
    require("rsvg-convert");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prepared = yisaozhi::demo::prepare(&data, 365)
        .await
        .expect("demo prepare");
    assert_eq!(prepared.samples.len(), 3, "one sample per grade");
    let settings = yisaozhi::settings::Settings::load(yisaozhi::settings::Overrides {
        store: Some(format!("embedded:{}", data.display())),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .unwrap();
    let app = yisaozhi::startup::Application::build(settings)
        .await
        .unwrap();
    let base = app.base_url().to_owned();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    for (id, grade, _) in &prepared.samples {
        let code: serde_json::Value = client
            .get(format!("{base}/api/v1/merchants/{id}/code"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let link = code["url"].as_str().unwrap().to_owned();

        let res = client
            .get(format!("{base}/api/v1/merchants/{id}/code.png"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        let png = res.bytes().await.unwrap();
        let rgb = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(
            rgb.get_pixel(0, 0).0,
            hex_rgb(grade.colour()),
            "{id}: frame colour"
        );
        assert_eq!(rqrr_decode(&png), link, "rqrr, served {id}.png");
        let file = dir.path().join(format!("served-{id}.png"));
        std::fs::write(&file, &png).unwrap();
        assert_eq!(zbar(&file), link, "zbarimg, served {id}.png");

        let svg = client
            .get(format!("{base}/api/v1/merchants/{id}/code.svg"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let raster = rasterise(&svg, dir.path(), &format!("served-{id}"));
        assert_eq!(zbar(&raster), link, "zbarimg, served {id}.svg");
    }
    let missing = client
        .get(format!("{base}/api/v1/merchants/NOPE404/code.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Bulk printing to PNG with the binary, then offline verification with
    // the keys fetched from the service over http://.
    let out_dir = dir.path().join("out");
    let ids: Vec<&str> = prepared
        .samples
        .iter()
        .map(|(id, _, _)| id.as_str())
        .collect();
    for id in &ids {
        let out = Command::new(BIN)
            .args([
                "codes",
                "issue",
                "--merchant",
                id,
                "--format",
                "png",
                "--module-px",
                "6",
            ])
            .arg("--out")
            .arg(&out_dir)
            .arg("--store")
            .arg(format!("embedded:{}", data.display()))
            .args(["--public-base-url", &base])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "codes issue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("issued 1/1 codes"),
            "plain progress line when stderr is not a terminal: {stderr}"
        );
    }
    for id in &ids {
        let file = out_dir.join(format!("{id}.png"));
        let scanned = zbar(&file);
        assert_eq!(rqrr_decode(&std::fs::read(&file).unwrap()), scanned);
        assert!(
            scanned.starts_with(&format!("{}/S/", base.to_uppercase())),
            "{scanned}"
        );
        let out = Command::new(BIN)
            .args([
                "codes",
                "verify",
                &scanned,
                "--keys",
                &format!("{base}/api/v1/keys"),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && stdout.starts_with("valid:")
                && stdout.contains(&format!("merchant {id},")),
            "codes verify: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
