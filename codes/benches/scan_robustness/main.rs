//! Do the printed codes scan as well as a plain black-on-white QR code?
//!
//! ```text
//! cargo bench -p yisaozhi-codes --bench scan_robustness -- --trials 1000
//! ```
//!
//! For each grade and trial: a real signed token (fixed test key, random
//! merchant id and serial) in its printed URL; four stickers of that URL —
//! the code **as printed** (the crate's layout, the PNG's grade colours, the
//! fixed mask), the **baseline** (same segments and level Q, mask by the
//! penalty rule, black on white, same quiet zone), and two diagnostics that
//! change one thing each (the printed mask in black on white; the grade
//! colours with the penalty mask); one random phone shot (`photo.rs`) taken
//! of all four alike; three decoders (`readers.rs`). Prints decode rates
//! with Wilson 95 % intervals and the paired difference to the baseline,
//! appends them to `benches/results/scan_robustness.csv` and writes every
//! trial's parameters and reads to `benches/results/scan_robustness_trials.csv`.
//!
//! Options: `--trials N` per grade (1000), `--seed S`, `--grades green,red`,
//! `--no-zbar`, `--label TEXT` (a note in the CSV rows), `--out DIR`,
//! `--save-photos N` (the first N trials' photos as PNG under `DIR/photos`).

mod photo;
mod printed;
mod readers;
mod report;
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use yisaozhi_codes::{sign, url, Claims, Day, Grade, KeyId, Qr, SigningKey};

use photo::{photograph, Photo, Rng, Shot};
use readers::Read;
use report::{Trial, VARIANTS};

/// The public base as in `codes/SPEC.md` §5's middle row (29-character
/// prefix).
const BASE: &str = "https://ysz.example.gov.cn";
/// Secret seed of the benchmark's signing key (not a published key).
const KEY_SEED: [u8; 32] = [0x5A; 32];
/// Trials per `zbarimg` run.
const ZBAR_BATCH: usize = 50;

struct Args {
    trials: usize,
    seed: u64,
    grades: Vec<Grade>,
    zbar: bool,
    label: String,
    out: PathBuf,
    save_photos: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        trials: 1000,
        seed: 20_261_201,
        grades: Grade::ALL.to_vec(),
        zbar: true,
        label: String::new(),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/results"),
        save_photos: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--trials" => {
                args.trials = value("--trials")?
                    .parse()
                    .map_err(|e| format!("--trials: {e}"))?
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--grades" => {
                args.grades = value("--grades")?
                    .split(',')
                    .map(|g| Grade::from_name(g).ok_or(format!("--grades: unknown grade `{g}`")))
                    .collect::<Result<_, _>>()?
            }
            "--no-zbar" => args.zbar = false,
            "--label" => args.label = value("--label")?,
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--save-photos" => {
                args.save_photos = value("--save-photos")?
                    .parse()
                    .map_err(|e| format!("--save-photos: {e}"))?
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.trials == 0 {
        return Err("--trials must be at least 1".into());
    }
    Ok(args)
}

/// A merchant id as the service issues them: mostly `M` and 7 digits (the
/// generator's form at 10^6 merchants), some longer regional ids.
fn merchant_id(rng: &mut Rng) -> String {
    let n = rng.next_u64() % 10_000_000;
    if rng.chance(0.75) {
        format!("M{n:07}")
    } else {
        format!("SC511521-{:06}", n % 1_000_000)
    }
}

/// The URL of a freshly signed code for `grade`.
fn printed_url(rng: &mut Rng, key: &SigningKey, grade: Grade) -> (String, String) {
    let merchant = merchant_id(rng);
    let issued = Day::from_ymd(2026, 1, 1).expect("a valid date").0 + (rng.next_u64() % 365) as u16;
    let claims = Claims {
        kid: KeyId(1 + (rng.next_u64() % 4) as u16),
        merchant: merchant.clone(),
        serial: rng.next_u64() as u32,
        issued: Day(issued),
        expires: Day(issued + 364),
        grade,
    };
    let token = sign(&claims, key).expect("valid claims sign");
    (merchant, url(BASE, &token))
}

/// One trial's four photos (in [`VARIANTS`] order) and what it logs.
fn take(seed: u64, index: u64, key: &SigningKey, grade: Grade) -> (Trial, [Photo; 4]) {
    let mut rng = Rng::for_trial(seed, index);
    let (merchant, link) = printed_url(&mut rng, key, grade);
    let qr = Qr::encode(&link).expect("a code URL encodes");
    // The baseline differs from the printed symbol in its mask only.
    let fixed = printed::reference_symbol(&link, Some(2));
    assert!(
        printed::same_modules(&fixed, &qr),
        "segments or level differ from Qr::encode for {link}"
    );
    let auto = printed::reference_symbol(&link, None);
    let stickers = [
        printed::printed(&qr, grade),
        printed::lay_out_symbol(&auto, None),
        printed::lay_out(qr.width(), |x, y| qr.is_dark(x, y), None),
        printed::lay_out_symbol(&auto, Some(grade)),
    ];
    let shot = Shot::draw(&mut rng);
    let photos = stickers.map(|s| photograph(&s, &shot));
    let trial = Trial {
        grade,
        index,
        merchant,
        url: link,
        version: qr.version(),
        baseline_mask: auto.mask().value(),
        shot,
        reads: Default::default(),
    };
    (trial, photos)
}

