//! The connections: the shared one (standalone: a `ConnectionManager`
//! behind a circuit breaker; cluster: a `ClusterConnection`), the scan
//! read's per-thread connections, and the scan read's budget.
//!
//! The scan read
//! ([`ScanRead::scan_view`](crate::store::roles::ScanRead::scan_view)) on
//! standalone Redis goes through a connection of the calling thread when
//! that thread runs a single-threaded runtime (an HTTP worker): its reader
//! task then runs on the same thread,
//! so a read costs no hand-over to another thread and back. Such a
//! connection is made on the thread's first read (if that fails, the thread
//! reads through the shared one for [`LOCAL_CONN_RETRY`] before trying
//! again), shares the circuit breaker below, and is dropped on a
//! connection-level error (the next read makes a new one).
//!
//! # When Redis is down (standalone)
//!
//! The standalone connection sits behind a circuit breaker. The first request
//! that fails at the connection level (refused, dropped, timed out) marks
//! Redis unreachable; from then on every request fails at once with
//! [`StoreError::Unavailable`] instead of waiting for the manager's
//! reconnection attempts (a scan miss answers 503 in about a millisecond,
//! cached views keep being served by the caller). One background probe sends
//! `PING` every [`RedisOptions::probe_interval`] through the manager, which
//! reconnects by itself; the first answer lets requests through again. Server
//! errors (a script error, `LOADING` while Redis reads its AOF) do not trip
//! the breaker.
//!
//! A hung Redis (stopped, its connections open, nothing answered) is found
//! by time: a request that gets no reply within the response timeout trips
//! the breaker, and the scan read has a much smaller budget of its own
//! ([`RedisOptions::scan_budget`], the service's 100 ms by default,
//! counted from the scan's start ([`crate::store::types::SCAN_STARTED`]), connecting
//! included): it gives up at [`scan_read_limit`] of it (80 ms), so that the
//! scan's 503 is out within the budget, and trips the breaker (if the read
//! itself waited at least a quarter of that: a scan that was late before it
//! read says nothing about Redis). Redis is then known to
//! be down and every request fails at once until the probe's `PING` is
//! answered, which is the moment Redis continues: the probe's first `PING`
//! goes out at once, so a read that was merely slow (an overloaded machine)
//! costs a few milliseconds of refusals, not a probe interval. A write that
//! timed out on this side may still be applied when Redis continues: each
//! is one script or `MULTI`/`EXEC` with its audit entry, so it lands whole
//! or not at all (a script Redis did not know yet is not run at all:
//! `NOSCRIPT`), but the caller was told 503 and cannot know which; it
//! reads before it repeats (deploy/README.md says so to operators). In a
//! cluster the audit entry is a second write, which a timed-out write
//! never sends.
//! A Redis Cluster has no breaker (one master down must not refuse the
//! merchants of the others): there a scan read gives up after the same budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::common::redis_err;
use super::keys::Keys;
use super::options::{check_prefix, RedisOptions};
use crate::model::MerchantId;
use crate::store::roles::ScanRead;
use crate::store::types::StoreResult;

/// The service's default scan budget (`store_budget_ms`): the bound it
/// promises for a scan's 503 while Redis hangs.
pub const SCAN_BUDGET: Duration = Duration::from_millis(100);

/// How long a scan's store read may take within a scan budget of `budget`:
/// the budget less a fifth of it, at most 20 ms, kept for everything else
/// the scan does (verifying, rendering the 503, writing it out), so that
/// the answer is out within the budget.
pub fn scan_read_limit(budget: Duration) -> Duration {
    budget - (budget / 5).min(Duration::from_millis(20))
}

/// How to make a read connection for the calling thread (standalone only;
/// see the module documentation).
pub(super) struct LocalConns {
    /// Unique per store in this process, never reused: tells apart the
    /// connections of several stores used from one thread (tests).
    id: u64,
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
}

