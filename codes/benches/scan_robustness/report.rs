//! Decode rates per grade × decoder × sticker, their intervals, the table
//! on stdout and the two CSV files.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use yisaozhi_codes::{Day, Grade};

use crate::photo::Shot;
use crate::readers::Read;
use crate::stats::{wilson, Paired};

/// The stickers of a trial, in the order `take` photographs them.
pub const VARIANTS: [&str; 4] = ["printed", "baseline", "bw-fixed-mask", "colour-auto-mask"];
/// Index of the baseline in [`VARIANTS`].
pub const BASELINE: usize = 1;

/// One trial: what was encoded, how it was shot, what each decoder read of
/// each sticker (`reads[variant][decoder]`).
pub struct Trial {
    pub grade: Grade,
    pub index: u64,
    pub merchant: String,
    pub url: String,
    pub version: i16,
    pub baseline_mask: u8,
    pub shot: Shot,
    pub reads: [[Read; 3]; 4],
}

/// Where and how the run was made.
pub struct Run {
    pub date: String,
    pub commit: String,
    pub machine: String,
    pub command: String,
    pub trials: usize,
    pub seed: u64,
    pub label: String,
    pub elapsed: Duration,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Run {
    /// The run as it starts (`elapsed` is set when it ends).
    pub fn describe(trials: usize, seed: u64, label: &str) -> Run {
        let days = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        let date = u16::try_from(days)
            .map(|d| Day(d).to_string())
            .unwrap_or_default();
        let mut commit = sh("git", &["rev-parse", "--short", "HEAD"]);
        if !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            commit.push_str("+changes");
        }
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .unwrap_or_else(|| "unknown cpu".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default();
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .map(|a| {
                // Quoted for a POSIX shell where it needs it.
                if a.contains([' ', '"', '\'', ',', '$']) {
                    format!("'{}'", a.replace('\'', r"'\''"))
                } else {
                    a
                }
            })
            .collect();
        Run {
            date,
            commit,
            machine: format!("{cpu}, {cores} cores, load {load}"),
            command: format!(
                "cargo bench -p yisaozhi-codes --bench scan_robustness -- {}",
                args.join(" ")
            ),
            trials,
            seed,
            label: label.to_owned(),
            elapsed: Duration::ZERO,
        }
    }
}

/// One line of the summary: a sticker read by a decoder over a grade's
/// trials (or all grades: `grade` is `None`).
pub struct Row {
    pub grade: Option<Grade>,
    pub decoder: &'static str,
    pub variant: &'static str,
    pub n: usize,
    pub ok: usize,
    pub misreads: usize,
    /// Against the baseline of the same trials (variant first).
    pub paired: Paired,
    pub both_ok: usize,
}

impl Row {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.n.max(1) as f64
    }

    /// "worse" or "better" when the paired 95 % interval excludes 0.
    pub fn verdict(&self) -> &'static str {
        let (lo, hi) = self.paired.diff_interval(self.both_ok);
        if self.variant == VARIANTS[BASELINE] {
            ""
        } else if hi < 0.0 {
            "worse"
        } else if lo > 0.0 {
            "better"
        } else {
            "same"
        }
    }
}

pub fn summarise(trials: &[Trial], grades: &[Grade], decoders: &[&'static str]) -> Vec<Row> {
    let mut scopes: Vec<Option<Grade>> = grades.iter().copied().map(Some).collect();
    if grades.len() > 1 {
        scopes.push(None);
    }
    let mut rows = Vec::new();
    for scope in scopes {
        let these: Vec<&Trial> = trials
            .iter()
            .filter(|t| scope.is_none_or(|g| t.grade == g))
            .collect();
        for (d, &decoder) in decoders.iter().enumerate() {
            for (v, &variant) in VARIANTS.iter().enumerate() {
                let mut row = Row {
                    grade: scope,
                    decoder,
                    variant,
                    n: these.len(),
                    ok: 0,
                    misreads: 0,
                    paired: Paired {
                        n: these.len(),
                        only_a: 0,
                        only_b: 0,
                    },
                    both_ok: 0,
                };
                for t in &these {
                    let a = t.reads[v][d] == Read::Url;
                    let b = t.reads[BASELINE][d] == Read::Url;
                    row.ok += usize::from(a);
                    row.misreads += usize::from(matches!(t.reads[v][d], Read::Other(_)));
                    row.both_ok += usize::from(a && b);
                    row.paired.only_a += usize::from(a && !b);
                    row.paired.only_b += usize::from(!a && b);
                }
                rows.push(row);
            }
        }
    }
    rows
}

fn scope_name(g: Option<Grade>) -> &'static str {
    g.map_or("all", Grade::name)
}

