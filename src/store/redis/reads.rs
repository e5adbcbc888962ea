//! The reads: single keys of a merchant, the grading inputs of a batch,
//! the per-slot index reads of the batch job, codes, the audit log, and
//! the scan read, which has a budget of its own (see `conn`).

use std::collections::{HashMap, HashSet};

use ::redis::Value;
use jiff::civil::Date;

use super::common::{corrupt, from_json, merchant_id, redis_err};
use super::conn::io_timeout;
use super::conn::RedisStore;
use super::keys::{day_score, slot_of};
use super::lanes::string_set;
use super::options::{AUDIT_PAGE, CHUNK};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, Grade, IssuedCode, Merchant, MerchantId, Override,
    Projection, Record,
};
use crate::store::roles::BatchStore;
use crate::store::types::{
    AuditFilter, GradingInput, ScanView, StoreError, StoreResult, StoredProjection,
};

impl RedisStore {
    /// The grading inputs of `ids`, `None` for an unknown merchant, in the
    /// order of `ids`; without `with_records` the records are left empty
    /// (the caller has them).
    pub(super) async fn read_grading_inputs(
        &self,
        ids: &[MerchantId],
        with_records: bool,
    ) -> StoreResult<Vec<Option<GradingInput>>> {
        /// Only the grade of a stored projection.
        #[derive(serde::Deserialize)]
        struct GradeOnly {
            grade: Grade,
        }
        let keys = &self.keys;
        let found = self
            .in_lanes(
                ids.iter().collect(),
                |id| slot_of(id.as_str()),
                CHUNK / 2,
                |mut conn, chunk| async move {
                    // One `MGET` of every merchant's merchant, override and
                    // projection keys (one slot in a cluster: the lane's),
                    // then the record lists if asked for.
                    let mut pipe = ::redis::pipe();
                    let mget = pipe.cmd("MGET");
                    for id in &chunk {
                        let m = id.as_str();
                        mget.arg(keys.merchant(m, "merchant"))
                            .arg(keys.merchant(m, "override"))
                            .arg(keys.merchant(m, "projection"));
                    }
                    if with_records {
                        for id in &chunk {
                            pipe.lrange(keys.merchant(id.as_str(), "records"), 0, -1);
                        }
                    }
                    let mut values: Vec<Value> =
                        pipe.query_async(&mut conn).await.map_err(redis_err)?;
                    let lists = values.split_off(1.min(values.len()));
                    let heads: Vec<Option<String>> =
                        ::redis::from_redis_value(values.pop().unwrap_or(Value::Nil))
                            .map_err(corrupt)?;
                    let lists: Vec<Vec<String>> =
                        ::redis::from_redis_value(Value::Array(lists)).map_err(corrupt)?;
                    if heads.len() != 3 * chunk.len()
                        || (with_records && lists.len() != chunk.len())
                    {
                        return Err(StoreError::Corrupt("redis: unexpected reply length".into()));
                    }
                    let mut lists = lists.into_iter();
                    let mut out = Vec::with_capacity(chunk.len());
                    for three in heads.chunks_exact(3) {
                        let records = lists.next().unwrap_or_default();
                        let (merchant, override_, projection) = (&three[0], &three[1], &three[2]);
                        let Some(merchant) = merchant else {
                            out.push(None);
                            continue;
                        };
                        out.push(Some(GradingInput {
                            merchant: from_json(merchant)?,
                            records: records
                                .iter()
                                .map(|r| from_json(r))
                                .collect::<StoreResult<_>>()?,
                            override_: override_.as_deref().map(from_json).transpose()?,
                            previous: projection
                                .as_deref()
                                .map(|p| from_json::<GradeOnly>(p).map(|g| g.grade))
                                .transpose()?,
                        }));
                    }
                    Ok(out)
                },
            )
            .await
            .into_result()?;
        Ok(found)
    }

    /// The projections of `ids` (`None` where there is none), in order.
    pub(super) async fn projections_of(
        &self,
        ids: &[MerchantId],
    ) -> StoreResult<Vec<Option<Projection>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.keys.merchant(id.as_str(), "projection"))
            .collect();
        let found: Vec<Option<String>> = ::redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        found
            .iter()
            .map(|j| j.as_deref().map(from_json).transpose())
            .collect()
    }

    pub(super) fn code_from(json: &str, status: Option<&str>) -> StoreResult<IssuedCode> {
        let mut code: IssuedCode = from_json(json)?;
        if let Some(s) = status {
            code.status = CodeStatus::from_name(s)
                .ok_or_else(|| StoreError::Corrupt(format!("code status `{s}`")))?;
        }
        Ok(code)
    }
}

