//! The batch job: import merchants and records, regrade who is due, write
//! projections.
//!
//! Safe to kill at any point: records are committed with a "regrade" mark in
//! the same write, and a projection clears the mark in the same write as it
//! lands, so a re-run picks up exactly what the killed run left undone.
//!
//! Streams: a file is read in chunks of a few thousand lines on a reader
//! thread, each chunk parsed in parallel (rayon) while the previous one is
//! written to the store, so memory does not grow with the size of a file.
//! Regrading is a pipeline too: load a batch of merchants' inputs from the
//! store → grade it in parallel (grading is pure) → write the projections,
//! the three stages overlapping.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use jiff::civil::Date;
use rayon::prelude::*;

use crate::clock;
use crate::domain::{Grade, MerchantId, Shard};
use crate::grading::{self, Projection, Rules};
use crate::progress::{Progress, Unit};
use crate::records::{self, Input, Merchant, Record, Reject, RowParser};
use crate::store::{GradingInput, Store};

/// Most entries per chunk read from a file (one store write per chunk).
const CHUNK_ENTRIES: usize = 32 * 1024;
/// About this many bytes of text per chunk at most.
const CHUNK_BYTES: usize = 8 << 20;
/// Merchants per regrading batch (one store read and one write per batch).
const GRADE_BATCH: usize = 4096;
/// Projections per store write (one transaction).
const WRITE_BATCH: usize = 32 * 1024;
/// At most this many merchants whose grade changed are listed in a summary.
const MAX_CHANGED_LISTED: usize = 10_000;
/// At most this many unknown merchant ids are remembered (to ask once).
const MAX_UNKNOWN_REMEMBERED: usize = 1_000_000;

/// What to import and how to regrade.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub merchants: Option<PathBuf>,
    pub records: Vec<PathBuf>,
    pub as_of: Date,
    /// Regrade every merchant, not only those that are due.
    pub full: bool,
    pub rejects: PathBuf,
    /// Only the merchants of this shard: lines of other shards' merchants
    /// are skipped (neither imported nor rejected), and only this shard's
    /// merchants are regraded.
    pub shard: Option<Shard>,
    /// Checked at every safe point; see [`StopFlag`].
    pub stop: Option<StopFlag>,
}

/// Asks a running refresh to stop at its next safe point: after the store
/// write of the current chunk of an import, or after the current write of
/// projections. Every write is atomic with its regrade marks, so the same
/// command run again does what is left. The command line sets it on
/// SIGTERM or SIGINT.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicI32>);

