//! # Atomicity and ordering
//!
//! Multi-key writes are Lua scripts, each confined to one slot in a cluster.
//! Standalone Redis has no slot limit, so there the same scripts also take
//! the global audit and change keys: an override, issue or revocation with
//! its audit entry and change notice is then one atomic write, as in the
//! embedded store.
//!
//! - `upsert_merchants`: per merchant atomic (JSON compare, write, membership,
//!   regrade mark). Batches go as scripts of up to [`CHUNK`] merchants of one
//!   slot (cluster) or [`MERCHANT_CHUNK`] of any slots (standalone), many in
//!   flight at once on the multiplexed connection (the same effect as a
//!   pipeline); a script reads the chunk's merchants with one `MGET`, writes
//!   the changed ones with one `MSET` and adds them to each index key with
//!   one `SADD`.
//! - `add_records`: record ids are global; a record id already claimed (by
//!   this or another merchant) is a duplicate, and the first of several
//!   records with one id in a batch wins, as in the embedded store. Records
//!   of one merchant keep their batch order. Standalone: per record atomic,
//!   one script per chunk of [`RECORD_CHUNK`] records claims the new ids in
//!   the record-id sets (one `SMISMEMBER` and one `SADD` per set touched,
//!   not a command per record) and appends each record whose id was new to
//!   its merchant's list and marks the merchant; a claimed id is therefore
//!   always a stored record. Cluster: two steps, each idempotent, because
//!   the owner index of a record id lives in another slot than its
//!   merchant: first the claim (`HSETNX id merchant`; a claim by the same
//!   merchant counts as "maybe not stored yet"), then in the merchant's
//!   slot one script appends each
//!   freshly claimed record, and each record claimed earlier by the same
//!   merchant unless the merchant's list already holds a record with its id
//!   (a run killed between the steps). Two processes importing the same
//!   record at the same moment into a cluster may store it twice.
//! - Bulk mode: see `bulk`.
//! - `put_projections`: per merchant atomic (projection, clearing its regrade
//!   mark, due index). Standalone: one `MULTI`/`EXEC` per chunk of
//!   [`PROJECTION_CHUNK`] merchants of any slots, built (JSON and commands)
//!   on the worker pool while earlier chunks are sent: one `MSET` of the
//!   projections, then per index slot one `SREM` of the marks and one `ZADD`
//!   and one `ZREM` in the due index (plain commands: no Lua, members
//!   grouped by the client), after a small script that notes the chunk in
//!   the change log (the whole chunk is one atomic write; of several
//!   projections of one merchant in a batch the last one counts). Cluster:
//!   scripts of up to [`CHUNK`] merchants of one slot; the notes for
//!   every merchant whose projection landed are written right after (also
//!   when another slot of the batch failed); a crash in between leaves
//!   replicas with the old view until the cache's safety TTL, and the feed
//!   without those grade changes.
//! - `set_override`, `issue_code` (supersede + insert), `revoke_code`: atomic
//!   in the merchant's slot. Standalone: audit entry and change notice in the
//!   same script. Cluster: the audit entry is appended right after the merchant
//!   write commits, then the change notice; if the process dies or the audit
//!   slot's node fails in between, the change stands without its audit entry
//!   and the caller sees an error. `issue_code` claims the serial in the
//!   serial index first (a serial of another merchant is a conflict).
//! - `append_audit`: one MULTI/EXEC in the `{audit}` slot (log + per-target list).
//! - `next_serial`: `INCR`, unique and increasing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ::redis::{Cmd, Pipeline, RedisWrite};
use rayon::prelude::*;

use super::bulk::Bulk;
use super::common::{corrupt, redis_err, to_json};
use super::conn::RedisStore;
use super::keys::{crc16, day_score, slot_of, Keys, RECORD_ID_SETS};
use super::options::CHUNK;
use super::scripts::{numbered, NOTE_PROJECTIONS, SCRIPTS};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, Grade, IssuedCode, Merchant, MerchantId, Override,
    Projection, Record,
};
use crate::store::changes::{ChangeKind, Note};
use crate::store::types::{RecordsAdded, StoreError, StoreResult};

/// written with one command each per script, so bigger chunks mean fewer).
const RECORD_CHUNK: usize = 1000;
/// Merchants per standalone `upsert_merchants` script.
const MERCHANT_CHUNK: usize = 1000;
/// Projections per standalone `put_projections` script.
const PROJECTION_CHUNK: usize = 1000;

