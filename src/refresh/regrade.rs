//! The regrade: the merchants' inputs loaded from the store in batches,
//! graded in parallel (grading is pure), their projections written in
//! large transactions, the three stages overlapping.

use std::sync::Arc;

use anyhow::Context;
use jiff::civil::Date;
use rayon::prelude::*;

use crate::clock;
use crate::grading::{self, Rules};
use crate::model::{Grade, MerchantId, Projection};
use crate::progress::Progress;
use crate::store::{BatchStore, GradingInput, Imported};

use super::options::{StopFlag, Stopped};
use super::summary::Summary;

/// Merchants per regrading batch (read from the store and graded together).
const GRADE_BATCH: usize = 4096;
/// Projections per store write (one transaction), at most.
const WRITE_BATCH: usize = 32 * 1024;
/// Store writes a regrade is cut into at least, unless its writes would
/// then hold fewer than [`GRADE_BATCH`] projections ([`write_batch`]).
const WRITES_PER_REGRADE: usize = 4;
/// The last write of a regrade is cut in two when each half holds at
/// least this many projections.
const LAST_WRITE_MIN: usize = 1024;

/// Projections per store write when `merchants` are regraded: few large
/// transactions (each commit rewrites the pages it touched in the
/// projections' indexes, wherever in them the rows fall), but at least
/// [`WRITES_PER_REGRADE`] of them, so that a small regrade's writes run
/// while its later batches are read and graded, and the store can copy
/// its first commits into place meanwhile, instead of one write and one
/// copy after all the grading.
fn write_batch(merchants: usize) -> usize {
    (merchants / WRITES_PER_REGRADE).clamp(GRADE_BATCH, WRITE_BATCH)
}

/// Cuts the last write of a regrade in two halves (returning the second)
/// when each holds at least [`LAST_WRITE_MIN`]: the store copies the first
/// into place while the second is written, and less is left to copy when
/// the regrade ends.
fn split_last_write<T>(batch: &mut Vec<T>) -> Vec<T> {
    if batch.len() >= 2 * LAST_WRITE_MIN {
        batch.split_off(batch.len() / 2)
    } else {
        Vec::new()
    }
}

/// Recomputes and stores the projections of `ids` as of `as_of`.
pub async fn regrade(
    store: &dyn BatchStore,
    rules: &Rules,
    ids: &[MerchantId],
    as_of: Date,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    regrade_with(store, None, rules, ids, as_of, summary, None, None).await
}

/// [`regrade`] as a three-stage pipeline: load a batch of inputs → grade it
/// in parallel → write its projections; the stages run at the same time on
/// consecutive batches. On a `stop` request, what was graded is written and
/// the rest left due (marked) for the next run. `imported` is the import
/// just before, whose sorted records the store may use.
#[allow(clippy::too_many_arguments)]
pub(super) async fn regrade_with(
    store: &dyn BatchStore,
    imported: Option<Imported>,
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
    let write_batch = write_batch(ids.len());
    let rules = Arc::new(rules.clone());
    let (load_tx, mut load_rx) = tokio::sync::mpsc::channel::<Vec<GradingInput>>(2);
    let (write_tx, mut write_rx) =
        tokio::sync::mpsc::channel::<Vec<(Projection, Option<Grade>)>>(2);
    let loader = async move {
        store
            .stream_grading_inputs(ids.to_vec(), GRADE_BATCH, imported, load_tx)
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
        let mut pending: Vec<(Projection, Option<Grade>)> = Vec::new();
        loop {
            let next = write_rx.recv().await;
            let done = next.is_none();
            if let Some(batch) = next {
                pending.extend(batch);
            }
            // A stop waits for what is graded to be written: a safe point.
            let stopping = stop.is_some_and(|s| s.requested().is_some());
            if pending.len() >= write_batch || ((done || stopping) && !pending.is_empty()) {
                let mut batch = Vec::with_capacity(pending.len());
                for (p, before) in pending.drain(..) {
                    if before != Some(p.grade) {
                        summary.note_change(&p, before);
                    }
                    *summary.by_grade.entry(p.grade).or_default() += 1;
                    summary.regraded += 1;
                    batch.push(p);
                }
                let last = if done {
                    split_last_write(&mut batch)
                } else {
                    Vec::new()
                };
                if sink_tx.send(batch).await.is_err() {
                    break; // the sink failed; its error is returned
                }
                if !last.is_empty() && sink_tx.send(last).await.is_err() {
                    break;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_holds_a_quarter_of_the_regrade_within_bounds() {
        assert_eq!(write_batch(10_544), GRADE_BATCH);
        assert_eq!(write_batch(40_000), 10_000);
        assert_eq!(write_batch(1_000_000), WRITE_BATCH);
    }

    #[test]
    fn the_last_write_is_cut_in_two_halves_in_order() {
        let mut batch: Vec<usize> = (0..2352).collect();
        let last = split_last_write(&mut batch);
        assert_eq!(batch, (0..1176).collect::<Vec<_>>());
        assert_eq!(last, (1176..2352).collect::<Vec<_>>());
        let mut small: Vec<usize> = (0..2 * LAST_WRITE_MIN - 1).collect();
        assert!(split_last_write(&mut small).is_empty());
        assert_eq!(small.len(), 2 * LAST_WRITE_MIN - 1);
    }
}