impl StopFlag {
    /// Requests a stop on behalf of `signal` (its number); the first request wins.
    pub fn stop(&self, signal: i32) {
        let _ = self
            .0
            .compare_exchange(0, signal.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal that requested a stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

/// Where a refresh stopped when asked to (see [`StopFlag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The signal number (15 for SIGTERM, 2 for SIGINT).
    pub signal: i32,
    /// What was done, e.g. "at line 32768 of records.jsonl".
    pub at: String,
}

impl Stopped {
    pub fn signal_name(&self) -> String {
        match self.signal {
            2 => "SIGINT".into(),
            15 => "SIGTERM".into(),
            n => format!("signal {n}"),
        }
    }

    /// The exit status of a process stopped by this signal: 128 + its number.
    pub fn exit_status(&self) -> i32 {
        128 + self.signal
    }

    fn check(stop: Option<&StopFlag>, at: impl FnOnce() -> String) -> Option<Stopped> {
        let signal = stop?.requested()?;
        Some(Stopped { signal, at: at() })
    }
}

/// The counts a refresh reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read (merchants and records), blank lines included.
    pub read: u64,
    /// New or changed merchants, and new records.
    pub imported: u64,
    /// Unchanged merchants, and records whose id was already stored.
    pub duplicate: u64,
    pub rejected: u64,
    pub regraded: u64,
    pub by_grade: BTreeMap<Grade, u64>,
    /// Merchants whose grade changed: (id, before, after); `before` is `None`
    /// for a merchant graded for the first time. At most
    /// [`MAX_CHANGED_LISTED`] are listed; `changed_total` counts them all.
    pub changed: Vec<(MerchantId, Option<Grade>, Grade)>,
    pub changed_total: u64,
    /// Of `changed_total`, merchants graded for the first time.
    pub first_graded: u64,
    /// The shard the run was limited to.
    pub shard: Option<Shard>,
    /// Lines skipped because their merchant belongs to another shard.
    pub skipped_other_shard: u64,
    /// Set if the run stopped early on a signal.
    pub stopped: Option<Stopped>,
}

impl Summary {
    fn note_change(&mut self, id: &MerchantId, before: Option<Grade>, after: Grade) {
        self.changed_total += 1;
        self.first_graded += u64::from(before.is_none());
        if self.changed.len() < MAX_CHANGED_LISTED {
            self.changed.push((id.clone(), before, after));
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} lines: imported {}, duplicate {}, rejected {}",
            self.read, self.imported, self.duplicate, self.rejected
        )?;
        match self.shard {
            Some(_) => writeln!(f, ", skipped {} of other shards", self.skipped_other_shard)?,
            None => writeln!(f)?,
        }
        let grades: Vec<String> = Grade::ALL
            .iter()
            .map(|g| {
                format!(
                    "{} {}",
                    g.name(),
                    self.by_grade.get(g).copied().unwrap_or(0)
                )
            })
            .collect();
        write!(f, "regraded {} merchants", self.regraded)?;
        if let Some(shard) = self.shard {
            write!(f, " of shard {shard}")?;
        }
        write!(f, ": {}", grades.join(", "))?;
        let total = self.changed_total.max(self.changed.len() as u64);
        if total > 0 {
            write!(f, "\ngrade changed for {total} merchants")?;
            if self.first_graded > 0 {
                write!(f, " ({} graded for the first time)", self.first_graded)?;
            }
            write!(f, ":")?;
            for (id, before, after) in self.changed.iter().take(20) {
                let before = before.map_or("new", |g| g.name());
                write!(f, "\n  {id}: {before} -> {after}")?;
            }
            if total > 20 {
                write!(f, "\n  … and {} more", total - 20)?;
            }
        }
        if let Some(s) = &self.stopped {
            write!(
                f,
                "\nstopped by {} {}; run the same command again to finish",
                s.signal_name(),
                s.at
            )?;
        }
        Ok(())
    }
}

/// Collects rejected lines into the rejects file as JSON lines.
struct Rejects {
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
}

impl Rejects {
    fn create(path: &Path) -> anyhow::Result<Self> {
        // Rejected lines may quote personal data: for the owner only.
        let file = crate::files::create_file(path)
            .with_context(|| format!("cannot create rejects file {}", path.display()))?;
        Ok(Self {
            out: std::io::BufWriter::new(file),
            count: 0,
        })
    }

    fn push(&mut self, r: &Reject) -> anyhow::Result<()> {
        let line = serde_json::json!({"file": r.file, "line": r.line, "reason": r.reason});
        writeln!(self.out, "{line}")?;
        self.count += 1;
        Ok(())
    }
}

// --- process ----------------------------------------------------------------

/// Names rayon's workers (for profiles and `top -H`), if the pool is not
/// running yet.
pub fn name_rayon_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ysz-rayon-{i}"))
        .build_global();
}

/// CPU time (user + system) of this process so far, for the logs; Linux only.
fn cpu_secs() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name, utime and stime are the 12th
    // and 13th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    match f[..] {
        [u, s] => format!("{:.1}", (u + s) / 100.0),
        _ => "unknown".into(),
    }
}

// --- import -----------------------------------------------------------------

/// One parsed chunk of a file: good items with their line, and rejects.
struct Parsed<T> {
    items: Vec<(T, u64)>,
    rejects: Vec<Reject>,
    bytes_read: u64,
}