/// Standalone: one transaction that writes `projections` (any slots), in
/// order: their notes in the change log ([`NOTE_PROJECTIONS`], which
/// compares their grades with the stored ones), an `MSET` of their JSON,
/// their marks cleared and due entries set or removed with one `SREM`,
/// `ZADD` and `ZREM` per index slot (of several projections of one
/// merchant, the last one's).
fn projections_transaction<'a>(
    keys: &Keys,
    log_args: [i64; 3],
    projections: impl ExactSizeIterator<Item = &'a Projection>,
) -> StoreResult<Pipeline> {
    #[derive(Default)]
    struct Group<'a> {
        clear: Vec<&'a str>,
        due: Vec<(i64, &'a str)>,
        not_due: Vec<&'a str>,
    }
    // Room for the usual projection, so the buffer is not grown and copied
    // as the chunk is written.
    let mut mset = Cmd::with_capacity(1 + 2 * projections.len(), 2048 * projections.len());
    mset.arg("MSET");
    let mut last: HashMap<&str, Option<i64>> = HashMap::with_capacity(projections.len());
    let mut json = Vec::with_capacity(4096);
    // The notes first: their script reads the grades stored before.
    let mut notes = Cmd::new();
    notes.arg("EVAL").arg(NOTE_PROJECTIONS);
    notes.arg(projections.len() + 4);
    let mut note_args = Vec::with_capacity(2 * projections.len());
    for p in projections {
        let id = p.merchant.id.as_str();
        let key = keys.merchant(id, "projection");
        notes.arg(&key);
        mset.arg(key);
        // One buffer for the chunk's JSON: no string per projection.
        json.clear();
        serde_json::to_writer(&mut json, p).map_err(corrupt)?;
        mset.write_arg(&json);
        last.insert(id, p.next_change_at.map(day_score));
        note_args.push((id, p.grade.name()));
    }
    notes.arg(&keys.change_log()).arg(&log_args[..]);
    notes.arg(note_args.len());
    for (id, grade) in note_args {
        notes.arg(id).arg(grade);
    }
    let mut groups: BTreeMap<u16, Group> = BTreeMap::new();
    for (id, score) in last {
        let g = groups.entry(keys.index_slot(slot_of(id))).or_default();
        g.clear.push(id);
        match score {
            Some(s) => g.due.push((s, id)),
            None => g.not_due.push(id),
        }
    }
    // One transaction: the projections, their marks and due entries (plain
    // commands of many members each, no Lua in between) and the change
    // notice land together.
    let mut pipe = ::redis::pipe();
    pipe.atomic().add_command(notes);
    pipe.add_command(mset).ignore();
    for (&slot, g) in &groups {
        if !g.clear.is_empty() {
            pipe.cmd("SREM")
                .arg(keys.index(slot, "dirty"))
                .arg(&g.clear)
                .ignore();
        }
        let due = keys.index(slot, "due");
        if !g.due.is_empty() {
            let cmd = pipe.cmd("ZADD").arg(&due);
            for (score, id) in &g.due {
                cmd.arg(*score).arg(*id);
            }
            cmd.ignore();
        }
        if !g.not_due.is_empty() {
            pipe.cmd("ZREM").arg(&due).arg(&g.not_due).ignore();
        }
    }
    Ok(pipe)
}

/// The start of a record's canonical JSON up to and including its id
/// (`{"id":"..."`), which no other record's canonical JSON starts with.
/// Only ever called with canonical JSON (`Serialize` writes `id` first,
/// without spaces); an error here is a bug, not bad input.
fn id_prefix<'a>(id: &str, json: &'a str) -> StoreResult<&'a str> {
    let quoted = to_json(&id)?;
    let n = r#"{"id":"#.len() + quoted.len();
    match json.get(..n) {
        Some(p) if p.starts_with(r#"{"id":"#) && p.ends_with(quoted.as_str()) => Ok(p),
        _ => Err(StoreError::Corrupt(format!(
            "record {id}: its JSON does not start with its id"
        ))),
    }
}

impl RedisStore {
    /// Standalone scripts also write the global audit and change keys.
    fn one_write(&self) -> bool {
        !self.cluster
    }

