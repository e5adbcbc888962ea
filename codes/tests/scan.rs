//! The rendered raster must decode with an independent QR reader back to the
//! exact URL, for every grade and a range of merchant id lengths.

use yisaozhi_codes::{luma, sign, url, verify, Claims, Day, Grade, KeyId, Qr, SigningKey, Verdict};

fn read(qr: &Qr, grade: Grade, module_px: u32) -> String {
    let (w, h, pixels) = luma(qr, grade, module_px);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        pixels[y * w as usize + x]
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one symbol expected");
    let (meta, content) = grids[0].decode().expect("decodes");
    assert_eq!(meta.version.0, qr.version() as usize);
    content
}

#[test]
fn rendered_codes_scan_back_to_their_url() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let public = key.public_key();
    for (grade, merchant) in [
        (Grade::Green, "M1".to_owned()),
        (Grade::Yellow, "SH000001".to_owned()),
        (Grade::Red, "z".repeat(32)),
    ] {
        let claims = Claims {
            kid: KeyId(1),
            merchant,
            serial: 7,
            issued: Day::from_ymd(2026, 3, 1).unwrap(),
            expires: Day::from_ymd(2027, 2, 28).unwrap(),
            grade,
        };
        let token = sign(&claims, &key).unwrap();
        for base in ["https://ysz.example.gov.cn", "http://127.0.0.1:8080"] {
            let link = url(base, &token);
            let qr = Qr::encode(&link).unwrap();
            let scanned = read(&qr, grade, 4);
            assert_eq!(scanned, link);
            let today = Day::from_ymd(2026, 6, 1).unwrap();
            assert_eq!(
                verify(&scanned, |_| Some(public), today),
                Verdict::Valid(claims.clone())
            );
        }
    }
}