thread_local! {
    /// This thread's read connections by store id, or when making one last
    /// failed; a few at most.
    static LOCAL_CONNS: std::cell::RefCell<Vec<(u64, Result<Guarded, std::time::Instant>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Stores with per-thread read connections a thread keeps at once.
const LOCAL_CONNS_KEPT: usize = 4;
/// After failing to make a thread's read connection, reads use the shared
/// one this long before the thread tries again (so a Redis refusing new
/// connections does not cost every read a connect attempt).
const LOCAL_CONN_RETRY: Duration = Duration::from_secs(5);

/// The two connection kinds behind one [`ConnectionLike`].
#[derive(Clone)]
pub(super) enum Conn {
    Single(Guarded),
    Cluster(ClusterConnection),
}

/// The standalone connection manager behind a circuit breaker (see the
/// module documentation).
#[derive(Clone)]
pub(super) struct Guarded {
    manager: ConnectionManager,
    breaker: Arc<Breaker>,
}

struct Breaker {
    /// Whether requests go to Redis (`false` after a connection failure,
    /// until the probe gets an answer).
    up: AtomicBool,
    /// Whether a probe task is running.
    probing: AtomicBool,
    probe_interval: Duration,
    /// Limit for one probe `PING` (reconnection included).
    probe_timeout: Duration,
}

impl Guarded {
    fn new(manager: ConnectionManager, opts: &RedisOptions) -> Self {
        Self {
            manager,
            breaker: Arc::new(Breaker {
                up: AtomicBool::new(true),
                probing: AtomicBool::new(false),
                probe_interval: opts.probe_interval,
                probe_timeout: opts.connect_timeout + opts.response_timeout,
            }),
        }
    }

    /// Refuses at once while Redis is known to be unreachable.
    fn admit(&self) -> RedisResult<()> {
        if self.breaker.up.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(RedisError::from((
                ErrorKind::Io,
                "Redis is unreachable; reconnecting in the background",
            )))
        }
    }

    /// Trips the breaker on a connection-level failure (a reply past the
    /// response timeout is one).
    fn observe<T>(&self, result: &RedisResult<T>) {
        let Err(e) = result else { return };
        if e.is_io_error() || e.is_unrecoverable_error() {
            self.trip(e);
        }
    }

    /// Marks Redis unreachable and starts the probe, if not yet done.
    fn trip(&self, why: &dyn std::fmt::Display) {
        // No runtime to probe from: keep sending requests (each one then
        // waits for the manager's own reconnection).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.breaker.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %why, "Redis unreachable: failing store requests at once until it answers again");
        }
        if !self.breaker.probing.swap(true, Ordering::AcqRel) {
            runtime.spawn(probe(Arc::downgrade(&self.breaker), self.manager.clone()));
        }
    }
}

/// Pings Redis until it answers, then lets requests through again. Ends
/// early when the store is gone.
async fn probe(breaker: std::sync::Weak<Breaker>, mut manager: ConnectionManager) {
    let started = std::time::Instant::now();
    let mut warned = started;
    let mut first = true;
    loop {
        let (interval, limit) = match breaker.upgrade() {
            Some(b) => (b.probe_interval, b.probe_timeout),
            None => return,
        };
        // The first at once: a hung Redis answers it the moment it
        // continues, a merely slow one at once.
        if !std::mem::take(&mut first) {
            tokio::time::sleep(interval).await;
        }
        let ping = ::redis::cmd("PING");
        let answered = matches!(
            tokio::time::timeout(limit, ping.query_async::<()>(&mut manager)).await,
            Ok(Ok(()))
        );
        let Some(breaker) = breaker.upgrade() else {
            return;
        };
        if answered {
            // In this order: a failure right after `up` must find no probe
            // running, so that it starts one.
            breaker.probing.store(false, Ordering::Release);
            breaker.up.store(true, Ordering::Release);
            tracing::info!(
                down_ms = started.elapsed().as_millis() as u64,
                "Redis answers again"
            );
            return;
        }
        if warned.elapsed() > Duration::from_secs(60) {
            tracing::warn!(
                down_s = started.elapsed().as_secs(),
                "Redis still unreachable"
            );
            warned = std::time::Instant::now();
        }
    }
}

impl ConnectionLike for Guarded {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.admit()?;
            let result = self.manager.send_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.admit()?;
            let result = self
                .manager
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.manager.get_db()
    }
}