/// Every reader must read every grade's printed code and its baseline in a
/// sharp, level photo before the degraded trials count for anything.
fn self_check(key: &SigningKey, tmp: &std::path::Path, zbar: bool) -> Result<(), String> {
    for grade in Grade::ALL {
        let (_, link) = printed_url(&mut Rng::for_trial(0, 0), key, grade);
        let qr = Qr::encode(&link).map_err(|e| e.to_string())?;
        let auto = printed::reference_symbol(&link, None);
        for sticker in [
            printed::printed(&qr, grade),
            printed::lay_out_symbol(&auto, None),
        ] {
            let photo = photograph(&sticker, &Shot::clean(3.0));
            let mut reads = vec![readers::rqrr(&photo, &link), readers::rxing(&photo, &link)];
            if zbar {
                reads.extend(readers::zbar(tmp, &[("check".into(), &photo, &link)])?);
            }
            if reads.iter().any(|r| *r != Read::Url) {
                return Err(format!(
                    "self-check: a clean photo of {grade} reads as {reads:?}"
                ));
            }
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    // The commit, machine and load as the run starts.
    let mut run = report::Run::describe(args.trials, args.seed, &args.label);
    let key = SigningKey::from_bytes(&KEY_SEED);
    let tmp = std::env::temp_dir().join(format!("ysz-scan-robustness-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    self_check(&key, &tmp, args.zbar)?;
    if args.save_photos > 0 {
        std::fs::create_dir_all(args.out.join("photos")).map_err(|e| e.to_string())?;
    }
    let mut trials: Vec<Trial> = Vec::new();
    for (g, &grade) in args.grades.iter().enumerate() {
        let mut pending: Vec<(usize, [Photo; 4])> = Vec::new();
        for t in 0..args.trials {
            let index =
                (Grade::ALL.iter().position(|&x| x == grade).unwrap_or(g) * 1_000_000 + t) as u64;
            let (mut trial, photos) = take(args.seed, index, &key, grade);
            for (v, photo) in photos.iter().enumerate() {
                trial.reads[v][0] = readers::rqrr(photo, &trial.url);
                trial.reads[v][1] = readers::rxing(photo, &trial.url);
            }
            if t < args.save_photos {
                for (v, photo) in photos.iter().enumerate() {
                    let file = args
                        .out
                        .join("photos")
                        .join(format!("{grade}-{t:04}-{}.png", VARIANTS[v]));
                    image::save_buffer(
                        &file,
                        &photo.rgb,
                        photo.width as u32,
                        photo.height as u32,
                        image::ExtendedColorType::Rgb8,
                    )
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                }
            }
            trials.push(trial);
            if args.zbar {
                pending.push((trials.len() - 1, photos));
                if pending.len() == ZBAR_BATCH || t + 1 == args.trials {
                    zbar_pending(&tmp, &mut trials, &mut pending)?;
                }
            }
            if (t + 1) % 100 == 0 {
                eprintln!(
                    "{grade}: {}/{} trials, {:.0} s",
                    t + 1,
                    args.trials,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let decoders: &[&str] = if args.zbar {
        &readers::DECODERS
    } else {
        &readers::DECODERS[..2]
    };
    run.elapsed = started.elapsed();
    let rows = report::summarise(&trials, &args.grades, decoders);
    print!("{}", report::table(&run, &rows));
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let summary = args.out.join("scan_robustness.csv");
    report::append_summary(&summary, &run, &rows)
        .map_err(|e| format!("{}: {e}", summary.display()))?;
    let per_trial = args.out.join("scan_robustness_trials.csv");
    report::write_trials(&per_trial, &run, &trials, decoders)
        .map_err(|e| format!("{}: {e}", per_trial.display()))?;
    eprintln!("wrote {} and {}", summary.display(), per_trial.display());
    Ok(())
}

/// Reads the pending trials' photos with one `zbarimg` run.
fn zbar_pending(
    dir: &std::path::Path,
    trials: &mut [Trial],
    pending: &mut Vec<(usize, [Photo; 4])>,
) -> Result<(), String> {
    let mut batch = Vec::new();
    for (i, photos) in pending.iter() {
        for (v, photo) in photos.iter().enumerate() {
            batch.push((format!("t{i}-v{v}"), photo, trials[*i].url.as_str()));
        }
    }
    let reads: Vec<Read> = readers::zbar(dir, &batch)?;
    for (k, read) in reads.into_iter().enumerate() {
        let (i, _) = pending[k / VARIANTS.len()];
        trials[i].reads[k % VARIANTS.len()][2] = read;
    }
    pending.clear();
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|args| run(&args));
    if let Err(e) = result {
        eprintln!("scan_robustness: error: {e}");
        std::process::exit(1);
    }
}
