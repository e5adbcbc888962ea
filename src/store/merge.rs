//! The merge of a search's cells: each cell (region, grade, kind) of a
//! backend's search index is a list of merchants in id order; a page of
//! the search in id order is their merge. The merge is a state machine
//! that asks for rows and is fed them, so the embedded store (blocking
//! SQLite reads) and Redis (pipelined reads) drive the same logic.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Rows a cell's first read asks for; later reads ask four times more,
/// up to [`MAX_BATCH`].
const FIRST_BATCH: usize = 8;
const MAX_BATCH: usize = 1024;

/// A row of a cell: the merchant it is about.
pub(crate) trait CellRow {
    fn merchant(&self) -> &str;
}

/// A read the merge needs: up to `limit` rows of cell `cell` after the
/// merchant `after` (`None`: from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub cell: usize,
    pub after: Option<String>,
    pub limit: usize,
}

struct Cursor<R> {
    rows: VecDeque<R>,
    after: Option<String>,
    batch: usize,
    /// A read is due (and the merge waits for it).
    wanted: bool,
    done: bool,
}

/// What the merge does next.
pub(crate) enum Step<R> {
    Row(R),
    /// Feed it the reads [`Merge::wanted`] lists first.
    Need,
    End,
}

/// The merge of `cells` lists, from after `after`.
pub(crate) struct Merge<R> {
    cursors: Vec<Cursor<R>>,
    /// The front merchant of each cursor that has one and is not waiting.
    heap: BinaryHeap<Reverse<(String, usize)>>,
}

impl<R: CellRow> Merge<R> {
    /// `expected` is about how many rows the caller will take: the first
    /// reads ask for a share of it.
    pub(crate) fn new(cells: usize, after: Option<&str>, expected: usize) -> Self {
        let batch = FIRST_BATCH.max(expected.min(MAX_BATCH) / cells.max(1));
        Merge {
            cursors: (0..cells)
                .map(|_| Cursor {
                    rows: VecDeque::new(),
                    after: after.map(str::to_owned),
                    batch,
                    wanted: true,
                    done: false,
                })
                .collect(),
            heap: BinaryHeap::new(),
        }
    }

    /// The reads the merge waits for.
    pub(crate) fn wanted(&self) -> Vec<Want> {
        self.cursors
            .iter()
            .enumerate()
            .filter(|(_, c)| c.wanted)
            .map(|(cell, c)| Want {
                cell,
                after: c.after.clone(),
                limit: c.batch,
            })
            .collect()
    }

    /// The rows a wanted read gave, in merchant order.
    pub(crate) fn feed(&mut self, cell: usize, rows: Vec<R>) {
        let c = &mut self.cursors[cell];
        c.done = rows.len() < c.batch;
        c.batch = (c.batch * 4).min(MAX_BATCH);
        c.wanted = false;
        if let Some(last) = rows.last() {
            c.after = Some(last.merchant().to_owned());
        }
        c.rows.extend(rows);
        if let Some(front) = c.rows.front() {
            self.heap.push(Reverse((front.merchant().to_owned(), cell)));
        }
    }

    /// The next row in merchant order.
    pub(crate) fn step(&mut self) -> Step<R> {
        if self.cursors.iter().any(|c| c.wanted) {
            return Step::Need;
        }
        let Some(Reverse((_, cell))) = self.heap.pop() else {
            return Step::End;
        };
        let c = &mut self.cursors[cell];
        let Some(row) = c.rows.pop_front() else {
            return Step::Need;
        };
        match c.rows.front() {
            Some(next) => self.heap.push(Reverse((next.merchant().to_owned(), cell))),
            None => c.wanted = !c.done,
        }
        Step::Row(row)
    }
}

/// Drives a merge: up to `take` rows that `keep` accepts, after passing
/// over `skip` of them. `read` answers the reads the merge waits for,
/// all at once (a backend may send them in one round trip), as (cell,
/// rows) pairs.
pub(crate) async fn run<R, E, F, Fut>(
    mut merge: Merge<R>,
    mut read: F,
    keep: impl Fn(&R) -> bool,
    skip: u64,
    take: usize,
) -> Result<Vec<R>, E>
where
    R: CellRow,
    F: FnMut(Vec<Want>) -> Fut,
    Fut: Future<Output = Result<Vec<(usize, Vec<R>)>, E>>,
{
    let mut skipped = 0u64;
    let mut out = Vec::new();
    while out.len() < take {
        match merge.step() {
            Step::End => break,
            Step::Need => {
                for (cell, rows) in read(merge.wanted()).await? {
                    merge.feed(cell, rows);
                }
            }
            Step::Row(row) if keep(&row) => {
                if skipped < skip {
                    skipped += 1;
                } else {
                    out.push(row);
                }
            }
            Step::Row(_) => {}
        }
    }
    Ok(out)
}

/// [`run`] with a blocking read, one cell at a time.
pub(crate) fn run_blocking<R: CellRow, E>(
    merge: Merge<R>,
    mut read: impl FnMut(&Want) -> Result<Vec<R>, E>,
    keep: impl Fn(&R) -> bool,
    skip: u64,
    take: usize,
) -> Result<Vec<R>, E> {
    let reads = |wants: Vec<Want>| {
        std::future::ready(
            wants
                .iter()
                .map(|w| read(w).map(|rows| (w.cell, rows)))
                .collect::<Result<Vec<_>, E>>(),
        )
    };
    // Every future awaited in `run` is then ready: one poll completes it.
    let mut merged = std::pin::pin!(run(merge, reads, keep, skip, take));
    match merged
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("a merge over ready reads never waits"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl CellRow for String {
        fn merchant(&self) -> &str {
            self
        }
    }

    fn lists() -> Vec<Vec<String>> {
        let mut lists = vec![Vec::new(); 3];
        for i in 0..100 {
            lists[i * 7 % 3].push(format!("M{i:03}"));
        }
        lists
    }

    fn read(lists: &[Vec<String>], w: &Want) -> Result<Vec<String>, ()> {
        Ok(lists[w.cell]
            .iter()
            .filter(|m| w.after.as_ref().is_none_or(|a| *m > a))
            .take(w.limit)
            .cloned()
            .collect())
    }

    #[test]
    fn the_merge_is_every_row_in_order() {
        let lists = lists();
        let all = run_blocking(
            Merge::new(3, None, 10),
            |w| read(&lists, w),
            |_| true,
            0,
            usize::MAX,
        )
        .unwrap();
        let want: Vec<String> = (0..100).map(|i| format!("M{i:03}")).collect();
        assert_eq!(all, want);
        let page = run_blocking(
            Merge::new(3, Some("M050"), 5),
            |w| read(&lists, w),
            |m| m.ends_with('7'),
            2,
            3,
        )
        .unwrap();
        assert_eq!(page, ["M077", "M087", "M097"]);
        let none = run_blocking(Merge::new(0, None, 5), |w| read(&lists, w), |_| true, 0, 5);
        assert_eq!(none, Ok(Vec::new()));
    }
}