/// The human-readable table.
pub fn table(run: &Run, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "scan robustness: {} trials per grade, seed {}, {:.0} s; {} ({}); {}",
        run.trials,
        run.seed,
        run.elapsed.as_secs_f64(),
        run.date,
        run.commit,
        run.machine
    );
    let _ = writeln!(
        s,
        "{:<7} {:<6} {:<17} {:>6} {:>17} {:>26} {:>9} {:>5}  verdict",
        "grade",
        "reader",
        "sticker",
        "rate",
        "wilson 95%",
        "vs baseline (95%)",
        "mcnemar p",
        "misr"
    );
    for r in rows {
        let (lo, hi) = wilson(r.ok, r.n);
        let (dlo, dhi) = r.paired.diff_interval(r.both_ok);
        let vs = if r.variant == VARIANTS[BASELINE] {
            String::new()
        } else {
            format!("{:+.3} [{:+.3}, {:+.3}]", r.paired.diff(), dlo, dhi)
        };
        let p = if r.variant == VARIANTS[BASELINE] {
            String::new()
        } else {
            format!("{:.3}", r.paired.mcnemar_p())
        };
        let _ = writeln!(
            s,
            "{:<7} {:<6} {:<17} {:>6.3} {:>17} {:>26} {:>9} {:>5}  {}",
            scope_name(r.grade),
            r.decoder,
            r.variant,
            r.rate(),
            format!("[{lo:.3}, {hi:.3}]"),
            vs,
            p,
            r.misreads,
            r.verdict()
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

const SUMMARY_HEADER: &str = "date,commit,label,grade,decoder,sticker,trials,decoded,rate,wilson95_lo,wilson95_hi,diff_vs_baseline,diff95_lo,diff95_hi,only_sticker,only_baseline,mcnemar_p,misreads,verdict,seed,seconds,command,machine";

/// Appends the rows to `path` (header first if the file is new).
pub fn append_summary(path: &Path, run: &Run, rows: &[Row]) -> std::io::Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut s = String::new();
    if new {
        s.push_str(SUMMARY_HEADER);
        s.push('\n');
    }
    for r in rows {
        let (lo, hi) = wilson(r.ok, r.n);
        let (dlo, dhi) = r.paired.diff_interval(r.both_ok);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{:.4},{},{},{},{:.0},{},{}",
            run.date,
            run.commit,
            csv_field(&run.label),
            scope_name(r.grade),
            r.decoder,
            r.variant,
            r.n,
            r.ok,
            r.rate(),
            lo,
            hi,
            r.paired.diff(),
            dlo,
            dhi,
            r.paired.only_a,
            r.paired.only_b,
            r.paired.mcnemar_p(),
            r.misreads,
            r.verdict(),
            run.seed,
            run.elapsed.as_secs_f64(),
            csv_field(&run.command),
            csv_field(&run.machine),
        );
    }
    f.write_all(s.as_bytes())
}

fn read_code(r: &Read) -> &'static str {
    match r {
        Read::Url => "1",
        Read::Nothing => "0",
        Read::Other(_) => "x",
    }
}

/// Every trial's parameters and reads (`1` the URL, `0` nothing, `x` other
/// text), one line each; replaces `path`.
pub fn write_trials(
    path: &Path,
    run: &Run,
    trials: &[Trial],
    decoders: &[&str],
) -> std::io::Result<()> {
    let mut s = String::from(
        "date,commit,seed,grade,trial,merchant,qr_version,baseline_mask,px_per_module,rotation_deg,perspective,blur_px,brightness,gamma,light_falloff,contrast,veil,noise,jpeg_quality,background",
    );
    for v in VARIANTS {
        for d in decoders {
            let _ = write!(s, ",{v}:{d}");
        }
    }
    s.push('\n');
    for t in trials {
        let sh = &t.shot;
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{:.3},{:.2},{:.4},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.2},{},#{:02x}{:02x}{:02x}",
            run.date,
            run.commit,
            run.seed,
            t.grade,
            t.index,
            t.merchant,
            t.version,
            t.baseline_mask,
            sh.px_per_module,
            sh.rotation_deg,
            sh.perspective,
            sh.blur_px,
            sh.brightness,
            sh.gamma,
            sh.light_falloff,
            sh.contrast,
            sh.veil,
            sh.noise,
            sh.jpeg_quality,
            sh.background[0],
            sh.background[1],
            sh.background[2],
        );
        for reads in &t.reads {
            for r in &reads[..decoders.len()] {
                let _ = write!(s, ",{}", read_code(r));
            }
        }
        s.push('\n');
    }
    std::fs::write(path, s)
}
