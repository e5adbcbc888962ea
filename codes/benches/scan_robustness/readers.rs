//! The decoders: `rqrr` (a port of quirc) and `rxing` (a port of ZXing, the
//! reader inside many phone apps) in process, on the photo's Rec. 601 luma
//! as a camera's Y plane; ZBar's `zbarimg` (Debian `zbar-tools`) on the RGB
//! photo, fed as PPM files in batches. A read counts only when the text is
//! exactly the URL; any other text is a misread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rxing::{BarcodeFormat, DecodeHints};

use crate::photo::Photo;

/// Each decoder, in the order the reports list them.
pub const DECODERS: [&str; 3] = ["rqrr", "rxing", "zbar"];

/// What a decoder made of a photo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Read {
    /// No symbol decoded.
    #[default]
    Nothing,
    /// The expected text.
    Url,
    /// Some other text (a misread).
    Other(String),
}

impl Read {
    fn of(texts: &[String], url: &str) -> Read {
        if texts.iter().any(|t| t == url) {
            Read::Url
        } else if let Some(t) = texts.first() {
            Read::Other(t.clone())
        } else {
            Read::Nothing
        }
    }
}

/// rqrr on the luma plane: every grid it finds, decoded.
pub fn rqrr(photo: &Photo, url: &str) -> Read {
    let luma = photo.luma();
    let w = photo.width;
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, photo.height, |x, y| luma[y * w + x]);
    let texts: Vec<String> = img
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect();
    Read::of(&texts, url)
}

/// rxing on the luma plane, QR only, without "try harder" (as ZXing's phone
/// scanner reads each camera frame).
pub fn rxing(photo: &Photo, url: &str) -> Read {
    let luma = photo.luma();
    let mut hints = DecodeHints {
        TryHarder: Some(false),
        ..Default::default()
    };
    let texts: Vec<String> = rxing::helpers::detect_in_luma_slice_with_hints(
        &luma,
        photo.width as u32,
        photo.height as u32,
        Some(BarcodeFormat::QR_CODE),
        &mut hints,
    )
    .map(|r| vec![r.getText().to_owned()])
    .unwrap_or_default();
    Read::of(&texts, url)
}

/// Hint printed when `zbarimg` cannot be run.
pub const ZBAR_INSTALL: &str = "apt-get install zbar-tools";

/// Runs `zbarimg` (QR only) on `files` in one process and returns, per file,
/// the texts it decoded.
pub fn zbar_batch(files: &[PathBuf]) -> Result<HashMap<PathBuf, Vec<String>>, String> {
    let out = Command::new("zbarimg")
        .args(["--xml", "-q", "-Sdisable", "-Sqrcode.enable"])
        .args(files)
        .output()
        .map_err(|e| format!("cannot run zbarimg ({e}): {ZBAR_INSTALL}"))?;
    // 0: something found in every file; 4: nothing found in some.
    if !matches!(out.status.code(), Some(0) | Some(4)) {
        return Err(format!(
            "zbarimg failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let xml = String::from_utf8(out.stdout).map_err(|e| format!("zbarimg output: {e}"))?;
    let mut found = parse_zbar_xml(&xml)?;
    for f in files {
        found.entry(f.clone()).or_default();
    }
    Ok(found)
}

/// Parses `zbarimg --xml`: `<source href='FILE'>` blocks, each with zero or
/// more `<data><![CDATA[TEXT]]></data>`.
pub fn parse_zbar_xml(xml: &str) -> Result<HashMap<PathBuf, Vec<String>>, String> {
    let mut found = HashMap::new();
    for block in xml.split("<source href='").skip(1) {
        let end = block
            .find("'>")
            .ok_or_else(|| format!("zbarimg xml: unterminated href in {block:.80}"))?;
        let file = PathBuf::from(&block[..end]);
        let mut texts = Vec::new();
        for data in block.split("<data><![CDATA[").skip(1) {
            let end = data
                .find("]]></data>")
                .ok_or_else(|| format!("zbarimg xml: unterminated data in {data:.80}"))?;
            texts.push(data[..end].to_owned());
        }
        found.insert(file, texts);
    }
    Ok(found)
}

/// Writes photos as PPM files under `dir` and reads them with one
/// `zbarimg` run: `(name, photo, url)` in, one [`Read`] per photo out.
pub fn zbar(dir: &Path, photos: &[(String, &Photo, &str)]) -> Result<Vec<Read>, String> {
    let files: Vec<PathBuf> = photos
        .iter()
        .map(|(name, photo, _)| {
            let file = dir.join(format!("{name}.ppm"));
            std::fs::write(&file, photo.ppm()).map(|()| file)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("writing a photo under {}: {e}", dir.display()))?;
    let found = zbar_batch(&files)?;
    let reads = files
        .iter()
        .zip(photos)
        .map(|(f, (_, _, url))| Read::of(&found[f], url))
        .collect();
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    Ok(reads)
}