impl<T> Parsed<T> {
    /// The number of the chunk's last line with an item or a reject.
    fn last_line(&self) -> u64 {
        let item = self.items.last().map_or(0, |i| i.1);
        item.max(self.rejects.last().map_or(0, |r| r.line))
    }
}

/// A file being read and parsed on its own thread, chunk by chunk.
struct Stream<T> {
    name: String,
    size: u64,
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Parsed<T>>>,
    thread: std::thread::JoinHandle<u64>,
}

impl<T: Send + 'static> Stream<T> {
    /// Opens `path` and starts reading it; `parse` turns one entry into an item.
    fn open(path: &Path, parse: fn(&RowParser, &str) -> Result<T, String>) -> anyhow::Result<Self> {
        let mut input =
            Input::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let name = input.name().to_owned();
        let file = name.clone();
        // Two chunks in flight: one being parsed while one is written.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let thread = std::thread::Builder::new()
            .name("refresh-reader".into())
            .spawn(move || {
                let parser = input.parser();
                loop {
                    let chunk = match input.next_chunk(CHUNK_ENTRIES, CHUNK_BYTES) {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            break;
                        }
                    };
                    let results: Vec<Result<T, String>> = (0..chunk.len())
                        .into_par_iter()
                        .map(|i| parse(&parser, chunk.get(i).1))
                        .collect();
                    let mut parsed = Parsed {
                        items: Vec::with_capacity(results.len()),
                        rejects: chunk.rejects.clone(),
                        bytes_read: chunk.bytes_read,
                    };
                    for (i, result) in results.into_iter().enumerate() {
                        let line = chunk.get(i).0;
                        match result {
                            Ok(item) => parsed.items.push((item, line)),
                            Err(reason) => parsed.rejects.push(Reject {
                                file: file.clone(),
                                line,
                                reason,
                            }),
                        }
                    }
                    parsed.rejects.sort_by_key(|r| r.line);
                    if tx.blocking_send(Ok(parsed)).is_err() {
                        break;
                    }
                }
                input.lines()
            })
            .context("cannot start a reader thread")?;
        Ok(Stream {
            name,
            size,
            rx,
            thread,
        })
    }

    async fn next(&mut self) -> anyhow::Result<Option<Parsed<T>>> {
        match self.rx.recv().await {
            None => Ok(None),
            Some(Ok(p)) => Ok(Some(p)),
            Some(Err(e)) => Err(e).with_context(|| format!("cannot read {}", self.name)),
        }
    }

    /// Waits for the reader; the number of lines it read.
    fn finish(self) -> anyhow::Result<u64> {
        drop(self.rx);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the reader of {} failed", self.name))
    }
}

/// Merchants known to exist (from the merchants file or the store), and ids
/// already found unknown, so that each id is looked up at most once.
#[derive(Default)]
struct Known {
    yes: HashSet<IdKey, FastHash>,
    no: HashSet<IdKey, FastHash>,
}

/// A merchant id as a fixed-size set key: the id's bytes, zero-padded (an
/// id has at most 32 bytes and never a NUL, so two ids never share a key).
/// A lookup then reads the table alone, not a string elsewhere in memory:
/// at a million merchants and ten million records, those extra cache
/// misses were a tenth of the import's time.
type IdKey = [u8; MerchantId::MAX_LEN];

fn id_key(id: &MerchantId) -> IdKey {
    let mut key = [0; MerchantId::MAX_LEN];
    let b = id.as_str().as_bytes();
    let n = b.len().min(key.len());
    key[..n].copy_from_slice(&b[..n]);
    key
}

/// The sets' hasher, looked up for every record: foldhash's fast variant.
/// A 32-byte key takes two chains of two folded multiplies side by side and
/// one to finish (three steps deep; SipHash takes many rounds, the FxHash
/// this replaced five multiplies in a row). Keys come from the regulator's
/// own files, so flooding resistance buys nothing here, and the `quality`
/// variant's extra final mixing buys nothing in a hash table. Seeded per
/// set, as foldhash recommends, so copying one set into another stays fast.
type FastHash = foldhash::fast::RandomState;