    /// Standalone `add_records` of `records[i]` for each `i` in `todo`
    /// (distinct ids): claim and store in one script per chunk. Returns the
    /// indexes of the records stored.
    async fn add_records_standalone(
        &self,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
        mark: bool,
    ) -> StoreResult<Vec<usize>> {
        let keys = &self.keys;
        let stored: Vec<bool> = self
            .in_lanes(
                todo.clone(),
                |&i| slot_of(records[i].merchant.as_str()),
                RECORD_CHUNK,
                |mut conn, chunk| async move {
                    // The id sets this chunk touches, numbered from 1 in KEYS.
                    let (sets, set_of) = numbered(
                        chunk
                            .iter()
                            .map(|&i| crc16(records[i].id.as_bytes()) % RECORD_ID_SETS),
                    );
                    let mut inv = SCRIPTS.add_records.prepare_invoke();
                    inv.arg(if mark { "1" } else { "0" }).arg(sets.len());
                    for &s in &sets {
                        inv.key(keys.record_ids(s));
                    }
                    for (&i, &set) in chunk.iter().zip(&set_of) {
                        let r = &records[i];
                        let m = r.merchant.as_str();
                        inv.key(keys.merchant(m, "records"));
                        if mark {
                            inv.key(keys.index(slot_of(m), "dirty"));
                        }
                        inv.arg(set).arg(&r.id).arg(m).arg(&jsons[i]);
                    }
                    let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(flags.into_iter().map(|f| f == b'1').collect())
                },
            )
            .await
            .into_result()?;
        Ok(todo
            .into_iter()
            .zip(stored)
            .filter_map(|(i, s)| s.then_some(i))
            .collect())
    }

    /// Cluster `add_records` (see [`Self::add_records_standalone`]): claim
    /// each record id in the owner index of its slot, then store the claimed
    /// records in their merchants' slots.
    async fn add_records_cluster(
        &self,
        records: &[Record],
        jsons: &[String],
        todo: Vec<usize>,
        mark: bool,
    ) -> StoreResult<Vec<usize>> {
        let keys = &self.keys;
        let claims: Vec<i64> = self
            .in_lanes(
                todo.clone(),
                |&i| slot_of(&records[i].id),
                CHUNK * 5,
                |mut conn, chunk| async move {
                    let mut inv = SCRIPTS.claim.prepare_invoke();
                    for &i in &chunk {
                        let r = &records[i];
                        inv.key(keys.index(slot_of(&r.id), "record-owner"))
                            .arg(&r.id)
                            .arg(r.merchant.as_str());
                    }
                    inv.invoke_async(&mut conn).await.map_err(redis_err)
                },
            )
            .await
            .into_result()?;
        let claimed: Vec<(usize, i64)> = todo
            .into_iter()
            .zip(claims)
            .filter(|(_, c)| *c != 0)
            .collect();
        let stored: Vec<bool> = self
            .in_lanes(
                claimed.clone(),
                |&(i, _)| slot_of(records[i].merchant.as_str()),
                CHUNK,
                |mut conn, chunk| async move {
                    let mut inv = SCRIPTS.store_records.prepare_invoke();
                    inv.arg(if mark { "1" } else { "0" });
                    for &(i, claim) in &chunk {
                        let r = &records[i];
                        let m = r.merchant.as_str();
                        inv.key(keys.merchant(m, "records"));
                        if mark {
                            inv.key(keys.index(slot_of(m), "dirty"));
                        }
                        inv.arg(if claim == 1 { "1" } else { "2" })
                            .arg(m)
                            .arg(&jsons[i]);
                        if claim == 1 {
                            inv.arg("").arg("");
                        } else {
                            inv.arg(id_prefix(&r.id, &jsons[i])?).arg(&r.id);
                        }
                    }
                    let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                    Ok(flags.into_iter().map(|f| f == b'1').collect())
                },
            )
            .await
            .into_result()?;
        Ok(claimed
            .into_iter()
            .zip(stored)
            .filter_map(|((i, _), s)| s.then_some(i))
            .collect())
    }

