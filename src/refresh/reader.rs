//! Input files read and parsed off the async runtime: a reader thread per
//! file hands over chunks of parsed lines, each chunk parsed in parallel
//! (rayon), at most two chunks ahead of the store writes, so memory does
//! not grow with the size of a file.

use std::path::Path;

use anyhow::Context;
use rayon::prelude::*;

use crate::records::{Input, Reject, RowParser};

/// Most entries per chunk read from a file (one store write per chunk).
const CHUNK_ENTRIES: usize = 32 * 1024;
/// About this many bytes of text per chunk at most.
const CHUNK_BYTES: usize = 8 << 20;

/// One parsed chunk of a file: good items with their line, and rejects.
pub(super) struct Parsed<T> {
    pub(super) items: Vec<(T, u64)>,
    pub(super) rejects: Vec<Reject>,
    pub(super) bytes_read: u64,
}

impl<T> Parsed<T> {
    /// The number of the chunk's last line with an item or a reject.
    pub(super) fn last_line(&self) -> u64 {
        let item = self.items.last().map_or(0, |i| i.1);
        item.max(self.rejects.last().map_or(0, |r| r.line))
    }
}

/// A file being read and parsed on its own thread, chunk by chunk.
pub(super) struct ChunkReader<T> {
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) rx: tokio::sync::mpsc::Receiver<std::io::Result<Parsed<T>>>,
    pub(super) thread: std::thread::JoinHandle<u64>,
}

impl<T: Send + 'static> ChunkReader<T> {
    /// Opens `path` and starts reading it; `parse` turns one entry into an item.
    pub(super) fn open(
        path: &Path,
        parse: fn(&RowParser, &str) -> Result<T, String>,
    ) -> anyhow::Result<Self> {
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
        Ok(ChunkReader {
            name,
            size,
            rx,
            thread,
        })
    }

    pub(super) async fn next(&mut self) -> anyhow::Result<Option<Parsed<T>>> {
        match self.rx.recv().await {
            None => Ok(None),
            Some(Ok(p)) => Ok(Some(p)),
            Some(Err(e)) => Err(e).with_context(|| format!("cannot read {}", self.name)),
        }
    }

    /// Waits for the reader; the number of lines it read.
    pub(super) fn finish(self) -> anyhow::Result<u64> {
        drop(self.rx);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the reader of {} failed", self.name))
    }
}