impl Known {
    fn insert(&mut self, id: &MerchantId) {
        self.yes.insert(id_key(id));
    }

    /// Whether each of `records` has a known merchant; the ids not seen
    /// yet are looked up in one store call.
    async fn check(
        &mut self,
        store: &dyn Store,
        records: &[(Record, u64)],
    ) -> anyhow::Result<Vec<bool>> {
        let keys: Vec<IdKey> = records.iter().map(|(r, _)| id_key(&r.merchant)).collect();
        let known: Vec<bool> = keys.iter().map(|k| self.yes.contains(k)).collect();
        let mut asked: HashSet<IdKey, FastHash> = HashSet::default();
        let mut ask = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !known[i] && !self.no.contains(k) && asked.insert(*k) {
                ask.push(records[i].0.merchant.clone());
            }
        }
        if ask.is_empty() {
            return Ok(known);
        }
        ask.sort();
        let found: HashSet<IdKey, FastHash> = store
            .known_merchants(ask)
            .await?
            .iter()
            .map(id_key)
            .collect();
        if self.no.len() > MAX_UNKNOWN_REMEMBERED {
            self.no.clear();
        }
        for k in asked {
            if found.contains(&k) {
                self.yes.insert(k);
            } else {
                self.no.insert(k);
            }
        }
        Ok(keys
            .iter()
            .zip(known)
            .map(|(k, known)| known || found.contains(k))
            .collect())
    }
}

fn parse_merchant(p: &RowParser, text: &str) -> Result<Merchant, String> {
    p.merchant(text)
}

fn parse_record(p: &RowParser, text: &str) -> Result<Record, String> {
    p.record(text)
}

async fn import_merchants_file(
    store: &dyn Store,
    path: &Path,
    opts: &RefreshOptions,
    known: &mut Known,
    rejects: &mut Rejects,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut stream = Stream::open(path, parse_merchant)?;
    let progress = Progress::new(
        format!("merchants {}", short_name(path)),
        stream.size,
        Unit::Bytes,
        true,
    );
    let mut count = 0u64;
    let mut stopped_at = None;
    while let Some(parsed) = stream.next().await? {
        for r in &parsed.rejects {
            rejects.push(r)?;
        }
        let last_line = parsed.last_line();
        let mut merchants: Vec<Merchant> = parsed.items.into_iter().map(|(m, _)| m).collect();
        if let Some(shard) = opts.shard {
            let all = merchants.len();
            merchants.retain(|m| shard.contains(&m.id));
            summary.skipped_other_shard += (all - merchants.len()) as u64;
        }
        let n = merchants.len() as u64;
        count += n;
        for m in &merchants {
            known.insert(&m.id);
        }
        known.no.clear();
        if n > 0 {
            let changed = store.upsert_merchants(merchants).await?;
            summary.imported += changed;
            summary.duplicate += n - changed;
        }
        progress.set(parsed.bytes_read);
        summary.stopped = Stopped::check(opts.stop.as_ref(), || {
            format!("at line {last_line} of {}", stream.name)
        });
        if summary.stopped.is_some() {
            stopped_at = Some(last_line);
            break;
        }
    }
    progress.end(summary.stopped.is_some());
    let lines = stream.finish()?;
    summary.read += stopped_at.unwrap_or(lines);
    tracing::debug!(file = %path.display(), merchants = count, "merchants imported");
    Ok(())
}

/// A chunk of a records file made ready for the store: the records of
/// known merchants, and the chunk's rejects in line order.
struct RecordChunk {
    batch: Vec<Record>,
    rejects: Vec<Reject>,
    last_line: u64,
    bytes_read: u64,
    skipped_other_shard: u64,
}

