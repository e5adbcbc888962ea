//! External sort of (merchant, seq, payload) rows in bounded memory, shared
//! by the stores' bulk imports: the embedded store sorts its record keys
//! (and, on a first load, the records themselves for the regrade), the Redis
//! store sorts a bulk import's records so that each merchant's records are
//! appended to its list with one command.
//!
//! Why a sort of its own: inputs arrive in random merchant order, and ten
//! million rows do not fit the memory a refresh may take. Rows go to one
//! arena up to a byte limit, are sorted there (in parallel) and spilled as a
//! sorted run; [`Sorted`] merges the runs (k-way, one heap) and can read
//! them again ([`Sorted::rewind`]). The run files live in a directory of
//! their own that is removed when the sort is dropped;
//! [`remove_stale_sort_dirs`] removes those of a killed process.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One row out of an external sort; [`Sorted::next_into`] refills it in
/// place, so that reading ten million rows allocates nothing per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SortRow {
    /// The merchant id's bytes (as pushed, so valid UTF-8).
    pub(crate) merchant: Vec<u8>,
    pub(crate) seq: i64,
    pub(crate) payload: Vec<u8>,
}

/// A merchant id as a fixed-size key that orders like its bytes: ids are
/// at most 32 bytes of `A-Z a-z 0-9 . _ -` (never NUL), so zero padding
/// keeps their order, and two integers compare faster than two strings.
pub(crate) type SortKey = (u128, u128);

pub(crate) fn sort_key(merchant: &[u8]) -> SortKey {
    let mut b = [0u8; 32];
    let n = merchant.len().min(32);
    b[..n].copy_from_slice(&merchant[..n]);
    let (hi, lo) = b.split_at(16);
    (
        u128::from_be_bytes(hi.try_into().unwrap_or([0; 16])),
        u128::from_be_bytes(lo.try_into().unwrap_or([0; 16])),
    )
}

/// A row held in memory: its key and where its text is in the arena.
struct Entry {
    key: SortKey,
    seq: i64,
    start: usize,
    merchant_len: usize,
    payload_len: usize,
}

/// Sorts rows by (merchant, seq) in bounded memory: rows are kept in one
/// arena up to `limit` bytes and sorted there; beyond that, sorted runs go
/// to files in a private directory (`sort-<pid>-<n>`) under the given
/// directory and are merged
/// at the end.
pub(crate) struct Sorter {
    dir: std::path::PathBuf,
    limit: usize,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    runs: Vec<std::path::PathBuf>,
}

static SORTERS: AtomicUsize = AtomicUsize::new(0);