pub(super) async fn merchant(store: &RedisStore, id: &MerchantId) -> StoreResult<Option<Merchant>> {
    let json: Option<String> = ::redis::cmd("GET")
        .arg(store.keys.merchant(id.as_str(), "merchant"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    json.as_deref().map(from_json).transpose()
}

pub(super) async fn known_merchants(
    store: &RedisStore,
    ids: Vec<MerchantId>,
) -> StoreResult<Vec<MerchantId>> {
    let keys = &store.keys;
    let exists = store
        .in_lanes(
            ids.iter().collect(),
            |id| slot_of(id.as_str()),
            CHUNK * 5,
            |mut conn, chunk| async move {
                let mut pipe = ::redis::pipe();
                for id in &chunk {
                    pipe.exists(keys.merchant(id.as_str(), "merchant"));
                }
                let found: Vec<bool> = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                Ok(found)
            },
        )
        .await
        .into_result()?;
    Ok(ids
        .into_iter()
        .zip(exists)
        .filter_map(|(id, known)| known.then_some(id))
        .collect())
}

pub(super) async fn records(store: &RedisStore, id: &MerchantId) -> StoreResult<Vec<Record>> {
    let rows: Vec<String> = ::redis::cmd("LRANGE")
        .arg(store.keys.merchant(id.as_str(), "records"))
        .arg(0)
        .arg(-1)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    rows.iter().map(|j| from_json(j)).collect()
}

pub(super) async fn projection(
    store: &RedisStore,
    id: &MerchantId,
) -> StoreResult<Option<Projection>> {
    let json: Option<String> = ::redis::cmd("GET")
        .arg(store.keys.merchant(id.as_str(), "projection"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    json.as_deref().map(from_json).transpose()
}

pub(super) async fn due_for_regrade(
    store: &RedisStore,
    as_of: Date,
) -> StoreResult<Vec<MerchantId>> {
    store.recover_bulk().await?;
    let keys = &store.keys;
    let max = day_score(as_of);
    let per_slot = store
        .per_slot(
            |slot, pipe| {
                pipe.smembers(keys.index(slot, "dirty"));
                pipe.cmd("ZRANGEBYSCORE")
                    .arg(keys.index(slot, "due"))
                    .arg("-inf")
                    .arg(max);
            },
            string_set,
        )
        .await?;
    let mut ids = per_slot
        .into_iter()
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|s| merchant_id(&s))
        .collect::<StoreResult<Vec<_>>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) async fn grading_inputs(
    store: &RedisStore,
    ids: Vec<MerchantId>,
) -> StoreResult<Vec<GradingInput>> {
    let found = store.read_grading_inputs(&ids, true).await?;
    Ok(found.into_iter().flatten().collect())
}

pub(super) async fn all_merchant_ids(store: &RedisStore) -> StoreResult<Vec<MerchantId>> {
    let keys = &store.keys;
    let per_slot = store
        .per_slot(
            |slot, pipe| {
                pipe.smembers(keys.index(slot, "merchants"));
            },
            string_set,
        )
        .await?;
    let mut ids = per_slot
        .into_iter()
        .flatten()
        .map(|s| merchant_id(&s))
        .collect::<StoreResult<Vec<_>>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) async fn projections_page(
    store: &RedisStore,
    after: Option<MerchantId>,
    limit: usize,
) -> StoreResult<Vec<Projection>> {
    let ids: Vec<MerchantId> = store
        .all_merchant_ids()
        .await?
        .into_iter()
        .filter(|id| after.as_ref().is_none_or(|a| id > a))
        .collect();
    let mut out = Vec::new();
    for window in ids.chunks(limit.clamp(1, 1000)) {
        for p in store.projections_of(window).await?.into_iter().flatten() {
            if out.len() == limit {
                return Ok(out);
            }
            out.push(p);
        }
    }
    Ok(out)
}

pub(super) async fn for_each_projection(
    store: &RedisStore,
    each: &mut (dyn FnMut(Projection) + Send),
) -> StoreResult<()> {
    let ids = store.all_merchant_ids().await?;
    for window in ids.chunks(1000) {
        for p in store.projections_of(window).await?.into_iter().flatten() {
            each(p);
        }
    }
    Ok(())
}

pub(super) async fn override_of(
    store: &RedisStore,
    id: &MerchantId,
) -> StoreResult<Option<Override>> {
    let json: Option<String> = ::redis::cmd("GET")
        .arg(store.keys.merchant(id.as_str(), "override"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    json.as_deref().map(from_json).transpose()
}

pub(super) async fn code(store: &RedisStore, serial: u32) -> StoreResult<Option<IssuedCode>> {
    let field = serial.to_string();
    let owner: Option<String> = ::redis::cmd("HGET")
        .arg(store.keys.index(slot_of(&field), "code-owner"))
        .arg(&field)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let Some(m) = owner else { return Ok(None) };
    let (json, status): (Option<String>, Option<String>) = ::redis::pipe()
        .hget(store.keys.merchant(&m, "codes"), &field)
        .hget(store.keys.merchant(&m, "code-status"), &field)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    json.map(|j| RedisStore::code_from(&j, status.as_deref()))
        .transpose()
}

pub(super) async fn inactive_codes(store: &RedisStore) -> StoreResult<Vec<(u32, CodeStatus)>> {
    // Only the merchants that own a code: the values of the serial →
    // merchant index.
    let keys = &store.keys;
    let owners = store
        .per_slot(
            |slot, pipe| {
                pipe.hvals(keys.index(slot, "code-owner"));
            },
            string_set,
        )
        .await?;
    let mut ids = owners
        .into_iter()
        .flatten()
        .map(|s| merchant_id(&s))
        .collect::<StoreResult<Vec<_>>>()?;
    ids.sort_unstable();
    ids.dedup();
    crate::store::roles::inactive_codes_of(store, ids).await
}

pub(super) async fn codes_of(store: &RedisStore, id: &MerchantId) -> StoreResult<Vec<IssuedCode>> {
    let (codes, statuses): (HashMap<String, String>, HashMap<String, String>) = ::redis::pipe()
        .hgetall(store.keys.merchant(id.as_str(), "codes"))
        .hgetall(store.keys.merchant(id.as_str(), "code-status"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let mut out = codes
        .iter()
        .map(|(serial, json)| RedisStore::code_from(json, statuses.get(serial).map(String::as_str)))
        .collect::<StoreResult<Vec<_>>>()?;
    out.sort_by_key(|c| c.serial);
    Ok(out)
}

pub(super) async fn scan_view(
    store: &RedisStore,
    id: &MerchantId,
) -> StoreResult<Option<ScanView>> {
    // One round trip (both keys are in the merchant's slot), and the
    // codes' statuses only, not their JSON; connecting included, within
    // the scan's budget.
    let read = async {
        ::redis::pipe()
            .get(store.keys.merchant(id.as_str(), "projection"))
            .hgetall(store.keys.merchant(id.as_str(), "code-status"))
            .query_async(&mut store.read_conn().await)
            .await
    };
    let now = tokio::time::Instant::now();
    let started = crate::store::types::SCAN_STARTED
        .try_with(|t| *t)
        .unwrap_or(now);
    let (json, statuses): (Option<String>, Vec<(String, String)>) =
        match tokio::time::timeout_at(started + store.scan_read_limit, read).await {
            Ok(read) => read.map_err(|e| {
                store.drop_read_conn(&e);
                redis_err(e)
            })?,
            Err(_) => {
                let why = format!(
                    "no answer within {} ms of the scan's start",
                    store.scan_read_limit.as_millis()
                );
                // Redis had its share of the time, not a scan that was
                // already late (a stalled process): it is down.
                if now.elapsed() >= store.scan_read_limit / 4 {
                    store.conn.trip(&why);
                    store.drop_read_conn(&io_timeout());
                }
                return Err(StoreError::Unavailable(format!("redis: {why}")));
            }
        };
    let Some(json) = json else {
        return Ok(None);
    };
    let codes = statuses
        .iter()
        .map(|(serial, status)| {
            let serial = serial
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("code serial `{serial}`")))?;
            let status = CodeStatus::from_name(status)
                .ok_or_else(|| StoreError::Corrupt(format!("code status `{status}`")))?;
            Ok((serial, status))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(ScanView {
        projection: StoredProjection::Json(json),
        codes,
    }))
}

pub(super) async fn audit(store: &RedisStore, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    let key = match &filter.target {
        Some(t) => store.keys.audit_target(t),
        None => store.keys.audit_log(),
    };
    let mut conn = store.conn();
    let len: isize = ::redis::cmd("LLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .map_err(redis_err)?;
    let mut out = Vec::new();
    let mut end = len - 1;
    while end >= 0 && out.len() < limit {
        let start = (end - AUDIT_PAGE + 1).max(0);
        let rows: Vec<String> = ::redis::cmd("LRANGE")
            .arg(&key)
            .arg(start)
            .arg(end)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        for row in rows.iter().rev() {
            let e: AuditEntry = from_json(row)?;
            let keep = filter.actor.as_ref().is_none_or(|a| *a == e.actor)
                && filter.since.is_none_or(|s| e.at >= s)
                && filter.target.as_ref().is_none_or(|t| *t == e.target);
            if keep {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        end = start - 1;
    }
    Ok(out)
}

pub(super) async fn tokens(store: &RedisStore) -> StoreResult<Vec<ApiToken>> {
    let all: HashMap<String, String> = ::redis::cmd("HGETALL")
        .arg(store.keys.global("tokens", ""))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let mut out = all
        .values()
        .map(|j| from_json::<ApiToken>(j))
        .collect::<StoreResult<Vec<_>>>()?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub(super) async fn last_refresh(store: &RedisStore) -> StoreResult<Option<jiff::Timestamp>> {
    let secs: Option<i64> = ::redis::cmd("GET")
        .arg(store.keys.global("meta", "last-refresh"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    Ok(secs.and_then(|s| jiff::Timestamp::from_second(s).ok()))
}

pub(super) async fn token(store: &RedisStore, id: &str) -> StoreResult<Option<ApiToken>> {
    let json: Option<String> = ::redis::cmd("HGET")
        .arg(store.keys.global("tokens", ""))
        .arg(id)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    json.as_deref().map(from_json).transpose()
}