impl RecordChunk {
    async fn of(
        store: &dyn Store,
        mut parsed: Parsed<Record>,
        opts: &RefreshOptions,
        known: &mut Known,
        file: &str,
    ) -> anyhow::Result<RecordChunk> {
        let last_line = parsed.last_line();
        let mut skipped_other_shard = 0;
        if let Some(shard) = opts.shard {
            // Before the unknown-merchant check: another shard's merchant
            // may well be unknown to this shard's run.
            let all = parsed.items.len();
            parsed.items.retain(|(r, _)| shard.contains(&r.merchant));
            skipped_other_shard = (all - parsed.items.len()) as u64;
        }
        let ok = known.check(store, &parsed.items).await?;
        let mut rejects = parsed.rejects;
        let mut batch = Vec::with_capacity(parsed.items.len());
        for ((record, line), ok) in parsed.items.into_iter().zip(ok) {
            if ok {
                batch.push(record);
            } else {
                rejects.push(Reject {
                    file: file.to_owned(),
                    line,
                    reason: format!(
                        "unknown merchant `{}`: import it in the merchants file first",
                        record.merchant
                    ),
                });
            }
        }
        Ok(RecordChunk {
            batch,
            rejects,
            last_line,
            bytes_read: parsed.bytes_read,
            skipped_other_shard,
        })
    }
}

async fn import_records_file(
    store: &dyn Store,
    path: &Path,
    opts: &RefreshOptions,
    known: &mut Known,
    rejects: &mut Rejects,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut stream = Stream::open(path, parse_record)?;
    let progress = Progress::new(
        format!("records {}", short_name(path)),
        stream.size,
        Unit::Bytes,
        true,
    );
    let file = stream.name.clone();
    let mut stopped_at = None;
    let mut next = match stream.next().await? {
        Some(parsed) => Some(RecordChunk::of(store, parsed, opts, known, &file).await?),
        None => None,
    };
    while let Some(chunk) = next.take() {
        for r in &chunk.rejects {
            rejects.push(r)?;
        }
        summary.skipped_other_shard += chunk.skipped_other_shard;
        // The store writes this chunk while the next one's merchants are
        // checked: the writer, the one serial stage, does not wait for that.
        let write = async {
            if chunk.batch.is_empty() {
                return Ok(Default::default());
            }
            store.add_records(chunk.batch).await
        };
        let following = async {
            match stream.next().await? {
                Some(parsed) => Ok(Some(
                    RecordChunk::of(store, parsed, opts, known, &file).await?,
                )),
                None => anyhow::Ok(None),
            }
        };
        let (added, following) = tokio::join!(write, following);
        let added = added?;
        summary.imported += added.inserted;
        summary.duplicate += added.duplicate;
        let last_line = chunk.last_line;
        tracing::debug!(file = %file, line = last_line, "records written");
        progress.set(chunk.bytes_read);
        summary.stopped = Stopped::check(opts.stop.as_ref(), || {
            format!("at line {last_line} of {file}")
        });
        if summary.stopped.is_some() {
            // The next chunk, checked already, is neither written nor
            // its rejects reported: the re-run reads it again.
            stopped_at = Some(last_line);
            break;
        }
        next = following?;
    }
    progress.end(summary.stopped.is_some());
    let lines = stream.finish()?;
    summary.read += stopped_at.unwrap_or(lines);
    Ok(())
}

