//! What the service owns, in the embedded store: overrides, codes, API
//! tokens and the audit log; each write with its audit entry and change
//! notice in one transaction.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::batch::put_projection;
use super::changes;
use super::db::{code_row, corrupt, from_json, sql, to_json, EmbeddedStore};
use crate::model::{
    ApiToken, AuditEntry, CodeStatus, IssuedCode, MerchantId, Override, Projection,
};
use crate::store::changes::{ChangeKind, Note};
use crate::store::roles::ServiceWrites;
use crate::store::types::{AuditFilter, StoreError, StoreResult};

#[async_trait]
impl ServiceWrites for EmbeddedStore {
    async fn override_of(&self, id: &MerchantId) -> StoreResult<Option<Override>> {
        self.json_row(
            "SELECT json FROM overrides WHERE merchant = ?1",
            id.to_string(),
        )
        .await
    }

    async fn set_override(
        &self,
        id: &MerchantId,
        value: Option<Override>,
        projection: Projection,
        audit: AuditEntry,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.write(move |tx| {
            match &value {
                Some(o) => tx.execute(
                    "INSERT INTO overrides (merchant, json) VALUES (?1, ?2)
                     ON CONFLICT(merchant) DO UPDATE SET json = ?2",
                    params![id.as_str(), to_json(o)?],
                ),
                None => tx.execute("DELETE FROM overrides WHERE merchant = ?1", [id.as_str()]),
            }
            .map_err(sql)?;
            put_projection(tx, &projection)?;
            let note = Note::of(id.as_str(), ChangeKind::Override).grade(projection.grade);
            changes::note(tx, &note, now())?;
            insert_audit(tx, &audit)
        })
        .await
    }

    async fn next_serial(&self) -> StoreResult<u32> {
        self.write(|tx| {
            let n: i64 = tx
                .query_row(
                    "INSERT INTO meta (key, value) VALUES ('serial', 1)
                     ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            u32::try_from(n).map_err(|_| StoreError::Conflict("code serials exhausted".into()))
        })
        .await
    }

    async fn issue_code(&self, code: IssuedCode, audit: Option<AuditEntry>) -> StoreResult<()> {
        self.write(move |tx| {
            let mut previous = Vec::new();
            {
                let mut q = tx
                    .prepare_cached(
                        "SELECT json FROM codes WHERE merchant = ?1 AND status = 'active'",
                    )
                    .map_err(sql)?;
                let rows = q
                    .query_map([code.merchant.as_str()], |r| r.get::<_, String>(0))
                    .map_err(sql)?;
                for row in rows {
                    previous.push(code_row(row.map_err(sql)?)?);
                }
            }
            for mut old in previous {
                old.status = CodeStatus::Superseded;
                tx.execute(
                    "UPDATE codes SET status = 'superseded', json = ?2 WHERE serial = ?1",
                    params![old.serial, to_json(&old)?],
                )
                .map_err(sql)?;
            }
            let inserted = tx
                .execute(
                    "INSERT INTO codes (serial, merchant, status, json) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(serial) DO NOTHING",
                    params![
                        code.serial,
                        code.merchant.as_str(),
                        code.status.name(),
                        to_json(&code)?
                    ],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "code serial {} already issued",
                    code.serial
                )));
            }
            if let Some(a) = &audit {
                insert_audit(tx, a)?;
            }
            let note = Note::of(code.merchant.as_str(), ChangeKind::CodeIssued).serial(code.serial);
            changes::note(tx, &note, now())
        })
        .await
    }

    async fn code(&self, serial: u32) -> StoreResult<Option<IssuedCode>> {
        self.read(move |c| {
            let json: Option<String> = c
                .query_row("SELECT json FROM codes WHERE serial = ?1", [serial], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            json.map(code_row).transpose()
        })
        .await
    }

    async fn codes_of(&self, id: &MerchantId) -> StoreResult<Vec<IssuedCode>> {
        let id = id.clone();
        self.read(move |c| {
            let mut q = c
                .prepare_cached("SELECT json FROM codes WHERE merchant = ?1 ORDER BY serial")
                .map_err(sql)?;
            let rows = q
                .query_map([id.as_str()], |r| r.get::<_, String>(0))
                .map_err(sql)?;
            rows.map(|j| code_row(j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn inactive_codes(&self) -> StoreResult<Vec<(u32, CodeStatus)>> {
        self.read(|c| {
            let mut q = c
                .prepare_cached(
                    "SELECT serial, status FROM codes WHERE status <> 'active' ORDER BY serial",
                )
                .map_err(sql)?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql)?;
            rows.map(|row| {
                let (serial, status) = row.map_err(sql)?;
                let status = CodeStatus::from_name(&status)
                    .ok_or_else(|| corrupt(format!("code status `{status}`")))?;
                Ok((serial, status))
            })
            .collect()
        })
        .await
    }

    async fn revoke_code(&self, serial: u32, audit: AuditEntry) -> StoreResult<Option<IssuedCode>> {
        self.write(move |tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM codes WHERE serial = ?1", [serial], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            let Some(json) = json else { return Ok(None) };
            let before = code_row(json)?;
            if before.status == CodeStatus::Revoked {
                return Ok(Some(before));
            }
            let mut after = before.clone();
            after.status = CodeStatus::Revoked;
            tx.execute(
                "UPDATE codes SET status = 'revoked', json = ?2 WHERE serial = ?1",
                params![serial, to_json(&after)?],
            )
            .map_err(sql)?;
            insert_audit(tx, &audit)?;
            let note = Note::of(before.merchant.as_str(), ChangeKind::CodeRevoked).serial(serial);
            changes::note(tx, &note, now())?;
            Ok(Some(before))
        })
        .await
    }

    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| insert_audit(tx, &entry)).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |c| {
            let mut q = c
                .prepare(
                    "SELECT json FROM audit
                     WHERE (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR actor = ?2)
                       AND (?3 IS NULL OR at >= ?3)
                     ORDER BY seq DESC LIMIT ?4",
                )
                .map_err(sql)?;
            let limit = if filter.limit == 0 { 100 } else { filter.limit } as i64;
            let rows = q
                .query_map(
                    params![
                        filter.target,
                        filter.actor,
                        filter.since.map(|t| t.to_string()),
                        limit
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }

    async fn put_token(&self, token: ApiToken) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO tokens (id, json) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET json = ?2",
                params![token.id, to_json(&token)?],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<ApiToken>> {
        self.json_row("SELECT json FROM tokens WHERE id = ?1", id.to_owned())
            .await
    }

    async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.read(|c| {
            let mut q = c
                .prepare("SELECT json FROM tokens ORDER BY id")
                .map_err(sql)?;
            let rows = q.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
            rows.map(|j| from_json(&j.map_err(sql)?)).collect()
        })
        .await
    }
}

/// Now, in seconds, for the change log.
fn now() -> i64 {
    crate::clock::now().as_second()
}

pub(super) fn insert_audit(tx: &rusqlite::Transaction<'_>, e: &AuditEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit (at, actor, target, json) VALUES (?1, ?2, ?3, ?4)",
        params![e.at.to_string(), e.actor, e.target, to_json(e)?],
    )
    .map_err(sql)?;
    Ok(())
}
