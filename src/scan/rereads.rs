//! Views read again ahead of their expiry, in the background, at a capped
//! rate: a bounded queue drained by one task, two views per tick (read
//! together, the next tick waiting for them). Many views fall due together
//! (those read in one warm-up, or in the minutes after a restart);
//! spawning a read for each at once ran thousands of store reads and cache
//! inserts beside the scans in the same seconds, and the scans' tail
//! latency grew with them.
//!
//! The task runs on the worker that queued the first view. A thread of its
//! own at the lowest priority was tried: under load it fell behind, views
//! expired, and scans waited for the store instead.
//!
//! Coherence does not depend on it: a change notice drops a view at once,
//! and a view's safety TTL ends it whether or not it was read again. A
//! view the queue has no room for (or could not read in time) expires, and
//! the next scan of its merchant reads the store itself.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

/// How many views may wait to be read again.
const QUEUED: usize = 4096;
/// How often the queue is drained...
const TICK: Duration = Duration::from_millis(1);
/// ...and how many views at most each time: at most 2,000 reads a second,
/// two at a time, so that the workers handle at most two reads' answers
/// in one burst (twenty every 10 ms before; paired runs showed no
/// difference in the scans' tail either way: BENCHMARKS.md, `scan-p99`).
const PER_TICK: usize = 2;

/// The queue of jobs (views to read again); its task starts with the first
/// job, running the reader it is given then.
pub(super) struct Queue<J> {
    sender: Arc<OnceLock<mpsc::Sender<J>>>,
}

impl<J> Default for Queue<J> {
    fn default() -> Self {
        Queue {
            sender: Arc::default(),
        }
    }
}

impl<J> Clone for Queue<J> {
    fn clone(&self) -> Self {
        Queue {
            sender: self.sender.clone(),
        }
    }
}

impl<J: Send + 'static> Queue<J> {
    /// Queues `job`; `false` if the queue is full. The first job starts the
    /// task that runs `reader()` on each.
    pub(super) fn push<R, F>(&self, reader: impl FnOnce() -> R, job: J) -> bool
    where
        R: Fn(J) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUED);
            tokio::spawn(drain(reader(), rx));
            tx
        });
        sender.try_send(job).is_ok()
    }
}

/// Runs the queued jobs, at most [`PER_TICK`] every [`TICK`]: the jobs of a
/// tick together (one after another, a slow store would hold the queue to
/// one read per round trip), the next tick once they are done.
async fn drain<J, R, F>(read: R, mut jobs: mpsc::Receiver<J>)
where
    J: Send + 'static,
    R: Fn(J) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(PER_TICK);
    let mut reads = tokio::task::JoinSet::new();
    loop {
        tick.tick().await;
        if jobs.recv_many(&mut batch, PER_TICK).await == 0 {
            return;
        }
        for job in batch.drain(..) {
            reads.spawn(read(job));
        }
        while reads.join_next().await.is_some() {}
    }
}
