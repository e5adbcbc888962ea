//! How a batch goes over the multiplexed connection: split into lanes by
//! slot (a lane runs its chunks in order, lanes run concurrently, so items
//! of one slot keep their order and a cluster chunk never crosses slots),
//! and the batch-job reads of one value per index slot.

use std::collections::BTreeMap;
use std::future::Future;

use ::redis::{Pipeline, Value};
use futures_util::stream::{self, StreamExt};

use super::common::{corrupt, redis_err};
use super::conn::Conn;
use super::conn::RedisStore;
use crate::store::types::{StoreError, StoreResult};

/// Requests in flight at once for a batch on the multiplexed connection.
pub(super) const PARALLEL: usize = 64;
/// About how many items the requests of a batch in flight carry at most:
/// enough to keep Redis busy, few enough that a request queued behind the
/// others gets its answer well within the response timeout.
const ITEMS_IN_FLIGHT: usize = 8000;

/// Requests in flight at once for chunks of `chunk` items.
fn in_flight(chunk: usize) -> usize {
    (ITEMS_IN_FLIGHT / chunk.max(1)).clamp(2, PARALLEL)
}
/// Standalone batches are split into this many lanes by slot; each lane runs
/// its chunks in order, lanes run concurrently.
const STANDALONE_LANES: u16 = 32;

/// What a batch run over lanes achieved: the results that landed (by input
/// index) and the first failure, if any.
pub(super) struct Outcome<R> {
    pub(super) done: Vec<(usize, R)>,
    pub(super) error: Option<StoreError>,
}

impl<R> Outcome<R> {
    /// All results in input order, or the failure.
    pub(super) fn into_result(self) -> StoreResult<Vec<R>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut done = self.done;
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, r)| r).collect())
    }
}

impl RedisStore {
    /// Runs `call` over `items` in chunks of at most `chunk`: items of one
    /// slot stay in input order and in one lane (run one chunk after another);
    /// lanes run concurrently. In a cluster a lane is one slot, so a chunk
    /// never crosses slots.
    pub(super) async fn in_lanes<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        slot: impl Fn(&T) -> u16,
        chunk: usize,
        call: F,
    ) -> Outcome<R>
    where
        T: Send,
        R: Send,
        F: Fn(Conn, Vec<T>) -> Fut + Sync,
        Fut: Future<Output = StoreResult<Vec<R>>> + Send,
    {
        let mut lanes: BTreeMap<u16, Vec<(usize, T)>> = BTreeMap::new();
        for (i, t) in items.into_iter().enumerate() {
            let s = slot(&t);
            let lane = if self.cluster {
                s
            } else {
                s % STANDALONE_LANES
            };
            lanes.entry(lane).or_default().push((i, t));
        }
        let call = &call;
        let runs: Vec<Outcome<R>> = stream::iter(lanes.into_values())
            .map(|lane| {
                let conn = self.conn();
                async move {
                    let mut done = Vec::with_capacity(lane.len());
                    // Chunks of equal size (at most `chunk`): 1,024 items go
                    // as two of 512, not as 1,000 and a straggler of 24.
                    let parts = lane.len().div_ceil(chunk.max(1));
                    let size = lane.len().div_ceil(parts.max(1));
                    let mut rest = lane.into_iter().peekable();
                    while rest.peek().is_some() {
                        let (idx, part): (Vec<usize>, Vec<T>) = rest.by_ref().take(size).unzip();
                        match call(conn.clone(), part).await {
                            Ok(rs) if rs.len() == idx.len() => done.extend(idx.into_iter().zip(rs)),
                            Ok(_) => {
                                return Outcome {
                                    done,
                                    error: Some(StoreError::Corrupt(
                                        "redis: unexpected reply length".into(),
                                    )),
                                }
                            }
                            Err(e) => {
                                return Outcome {
                                    done,
                                    error: Some(e),
                                }
                            }
                        }
                    }
                    Outcome { done, error: None }
                }
            })
            .buffer_unordered(in_flight(chunk))
            .collect()
            .await;
        let mut all = Outcome {
            done: Vec::new(),
            error: None,
        };
        for run in runs {
            all.done.extend(run.done);
            if all.error.is_none() {
                all.error = run.error;
            }
        }
        all
    }

    /// One value per index slot ([`Keys::index_slot`]), from commands that
    /// `cmds` builds for each.
    ///
    /// Standalone: one pipeline of the 64 index slots. Cluster: one pipeline per master
    /// and 1024 slots, routed by `CLUSTER SLOTS`; if that fails (say, during
    /// resharding), one pipeline per slot.
    pub(super) async fn per_slot<R, F>(
        &self,
        cmds: F,
        parse: fn(Vec<Value>) -> StoreResult<R>,
    ) -> StoreResult<Vec<R>>
    where
        R: Send,
        F: Fn(u16, &mut Pipeline) + Sync,
    {
        let cmds = &cmds;
        if let Conn::Cluster(conn) = &self.conn {
            match self.per_slot_by_master(conn, cmds, parse).await {
                Ok(out) => return Ok(out),
                Err(e) => {
                    tracing::debug!(error = %e, "per-master scan failed; scanning slot by slot")
                }
            }
        }
        let chunk = if self.cluster { 1 } else { 512 };
        self.in_lanes(
            (0..self.keys.index_slots()).collect(),
            |s| *s,
            chunk,
            |mut conn, slots| async move {
                let (pipe, sizes) = slot_pipeline(&slots, cmds);
                let values: Vec<Value> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                split_values(values, sizes, parse)
            },
        )
        .await
        .into_result()
    }
}

/// A pipeline of the commands for `slots`, and how many each slot has.
pub(super) fn slot_pipeline(
    slots: &[u16],
    cmds: &(impl Fn(u16, &mut Pipeline) + ?Sized),
) -> (Pipeline, Vec<usize>) {
    let mut pipe = ::redis::pipe();
    let mut sizes = Vec::with_capacity(slots.len());
    for &s in slots {
        let before = pipe.len();
        cmds(s, &mut pipe);
        sizes.push(pipe.len() - before);
    }
    (pipe, sizes)
}

/// Splits a pipeline's replies back into one parsed value per slot.
pub(super) fn split_values<R>(
    values: Vec<Value>,
    sizes: Vec<usize>,
    parse: fn(Vec<Value>) -> StoreResult<R>,
) -> StoreResult<Vec<R>> {
    if values.len() != sizes.iter().sum::<usize>() {
        return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
    }
    let mut values = values.into_iter();
    sizes
        .into_iter()
        .map(|n| parse(values.by_ref().take(n).collect()))
        .collect()
}

pub(super) fn string_set(values: Vec<Value>) -> StoreResult<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        let members: Vec<String> = ::redis::from_redis_value(v).map_err(corrupt)?;
        out.extend(members);
    }
    Ok(out)
}