    /// Standalone `put_projections`: transactions of [`PROJECTION_CHUNK`]
    /// projections over many slots, one `MSET` and per index slot one `SREM`
    /// and `ZADD`/`ZREM` each, the change notice in the same transaction.
    async fn put_projections_standalone(&self, projections: Vec<Projection>) -> StoreResult<()> {
        let projections = Arc::new(projections);
        let log_args = self.log_args();
        let all = &projections;
        self.in_lanes(
            (0..projections.len()).collect(),
            |&i| slot_of(projections[i].merchant.id.as_str()),
            PROJECTION_CHUNK,
            |mut conn, chunk| {
                let projections = Arc::clone(all);
                let keys = Arc::clone(&self.keys);
                async move {
                    let n = chunk.len();
                    // The JSON and the commands are built on the worker
                    // pool, several chunks at a time, while this task sends
                    // the ones that are ready.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    rayon::spawn(move || {
                        let ps = chunk.iter().map(|&i| &projections[i]);
                        let _ = tx.send(projections_transaction(&keys, log_args, ps));
                    });
                    let pipe = rx.await.map_err(|_| {
                        StoreError::Unavailable("redis: building a projection write failed".into())
                    })??;
                    let (_,): (i64,) = pipe.query_async(&mut conn).await.map_err(redis_err)?;
                    Ok(vec![(); n])
                }
            },
        )
        .await
        .into_result()
        .map(drop)
    }

    /// Appends one audit entry (JSON) to the log and its target's list, atomically.
    async fn push_audit(&self, target: &str, json: &str) -> StoreResult<()> {
        ::redis::pipe()
            .atomic()
            .rpush(self.keys.audit_log(), json)
            .ignore()
            .rpush(self.keys.audit_target(target), json)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    /// Adds the global audit and change keys to a standalone script call.
    fn add_tail_keys(&self, inv: &mut ::redis::ScriptInvocation<'_>, audit_target: &str) {
        inv.key(self.keys.audit_log())
            .key(self.keys.audit_target(audit_target));
        self.add_log_keys(inv);
    }

    /// Claims `field` for `owner` in the owner index of `field`'s slot.
    async fn claim(&self, index: &str, field: &str, owner: &str) -> StoreResult<i64> {
        let mut inv = SCRIPTS.claim.prepare_invoke();
        inv.key(self.keys.index(slot_of(field), index))
            .arg(field)
            .arg(owner);
        let out: Vec<i64> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_err)?;
        out.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("redis: empty claim reply".into()))
    }
}