/// Removes the run files of sorts whose process is gone (killed mid-sort).
pub(crate) fn remove_stale_sort_dirs(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("sort-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id()
            || !Path::new("/proc/self").exists()
            || Path::new("/proc").join(pid.to_string()).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Sorter {
    pub(crate) fn new(data_dir: &Path, limit: usize) -> Sorter {
        let n = SORTERS.fetch_add(1, Ordering::Relaxed);
        Sorter {
            dir: data_dir.join(format!("sort-{}-{n}", std::process::id())),
            limit: limit.max(1),
            arena: Vec::new(),
            entries: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, merchant: &str, seq: i64, payload: &[u8]) -> std::io::Result<()> {
        debug_assert!(merchant.len() <= 32 && !merchant.contains('\0'));
        let start = self.arena.len();
        self.arena.extend_from_slice(merchant.as_bytes());
        self.arena.extend_from_slice(payload);
        self.entries.push(Entry {
            key: sort_key(merchant.as_bytes()),
            seq,
            start,
            merchant_len: merchant.len(),
            payload_len: payload.len(),
        });
        if self.arena.len() + self.entries.len() * std::mem::size_of::<Entry>() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_entries(&mut self) {
        use rayon::slice::ParallelSliceMut;
        self.entries
            .par_sort_unstable_by(|a, b| (a.key, a.seq).cmp(&(b.key, b.seq)));
    }

    fn row(&self, e: &Entry) -> (&[u8], &[u8]) {
        let m = e.start + e.merchant_len;
        (&self.arena[e.start..m], &self.arena[m..m + e.payload_len])
    }

    fn spill(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.sort_entries();
        // Runs hold records, personal data included.
        crate::files::create_dir(&self.dir)?;
        let path = self.dir.join(format!("run-{}", self.runs.len()));
        let file = crate::files::create_file(&path)?;
        self.runs.push(path);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for e in &self.entries {
            let (merchant, payload) = self.row(e);
            write_row(&mut out, merchant, e.seq, payload)?;
        }
        out.flush()?;
        self.arena.clear();
        self.entries.clear();
        Ok(())
    }

    /// The rows in order. [`Sorted::rewind`] reads them again.
    pub(crate) fn finish(mut self) -> std::io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_entries();
            return Ok(Sorted::Memory {
                next: 0,
                sorter: self,
            });
        }
        if !self.entries.is_empty() {
            self.spill()?;
        }
        self.arena = Vec::new();
        self.entries = Vec::new();
        Merge::open(self).map(Sorted::Merge)
    }
}

/// One row of a run file: merchant, seq, payload (lengths little-endian).
fn write_row(
    out: &mut impl std::io::Write,
    merchant: &[u8],
    seq: i64,
    payload: &[u8],
) -> std::io::Result<()> {
    out.write_all(&(merchant.len() as u32).to_le_bytes())?;
    out.write_all(merchant)?;
    out.write_all(&seq.to_le_bytes())?;
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(payload)
}

impl Drop for Sorter {
    fn drop(&mut self) {
        if !self.runs.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The output of a [`Sorter`] (which removes its run files when dropped).
pub(crate) enum Sorted {
    Memory { next: usize, sorter: Sorter },
    Merge(Merge),
}

/// A k-way merge of sorted runs.
pub(crate) struct Merge {
    readers: Vec<std::io::BufReader<std::fs::File>>,
    /// The next row of each run, if it has one left.
    heads: Vec<Option<SortRow>>,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(SortKey, i64, usize)>>,
    sorter: Sorter,
}

impl Merge {
    fn open(sorter: Sorter) -> std::io::Result<Merge> {
        let mut merge = Merge {
            readers: Vec::with_capacity(sorter.runs.len()),
            heads: Vec::new(),
            heap: std::collections::BinaryHeap::new(),
            sorter,
        };
        for path in &merge.sorter.runs {
            let f = std::fs::File::open(path)?;
            merge
                .readers
                .push(std::io::BufReader::with_capacity(1 << 20, f));
            merge.heads.push(None);
        }
        for i in 0..merge.readers.len() {
            let mut row = SortRow::default();
            if merge.read(i, &mut row)? {
                merge
                    .heap
                    .push(std::cmp::Reverse((sort_key(&row.merchant), row.seq, i)));
                merge.heads[i] = Some(row);
            }
        }
        Ok(merge)
    }

    /// Reads the next row of run `i` into `row` (reusing its buffers);
    /// false at the end of the run.
    fn read(&mut self, i: usize, row: &mut SortRow) -> std::io::Result<bool> {
        use std::io::Read;
        let r = &mut self.readers[i];
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        row.merchant.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut row.merchant)?;
        let mut seq = [0u8; 8];
        r.read_exact(&mut seq)?;
        row.seq = i64::from_le_bytes(seq);
        r.read_exact(&mut len)?;
        row.payload.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut row.payload)?;
        Ok(true)
    }
}

impl Sorted {
    /// Moves the next row into `row` (whose buffers are reused); false
    /// after the last one.
    pub(crate) fn next_into(&mut self, row: &mut SortRow) -> std::io::Result<bool> {
        match self {
            Sorted::Memory { next, sorter } => {
                let Some(e) = sorter.entries.get(*next) else {
                    return Ok(false);
                };
                *next += 1;
                let (m, p) = sorter.row(e);
                row.merchant.clear();
                row.merchant.extend_from_slice(m);
                row.seq = e.seq;
                row.payload.clear();
                row.payload.extend_from_slice(p);
                Ok(true)
            }
            Sorted::Merge(m) => {
                let Some(std::cmp::Reverse((_, _, i))) = m.heap.pop() else {
                    return Ok(false);
                };
                let Some(head) = m.heads[i].as_mut() else {
                    return Ok(false);
                };
                // The caller gets the head; the caller's old buffers take
                // the run's next row.
                std::mem::swap(head, row);
                let mut next = std::mem::take(head);
                if m.read(i, &mut next)? {
                    m.heap
                        .push(std::cmp::Reverse((sort_key(&next.merchant), next.seq, i)));
                    m.heads[i] = Some(next);
                } else {
                    m.heads[i] = None;
                }
                Ok(true)
            }
        }
    }

    /// The same rows again, from the first.
    pub(crate) fn rewind(self) -> std::io::Result<Sorted> {
        match self {
            Sorted::Memory { sorter, .. } => Ok(Sorted::Memory { next: 0, sorter }),
            Sorted::Merge(m) => Merge::open(m.sorter).map(Sorted::Merge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(limit: usize) -> Vec<(String, i64, String)> {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = Sorter::new(dir.path(), limit);
        // Merchants in a scrambled order, seqs descending within each.
        for i in 0..2000i64 {
            let m = format!("M{:04}", (i * 7919) % 300);
            sorter
                .push(&m, 10_000 - i, format!("payload {i}").as_bytes())
                .unwrap();
        }
        let read = |sorted: &mut Sorted| {
            let mut out = Vec::new();
            let mut row = SortRow::default();
            while sorted.next_into(&mut row).unwrap() {
                let payload = String::from_utf8(row.payload.clone()).unwrap();
                let merchant = String::from_utf8(row.merchant.clone()).unwrap();
                out.push((merchant, row.seq, payload));
            }
            out
        };
        let mut sorted = sorter.finish().unwrap();
        let out = read(&mut sorted);
        // Rewound, the same rows again.
        let mut again = sorted.rewind().unwrap();
        assert_eq!(read(&mut again), out);
        drop(again);
        // Run files are gone once the output is dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        out
    }

    #[test]
    fn the_sorter_orders_by_merchant_then_seq_in_memory_and_through_runs() {
        let in_memory = rows(usize::MAX);
        let spilled = rows(4096);
        assert_eq!(in_memory.len(), 2000);
        assert_eq!(in_memory, spilled);
        let mut sorted = in_memory.clone();
        sorted.sort();
        assert_eq!(in_memory, sorted);
    }

    #[test]
    fn sort_keys_order_like_the_ids() {
        let mut ids = vec![
            "M2", "M10", "M1", "M1-a", "M1.a", "a", "Z", "M0000001", "M000000",
        ];
        let mut by_key = ids.clone();
        ids.sort();
        by_key.sort_by_key(|m| sort_key(m.as_bytes()));
        assert_eq!(ids, by_key);
    }
}