fn short_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Imports the files, then regrades the merchants that are due.
pub async fn run(
    store: &dyn Store,
    rules: &Rules,
    opts: &RefreshOptions,
) -> anyhow::Result<Summary> {
    name_rayon_threads();
    let mut summary = Summary {
        shard: opts.shard,
        ..Summary::default()
    };
    let mut rejects = Rejects::create(&opts.rejects)?;
    let mut known = Known::default();
    let started = Instant::now();
    // About 150 bytes per record line.
    let expected: u64 = opts
        .records
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()) / 150)
        .sum();
    // No bulk mode for a shard: shards may run as parallel processes on one
    // store, and the embedded store's bulk mode assumes a single importer
    // (its one `bulk_since` row would be "recovered", i.e. completed and
    // removed, by another shard's writer while this one still imports).
    // Each shard's writes then go the ordinary way, atomic with their marks.
    if opts.shard.is_none() {
        store.begin_bulk_import(expected).await?;
    }
    let imported = async {
        if let Some(path) = &opts.merchants {
            tracing::info!(file = %path.display(), shard = %opts.shard.map_or("all".into(), |s| s.to_string()), "importing merchants");
            import_merchants_file(store, path, opts, &mut known, &mut rejects, &mut summary)
                .await?;
        }
        for path in &opts.records {
            if summary.stopped.is_some() {
                break;
            }
            tracing::info!(file = %path.display(), shard = %opts.shard.map_or("all".into(), |s| s.to_string()), "importing records");
            import_records_file(store, path, opts, &mut known, &mut rejects, &mut summary).await?;
        }
        anyhow::Ok(())
    };
    let imported = imported.await;
    let repeated = store.end_bulk_import().await?;
    imported?;
    summary.imported -= repeated;
    summary.duplicate += repeated;
    rejects.out.flush()?;
    summary.rejected = rejects.count;
    tracing::info!(
        read = summary.read,
        imported = summary.imported,
        duplicate = summary.duplicate,
        rejected = summary.rejected,
        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        cpu_secs = cpu_secs(),
        "import done"
    );
    if summary.stopped.is_none() {
        summary.stopped = Stopped::check(opts.stop.as_ref(), || "after the import".into());
    }
    if let Some(s) = &summary.stopped {
        tracing::warn!(
            "stopped by {} {}; run the same command again to finish",
            s.signal_name(),
            s.at
        );
        return Ok(summary);
    }
    let regrade_started = Instant::now();
    let mut due = if opts.full {
        store.all_merchant_ids().await?
    } else {
        store.due_for_regrade(opts.as_of).await?
    };
    if let Some(shard) = opts.shard {
        due.retain(|id| shard.contains(id));
    }
    tracing::info!(merchants = due.len(), "regrade started");
    let progress = Progress::new("regrading", due.len() as u64, Unit::Items, true);
    regrade_with(
        store,
        rules,
        &due,
        opts.as_of,
        &mut summary,
        Some(&progress),
        opts.stop.as_ref(),
    )
    .await?;
    progress.end(summary.stopped.is_some());
    if let Some(s) = &summary.stopped {
        tracing::warn!(
            "stopped by {} {}; run the same command again to finish",
            s.signal_name(),
            s.at
        );
    }
    tracing::info!(
        merchants = due.len(),
        secs = format!("{:.1}", regrade_started.elapsed().as_secs_f64()),
        total_secs = format!("{:.1}", started.elapsed().as_secs_f64()),
        cpu_secs = cpu_secs(),
        "regrade done"
    );
    Ok(summary)
}

async fn add(store: &dyn Store, batch: Vec<Record>, summary: &mut Summary) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let added = store.add_records(batch).await?;
    summary.imported += added.inserted;
    summary.duplicate += added.duplicate;
    Ok(())
}

// --- regrading --------------------------------------------------------------

/// Recomputes and stores the projections of `ids` as of `as_of`.
pub async fn regrade(
    store: &dyn Store,
    rules: &Rules,
    ids: &[MerchantId],
    as_of: Date,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    regrade_with(store, rules, ids, as_of, summary, None, None).await
}

