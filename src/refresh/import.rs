//! The import of the input files: merchants upserted, records of known
//! merchants added, every other line written to the rejects file with its
//! file, line and reason; each chunk's store write overlaps the reading and
//! checking of the next.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::model::{Merchant, Record};
use crate::progress::{Progress, Unit};
use crate::records::{Reject, RowParser};
use crate::store::{BatchStore, BulkImport};

use super::known_merchants::KnownMerchants;
use super::options::{RefreshOptions, Stopped};
use super::reader::{ChunkReader, Parsed};
use super::summary::Summary;

/// Collects rejected lines into the rejects file as JSON lines.
pub(super) struct Rejects {
    pub(super) out: std::io::BufWriter<std::fs::File>,
    pub(super) count: u64,
}

impl Rejects {
    pub(super) fn create(path: &Path) -> anyhow::Result<Self> {
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

fn parse_merchant(p: &RowParser, text: &str) -> Result<Merchant, String> {
    p.merchant(text)
}

fn parse_record(p: &RowParser, text: &str) -> Result<Record, String> {
    p.record(text)
}

/// Upserts the merchants of one file, chunk by chunk, and notes them as
/// known for the records that follow; they go through `bulk` when the
/// import is one.
pub(super) async fn import_merchants_file(
    store: &dyn BatchStore,
    bulk: Option<&dyn BulkImport>,
    path: &Path,
    opts: &RefreshOptions,
    known: &mut KnownMerchants,
    rejects: &mut Rejects,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut reader = ChunkReader::open(path, parse_merchant)?;
    let progress = Progress::new(
        format!("merchants {}", short_name(path)),
        reader.size,
        Unit::Bytes,
        true,
    );
    let mut count = 0u64;
    let mut stopped_at = None;
    while let Some(parsed) = reader.next().await? {
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
        known.clear_missing();
        if n > 0 {
            let changed = match bulk {
                Some(bulk) => bulk.upsert_merchants(merchants).await?,
                None => store.upsert_merchants(merchants).await?,
            };
            summary.imported += changed;
            summary.duplicate += n - changed;
        }
        progress.set(parsed.bytes_read);
        summary.stopped = Stopped::check(opts.stop.as_ref(), || {
            format!("at line {last_line} of {}", reader.name)
        });
        if summary.stopped.is_some() {
            stopped_at = Some(last_line);
            break;
        }
    }
    progress.end(summary.stopped.is_some());
    let lines = reader.finish()?;
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
        store: &dyn BatchStore,
        mut parsed: Parsed<Record>,
        opts: &RefreshOptions,
        known: &mut KnownMerchants,
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

/// Adds the records of one file whose merchant exists, chunk by chunk;
/// they go through `bulk` when the import is one.
pub(super) async fn import_records_file(
    store: &dyn BatchStore,
    bulk: Option<&dyn BulkImport>,
    path: &Path,
    opts: &RefreshOptions,
    known: &mut KnownMerchants,
    rejects: &mut Rejects,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut reader = ChunkReader::open(path, parse_record)?;
    let progress = Progress::new(
        format!("records {}", short_name(path)),
        reader.size,
        Unit::Bytes,
        true,
    );
    let file = reader.name.clone();
    let mut stopped_at = None;
    let mut next = match reader.next().await? {
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
            match bulk {
                Some(bulk) => bulk.add_records(chunk.batch).await,
                None => store.add_records(chunk.batch).await,
            }
        };
        let following = async {
            match reader.next().await? {
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
    let lines = reader.finish()?;
    summary.read += stopped_at.unwrap_or(lines);
    Ok(())
}

fn short_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