impl Conn {
    /// Marks Redis unreachable after a request that got no answer in time
    /// (standalone; a cluster has no breaker).
    pub(super) fn trip(&self, why: &dyn std::fmt::Display) {
        if let Conn::Single(g) = self {
            g.trip(why);
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The error of a request that got no answer in time.
pub(super) fn io_timeout() -> RedisError {
    std::io::Error::from(std::io::ErrorKind::TimedOut).into()
}

impl RedisStore {
    /// Connects to one Redis (`redis://HOST:PORT`).
    pub async fn connect(url: &str, opts: RedisOptions) -> anyhow::Result<Self> {
        use anyhow::Context;
        check_prefix(&opts.prefix)?;
        let shown = crate::redact::redact_url(url);
        let client = ::redis::Client::open(url).with_context(|| format!("Redis `{shown}`"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            .set_number_of_retries(opts.retries as usize)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .with_context(|| format!("cannot connect to Redis at {shown}"))?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let local = Arc::new(LocalConns {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client,
            config,
            connect_timeout: opts.connect_timeout,
        });
        let store = Self::over(
            Conn::Single(Guarded::new(manager, &opts)),
            Some(local),
            opts,
        );
        store
            .ping()
            .await
            .with_context(|| format!("Redis at {shown} does not answer"))?;
        store.shard_index_keys().await.with_context(|| {
            format!("cannot bring the store in Redis at {shown} to the current key layout")
        })?;
        store.drop_uscc_sets().await.with_context(|| {
            format!("cannot remove the search index's old credit-code sets in Redis at {shown}")
        })?;
        Ok(store)
    }

    pub(super) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// The connection for a latency-bound read: this thread's own on a
    /// single-threaded runtime (standalone), else the shared one.
    pub(super) async fn read_conn(&self) -> Conn {
        let (Some(local), Conn::Single(shared)) = (&self.local, &self.conn) else {
            return self.conn();
        };
        let single = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !single {
            return self.conn();
        }
        let kept = LOCAL_CONNS.with(|c| {
            c.borrow()
                .iter()
                .find(|(id, _)| *id == local.id)
                .map(|(_, g)| g.clone())
        });
        match kept {
            Some(Ok(g)) => return Conn::Single(g),
            Some(Err(failed)) if failed.elapsed() < LOCAL_CONN_RETRY => return self.conn(),
            _ => {}
        }
        // While Redis is down the shared connection answers at once.
        if shared.admit().is_err() {
            return self.conn();
        }
        let made = tokio::time::timeout(
            local.connect_timeout,
            ConnectionManager::new_with_config(local.client.clone(), local.config.clone()),
        )
        .await;
        let made = match made {
            Ok(Ok(manager)) => Ok(Guarded {
                manager,
                breaker: shared.breaker.clone(),
            }),
            _ => Err(std::time::Instant::now()),
        };
        LOCAL_CONNS.with(|c| {
            let mut c = c.borrow_mut();
            c.retain(|(id, _)| *id != local.id);
            if c.len() >= LOCAL_CONNS_KEPT {
                let _evicted = c.remove(0);
            }
            c.push((local.id, made.clone()));
        });
        match made {
            Ok(g) => Conn::Single(g),
            Err(_) => self.conn(),
        }
    }

    /// Drops this thread's read connection after a connection-level error.
    pub(super) fn drop_read_conn(&self, e: &::redis::RedisError) {
        let Some(local) = &self.local else { return };
        if e.is_io_error() || e.is_unrecoverable_error() || e.is_timeout() {
            LOCAL_CONNS.with(|c| c.borrow_mut().retain(|(id, _)| *id != local.id));
        }
    }
}

pub(super) async fn ping(store: &RedisStore) -> StoreResult<()> {
    ::redis::cmd("PING")
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(redis_err)
}

/// Redis-backed [`Store`](crate::store::roles::Store) (standalone or cluster).
#[derive(Clone)]
pub struct RedisStore {
    pub(super) conn: Conn,
    /// Standalone: what per-thread read connections are made from.
    pub(super) local: Option<Arc<LocalConns>>,
    pub(super) keys: Arc<Keys>,
    pub(super) cluster: bool,
    /// [`scan_read_limit`] of [`RedisOptions::scan_budget`].
    pub(super) scan_read_limit: Duration,
    pub(super) max_changes_listed: u64,
    pub(super) changes_kept: u64,
    pub(super) bulk_min: u64,
    pub(super) sort_bytes: usize,
    /// Set while this process runs a bulk import (one at a time; its state
    /// is in its [`BulkImport`] value).
    pub(super) importing: Arc<std::sync::atomic::AtomicBool>,
}

impl RedisStore {
    /// A store over `conn` (with per-thread read connections from `local`,
    /// standalone), its keys and limits as `opts` says.
    pub(super) fn over(conn: Conn, local: Option<Arc<LocalConns>>, opts: RedisOptions) -> Self {
        let cluster = matches!(conn, Conn::Cluster(_));
        Self {
            conn,
            local,
            keys: Arc::new(Keys {
                prefix: opts.prefix,
                cluster,
            }),
            cluster,
            scan_read_limit: scan_read_limit(opts.scan_budget),
            max_changes_listed: opts.max_changes_listed,
            changes_kept: opts.changes_kept,
            bulk_min: opts.bulk_min,
            sort_bytes: opts.sort_bytes,
            importing: Arc::default(),
        }
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The Redis key of `what` (`merchant`, `records`, `projection`, ...) of a merchant.
    pub fn merchant_key(&self, id: &MerchantId, what: &str) -> String {
        self.keys.merchant(id.as_str(), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_read_leaves_a_fifth_of_the_budget_at_most_20_ms_for_the_rest_of_the_scan() {
        let ms = Duration::from_millis;
        for (budget, read) in [(10, 8), (50, 40), (100, 80), (1000, 980), (10_000, 9980)] {
            assert_eq!(scan_read_limit(ms(budget)), ms(read), "budget {budget} ms");
        }
    }
}
