//! Progress of a long step (`refresh`, `gen`, `codes issue`) on stderr.
//!
//! On a terminal an indicatif bar with rate and ETA; otherwise (a systemd
//! journal, a CI log, a test) no bar, whose redraws would fill the log, but a
//! plain `tracing` line every [`Progress::LINE_EVERY`] and one at the end, so
//! a long job shows it is alive without a line per item. One type for every
//! command, so their progress looks and logs the same.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a [`Progress`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Items,
    Bytes,
}

/// The progress of one step. Safe to update from several threads.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: String,
    unit: Unit,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
    enabled: bool,
}

impl Progress {
    /// Plain lines at most this often.
    pub const LINE_EVERY: Duration = Duration::from_secs(5);

    /// A progress report for `total` units of `what`; `enabled: false`
    /// reports nothing.
    pub fn new(what: impl Into<String>, total: u64, unit: Unit, enabled: bool) -> Progress {
        use std::io::IsTerminal as _;
        let what = what.into();
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let counts = match unit {
                Unit::Items => "{human_pos}/{human_len} {per_sec}",
                Unit::Bytes => "{binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            };
            let template =
                format!("{{msg:>12}} [{{elapsed_precise}}] {{wide_bar}} {counts} ETA {{eta}}");
            let style = indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            let bar = indicatif::ProgressBar::new(total)
                .with_style(style)
                .with_message(what.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            what,
            unit,
            total,
            done: AtomicU64::new(0),
            started: now,
            last_line: Mutex::new(now),
            enabled,
        }
    }

    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.update(done);
    }

    pub fn set(&self, pos: u64) {
        self.done.store(pos, Ordering::Relaxed);
        self.update(pos);
    }

    fn update(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if self.enabled {
            let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= Self::LINE_EVERY {
                *last = Instant::now();
                drop(last);
                self.log(done, None);
            }
        }
    }

    fn log(&self, done: u64, end: Option<&str>) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let left = self.total.saturating_sub(done);
        let eta = if let Some(end) = end {
            end.to_owned()
        } else if rate > 0.0 {
            format!("ETA {:.0} s", left as f64 / rate)
        } else {
            "ETA unknown".to_owned()
        };
        let (done, total, rate) = match self.unit {
            Unit::Items => (
                done.to_string(),
                self.total.to_string(),
                format!("{rate:.0}/s"),
            ),
            Unit::Bytes => (
                mib(done),
                mib(self.total),
                format!("{:.1} MiB/s", rate / 1048576.0),
            ),
        };
        tracing::info!(
            "{}: {done}/{total} ({rate}, {secs:.1} s elapsed, {eta})",
            self.what
        );
    }

    /// Ends the report: the bar stays on screen; without one, a last line.
    pub fn finish(&self) {
        self.end(false);
    }

    /// Ends the report; of a step that `stopped` early on request, the bar
    /// and the last line say "stopped", not "done".
    pub fn end(&self, stopped: bool) {
        let done = self.done.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) if stopped => bar.abandon_with_message(format!("{} (stopped)", self.what)),
            Some(bar) => bar.finish(),
            None if self.enabled => self.log(done, Some(if stopped { "stopped" } else { "done" })),
            None => {}
        }
    }

    /// Ends the report without a trace: the bar is wiped and no last line
    /// is logged, for a command that prints its own result line.
    pub fn finish_and_clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}