/// [`regrade`] as a three-stage pipeline: load a batch of inputs → grade it
/// in parallel → write its projections; the stages run at the same time on
/// consecutive batches. On a `stop` request, what was graded is written and
/// the rest left due (marked) for the next run.
async fn regrade_with(
    store: &dyn Store,
    rules: &Rules,
    ids: &[MerchantId],
    as_of: Date,
    summary: &mut Summary,
    progress: Option<&Progress>,
    stop: Option<&StopFlag>,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = clock::now();
    let rules = Arc::new(rules.clone());
    let (load_tx, mut load_rx) = tokio::sync::mpsc::channel::<Vec<GradingInput>>(2);
    let (write_tx, mut write_rx) =
        tokio::sync::mpsc::channel::<Vec<(Projection, Option<Grade>)>>(2);
    let loader = async move {
        store
            .stream_grading_inputs(ids.to_vec(), GRADE_BATCH, load_tx)
            .await?;
        anyhow::Ok(())
    };
    let grader = async move {
        while let Some(inputs) = load_rx.recv().await {
            let rules = rules.clone();
            let graded: Vec<(Projection, Option<Grade>)> = tokio::task::spawn_blocking(move || {
                inputs
                    .into_par_iter()
                    .map(|i| {
                        let p = grading::project(
                            &i.merchant,
                            &i.records,
                            i.override_.as_ref(),
                            &rules,
                            as_of,
                            now,
                        );
                        (p, i.previous)
                    })
                    .collect()
            })
            .await
            .context("grading failed")?;
            if write_tx.send(graded).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    };
    // The store write of one batch runs while the next is graded and
    // collected (at most one waiting): the writes are the one serial stage.
    let (sink_tx, mut sink_rx) = tokio::sync::mpsc::channel::<Vec<Projection>>(1);
    let collector = async move {
        // Few large transactions: each commit rewrites the pages it touched
        // in the projections' indexes, wherever in them the rows fall.
        let mut pending: Vec<(Projection, Option<Grade>)> = Vec::new();
        loop {
            let next = write_rx.recv().await;
            let done = next.is_none();
            if let Some(batch) = next {
                pending.extend(batch);
            }
            // A stop waits for what is graded to be written: a safe point.
            let stopping = stop.is_some_and(|s| s.requested().is_some());
            if pending.len() >= WRITE_BATCH || ((done || stopping) && !pending.is_empty()) {
                let mut batch = Vec::with_capacity(pending.len());
                for (p, before) in pending.drain(..) {
                    if before != Some(p.grade) {
                        summary.note_change(&p.merchant.id, before, p.grade);
                    }
                    *summary.by_grade.entry(p.grade).or_default() += 1;
                    summary.regraded += 1;
                    batch.push(p);
                }
                if sink_tx.send(batch).await.is_err() {
                    break; // the sink failed; its error is returned
                }
            }
            if done {
                break;
            }
            if stopping {
                summary.stopped = Stopped::check(stop, || {
                    format!(
                        "after regrading {} of {} merchants",
                        summary.regraded,
                        ids.len()
                    )
                });
                break;
            }
        }
        anyhow::Ok(())
    };
    let sink = async move {
        while let Some(batch) = sink_rx.recv().await {
            let n = batch.len() as u64;
            store.put_projections(batch).await?;
            if let Some(p) = progress {
                p.inc(n);
            }
        }
        anyhow::Ok(())
    };
    tokio::try_join!(loader, grader, collector, sink)?;
    Ok(())
}

/// What an import over HTTP did: the counts and the rejected lines.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub summary: Summary,
    pub rejects: Vec<Reject>,
    /// How many of the rejected lines were outside the caller's scope.
    pub out_of_scope: u64,
    /// Each merchant the import changed, as stored before and as written,
    /// in input order (a merchant named twice changes twice).
    pub changes: Vec<MerchantChange>,
}

/// A merchant as stored before an import (`None`: new) and as written.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantChange {
    pub before: Option<Merchant>,
    pub after: Merchant,
}

/// At most this many rejects are returned in one HTTP answer.
const MAX_REJECTS_SHOWN: usize = 1000;

impl ImportReport {
    fn reject_out_of_scope(&mut self, line: u64, what: &str) {
        self.out_of_scope += 1;
        self.reject(Reject {
            file: "request body".into(),
            line,
            reason: format!("{what} is outside the regions your token may change"),
        });
    }

    fn reject(&mut self, r: Reject) {
        self.summary.rejected += 1;
        if self.rejects.len() < MAX_REJECTS_SHOWN {
            self.rejects.push(r);
        }
    }
}

