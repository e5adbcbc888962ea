//! Views read again ahead of their expiry, in the background, at a capped
//! rate: a bounded queue drained by one task, a few views per tick (read
//! together, the next tick waiting for them). Many views fall due together (those read in one warm-up, or
//! in the minutes after a restart); spawning a read for each at once ran
//! thousands of store reads and cache inserts beside the scans in the same
//! seconds, and the scans' tail latency grew with them.
//!
//! Coherence does not depend on it: a change notice drops a view at once,
//! and a view's safety TTL ends it whether or not it was read again. A
//! view the queue has no room for (or could not read in time) expires, and
//! the next scan of its merchant reads the store itself.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{MerchantView, Scanner};
use crate::model::MerchantId;

/// How many views may wait to be read again.
const QUEUED: usize = 4096;
/// How often the queue is drained...
const TICK: Duration = Duration::from_millis(10);
/// ...and how many views at most each time: at most 2,000 reads a second.
const PER_TICK: usize = 20;

type Job = (MerchantId, Arc<MerchantView>);

/// The queue of views to read again; its task starts with the first view.
#[derive(Clone, Default)]
pub(super) struct Queue {
    sender: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl Queue {
    /// Queues `view` of `id` to be read again by `scanner`; `false` if the
    /// queue is full.
    pub(super) fn push(&self, scanner: &Scanner, id: MerchantId, view: Arc<MerchantView>) -> bool {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUED);
            tokio::spawn(drain(scanner.clone(), rx));
            tx
        });
        sender.try_send((id, view)).is_ok()
    }
}

/// Reads the queued views again, at most [`PER_TICK`] every [`TICK`]: the
/// views of a tick together (one after another, a slow store would hold
/// the queue to one read per round trip), the next tick once they are in.
async fn drain(scanner: Scanner, mut jobs: mpsc::Receiver<Job>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(PER_TICK);
    let mut reads = tokio::task::JoinSet::new();
    loop {
        tick.tick().await;
        if jobs.recv_many(&mut batch, PER_TICK).await == 0 {
            return;
        }
        for (id, old) in batch.drain(..) {
            let scanner = scanner.clone();
            reads.spawn(async move { scanner.reread(&id, &old).await });
        }
        while reads.join_next().await.is_some() {}
    }
}