/// Upserts merchants; in a bulk import (`bulk`) their marks are left to
/// its end.
pub(super) async fn upsert_merchants(
    store: &RedisStore,
    merchants: Vec<Merchant>,
    bulk: Option<&Mutex<Bulk>>,
) -> StoreResult<u64> {
    let items = merchants
        .par_iter()
        .map(|m| Ok((m.id.as_str(), slot_of(m.id.as_str()), to_json(m)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    let keys = &store.keys;
    let mark = bulk.is_none();
    let chunk = if store.cluster { CHUNK } else { MERCHANT_CHUNK };
    let changed = store
        .in_lanes(
            items,
            |it| it.1,
            chunk,
            |mut conn, chunk| async move {
                // The chunk's index slots, numbered from 1 after the
                // merchant keys in KEYS.
                let (slots, group) =
                    numbered(chunk.iter().map(|(_, slot, _)| keys.index_slot(*slot)));
                let mut inv = SCRIPTS.upsert_merchants.prepare_invoke();
                for (id, _, _) in &chunk {
                    inv.key(keys.merchant(id, "merchant"));
                }
                for &slot in &slots {
                    inv.key(keys.index(slot, "merchants"));
                    if mark {
                        inv.key(keys.index(slot, "dirty"));
                    }
                }
                inv.arg(if mark { "1" } else { "0" })
                    .arg(chunk.len())
                    .arg(slots.len());
                for ((id, _, json), g) in chunk.iter().zip(&group) {
                    inv.arg(*id).arg(json).arg(*g);
                }
                if !store.cluster {
                    store.add_log_keys(&mut inv);
                    store.add_log_args(&mut inv);
                }
                let flags: Vec<u8> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                Ok(flags.into_iter().map(|f| f == b'1').collect())
            },
        )
        .await
        .into_result()?;
    if store.cluster {
        let notes: Vec<Note> = merchants
            .iter()
            .zip(&changed)
            .filter(|(_, c)| **c)
            .map(|(m, _)| Note::of(m.id.as_str(), ChangeKind::Merchant))
            .collect();
        store.note(&notes).await?;
    }
    if let Some(bulk) = bulk {
        Bulk::touch(
            bulk,
            merchants
                .iter()
                .zip(&changed)
                .filter(|(_, c)| **c)
                .map(|(m, _)| m.id.as_str()),
        );
    }
    Ok(changed.iter().filter(|c| **c).count() as u64)
}

/// Adds records; in a bulk import (`bulk`) their marks are left to its
/// end, and on standalone Redis the records themselves.
pub(super) async fn add_records(
    store: &RedisStore,
    records: Vec<Record>,
    bulk: Option<&Mutex<Bulk>>,
) -> StoreResult<RecordsAdded> {
    // The first of several records with one id in the batch wins: the
    // others are duplicates before anything is sent.
    let total = records.len() as u64;
    let mut seen: HashSet<&str> = HashSet::with_capacity(records.len());
    let first: Vec<usize> = (0..records.len())
        .filter(|&i| seen.insert(records[i].id.as_str()))
        .collect();
    drop(seen);
    // Each record's canonical JSON (never the bytes it was read from),
    // which starts with its id: see `id_prefix`.
    let jsons: Vec<String> = records
        .par_iter()
        .map(to_json)
        .collect::<StoreResult<_>>()?;
    if let Some(bulk) = bulk.filter(|b| Bulk::sorts_records(b)) {
        let inserted = store
            .accept_bulk_records(bulk, &records, &jsons, first)
            .await?;
        return Ok(RecordsAdded {
            inserted,
            duplicate: total - inserted,
        });
    }
    let mark = bulk.is_none();
    let stored = if store.cluster {
        store
            .add_records_cluster(&records, &jsons, first, mark)
            .await?
    } else {
        store
            .add_records_standalone(&records, &jsons, first, mark)
            .await?
    };
    if let Some(bulk) = bulk {
        Bulk::touch(bulk, stored.iter().map(|&i| records[i].merchant.as_str()));
    }
    let inserted = stored.len() as u64;
    Ok(RecordsAdded {
        inserted,
        duplicate: total - inserted,
    })
}

pub(super) async fn put_projections(
    store: &RedisStore,
    projections: Vec<Projection>,
) -> StoreResult<()> {
    if !store.cluster {
        return store.put_projections_standalone(projections).await;
    }
    let items = projections
        .iter()
        .map(|p| {
            let id = p.merchant.id.as_str();
            let score = p
                .next_change_at
                .map(day_score)
                .map_or(String::new(), |s| s.to_string());
            Ok((id, slot_of(id), to_json(p)?, score, p.grade))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let keys = &store.keys;
    let outcome = store
        .in_lanes(
            items,
            |it| it.1,
            CHUNK,
            |mut conn, chunk| async move {
                let mut inv = SCRIPTS.put_projections.prepare_invoke();
                inv.arg(chunk.len());
                for (id, slot, json, score, grade) in &chunk {
                    inv.key(keys.merchant(id, "projection"))
                        .key(keys.index(*slot, "dirty"))
                        .key(keys.index(*slot, "due"))
                        .arg(*id)
                        .arg(json)
                        .arg(score)
                        .arg(grade.name());
                }
                let before: Vec<String> = inv.invoke_async(&mut conn).await.map_err(redis_err)?;
                Ok(chunk
                    .iter()
                    .zip(before)
                    .map(|(c, b)| (c.0, Grade::from_name(&b), c.4))
                    .collect())
            },
        )
        .await;
    // The notes go out for whatever landed, even if a slot failed.
    let mut done = outcome.done;
    done.sort_by_key(|(i, _)| *i);
    let notes: Vec<Note> = done
        .into_iter()
        .map(|(_, (id, before, after))| Note::projection(id, before, after))
        .collect();
    store.note(&notes).await?;
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub(super) async fn set_override(
    store: &RedisStore,
    id: &MerchantId,
    value: Option<Override>,
    projection: Projection,
    audit: AuditEntry,
) -> StoreResult<()> {
    if projection.merchant.id != *id {
        return Err(StoreError::Conflict(format!(
            "override of {id} with the projection of {}",
            projection.merchant.id
        )));
    }
    let m = id.as_str();
    let slot = slot_of(m);
    let audit_json = to_json(&audit)?;
    let mut inv = SCRIPTS.set_override.prepare_invoke();
    inv.key(store.keys.merchant(m, "override"))
        .key(store.keys.merchant(m, "projection"))
        .key(store.keys.index(slot, "dirty"))
        .key(store.keys.index(slot, "due"))
        .arg(value.as_ref().map(to_json).transpose()?.unwrap_or_default())
        .arg(m)
        .arg(to_json(&projection)?)
        .arg(
            projection
                .next_change_at
                .map(day_score)
                .map_or(String::new(), |s| s.to_string()),
        )
        .arg(&audit_json)
        .arg(store.changes_kept)
        .arg(projection.grade.name());
    store.add_now_args(&mut inv);
    if store.one_write() {
        store.add_tail_keys(&mut inv, &audit.target);
    }
    let before: String = inv
        .invoke_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    if !store.one_write() {
        store.push_audit(&audit.target, &audit_json).await?;
        let grade = projection.grade;
        store
            .note(&[
                Note::projection(m, Grade::from_name(&before), grade),
                Note::of(m, ChangeKind::Override).grade(grade),
            ])
            .await?;
    }
    Ok(())
}

pub(super) async fn next_serial(store: &RedisStore) -> StoreResult<u32> {
    let n: u64 = ::redis::cmd("INCR")
        .arg(store.keys.global("serial", "next"))
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    u32::try_from(n).map_err(|_| StoreError::Conflict("code serials exhausted".into()))
}

pub(super) async fn issue_code(
    store: &RedisStore,
    code: IssuedCode,
    audit: Option<AuditEntry>,
) -> StoreResult<()> {
    let m = code.merchant.as_str();
    let serial = code.serial.to_string();
    let conflict = || StoreError::Conflict(format!("code serial {} already issued", code.serial));
    if store.claim("code-owner", &serial, m).await? == 0 {
        return Err(conflict());
    }
    let audit_json = audit.as_ref().map(to_json).transpose()?;
    let mut inv = SCRIPTS.issue_code.prepare_invoke();
    inv.key(store.keys.merchant(m, "codes"))
        .key(store.keys.merchant(m, "code-status"))
        .arg(&serial)
        .arg(to_json(&code)?)
        .arg(code.status.name())
        .arg(m)
        .arg(audit_json.as_deref().unwrap_or(""));
    store.add_log_args(&mut inv);
    let target = audit.as_ref().map_or("", |a| a.target.as_str());
    if store.one_write() {
        store.add_tail_keys(&mut inv, target);
    }
    let issued: i64 = inv
        .invoke_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    if issued == 0 {
        return Err(conflict());
    }
    if !store.one_write() {
        if let Some(json) = &audit_json {
            store.push_audit(target, json).await?;
        }
        let note = Note::of(m, ChangeKind::CodeIssued).serial(code.serial);
        store.note(&[note]).await?;
    }
    Ok(())
}

pub(super) async fn revoke_code(
    store: &RedisStore,
    serial: u32,
    audit: AuditEntry,
) -> StoreResult<Option<IssuedCode>> {
    let field = serial.to_string();
    let owner: Option<String> = ::redis::cmd("HGET")
        .arg(store.keys.index(slot_of(&field), "code-owner"))
        .arg(&field)
        .query_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let Some(m) = owner else { return Ok(None) };
    let audit_json = to_json(&audit)?;
    let mut inv = SCRIPTS.revoke_code.prepare_invoke();
    inv.key(store.keys.merchant(&m, "codes"))
        .key(store.keys.merchant(&m, "code-status"))
        .arg(&field)
        .arg(&m)
        .arg(&audit_json);
    store.add_log_args(&mut inv);
    if store.one_write() {
        store.add_tail_keys(&mut inv, &audit.target);
    }
    let before: Option<(String, String)> = inv
        .invoke_async(&mut store.conn())
        .await
        .map_err(redis_err)?;
    let Some((json, status)) = before else {
        return Ok(None);
    };
    let before = RedisStore::code_from(&json, Some(status.as_str()).filter(|s| !s.is_empty()))?;
    if !store.one_write() && before.status != CodeStatus::Revoked {
        store.push_audit(&audit.target, &audit_json).await?;
        let note = Note::of(&m, ChangeKind::CodeRevoked).serial(serial);
        store.note(&[note]).await?;
    }
    Ok(Some(before))
}

pub(super) async fn append_audit(store: &RedisStore, entry: AuditEntry) -> StoreResult<()> {
    store.push_audit(&entry.target, &to_json(&entry)?).await
}

pub(super) async fn note_refresh(store: &RedisStore, at: jiff::Timestamp) -> StoreResult<()> {
    ::redis::cmd("SET")
        .arg(store.keys.global("meta", "last-refresh"))
        .arg(at.as_second())
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(redis_err)
}

pub(super) async fn put_token(store: &RedisStore, token: ApiToken) -> StoreResult<()> {
    ::redis::cmd("HSET")
        .arg(store.keys.global("tokens", ""))
        .arg(&token.id)
        .arg(to_json(&token)?)
        .query_async::<()>(&mut store.conn())
        .await
        .map_err(redis_err)
}