fn parse_body<T>(
    body: &[u8],
    parse: impl Fn(&str) -> Result<T, String>,
    report: &mut ImportReport,
) -> Vec<(T, u64)> {
    let mut items = Vec::new();
    let read = records::read_jsonl_from(
        body,
        "request body",
        parse,
        |t, line| items.push((t, line)),
        |r| report.reject(r),
    )
    .unwrap_or(0);
    report.summary.read += read;
    items
}

/// Registers or updates merchants from a JSONL body and grades them at once.
/// `may_write` says which regions the caller may change: a line is accepted
/// only if it may change the merchant as stored *and* as written, so moving
/// a merchant between regions takes a scope that covers both.
pub async fn import_merchants_body(
    store: &dyn Store,
    rules: &Rules,
    body: &[u8],
    may_write: &(dyn Fn(&crate::domain::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let mut merchants = Vec::new();
    // Each merchant as it stands before the next line: stored, or as an
    // earlier line of this body wrote it.
    let mut current: BTreeMap<MerchantId, Option<Merchant>> = BTreeMap::new();
    for (m, line) in parse_body(body, records::parse_merchant, &mut report) {
        if !may_write(&m.region) {
            report.reject_out_of_scope(line, &format!("merchant `{}` (region {})", m.id, m.region));
            continue;
        }
        if !current.contains_key(&m.id) {
            current.insert(m.id.clone(), store.merchant(&m.id).await?);
        }
        let before = current.get(&m.id).cloned().flatten();
        if let Some(stored) = before.as_ref().filter(|b| !may_write(&b.region)) {
            report.reject_out_of_scope(
                line,
                &format!(
                    "merchant `{}` is registered in region {}, which",
                    m.id, stored.region
                ),
            );
        } else {
            if before.as_ref() != Some(&m) {
                report.changes.push(MerchantChange {
                    before,
                    after: m.clone(),
                });
            }
            current.insert(m.id.clone(), Some(m.clone()));
            merchants.push(m);
        }
    }
    let ids: Vec<MerchantId> = merchants.iter().map(|m| m.id.clone()).collect();
    let changed = store.upsert_merchants(merchants).await?;
    report.summary.imported += changed;
    report.summary.duplicate += ids.len() as u64 - changed;
    regrade(store, rules, &ids, as_of, &mut report.summary).await?;
    Ok((report, ids))
}

/// Imports records from a JSONL body with the same rules as `refresh`, and
/// regrades the merchants they belong to at once.
pub async fn import_records_body(
    store: &dyn Store,
    rules: &Rules,
    body: &[u8],
    may_write: &(dyn Fn(&crate::domain::RegionCode) -> bool + Sync),
    as_of: Date,
) -> anyhow::Result<(ImportReport, Vec<MerchantId>)> {
    let mut report = ImportReport::default();
    let parsed = parse_body(body, records::parse_record, &mut report);
    let mut regions = BTreeMap::new();
    for (r, _) in &parsed {
        if !regions.contains_key(&r.merchant) {
            let region = store.merchant(&r.merchant).await?.map(|m| m.region);
            regions.insert(r.merchant.clone(), region);
        }
    }
    let mut accepted = Vec::new();
    for (r, line) in parsed {
        match regions.get(&r.merchant).and_then(Option::as_ref) {
            None => report.reject(Reject {
                file: "request body".into(),
                line,
                reason: format!("unknown merchant `{}`: register it first", r.merchant),
            }),
            Some(region) if !may_write(region) => report.reject_out_of_scope(
                line,
                &format!("merchant `{}` (region {region})", r.merchant),
            ),
            Some(_) => accepted.push(r),
        }
    }
    let mut ids: Vec<MerchantId> = accepted.iter().map(|r| r.merchant.clone()).collect();
    ids.sort();
    ids.dedup();
    add(store, accepted, &mut report.summary).await?;
    regrade(store, rules, &ids, as_of, &mut report.summary).await?;
    Ok((report, ids))
}
