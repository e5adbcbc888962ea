//! Staff sessions: a member of staff logs in with a regulator token and
//! gets a cookie (`ysz_session`) holding a random 256-bit secret. The store
//! (`Documents`, collection `staff_sessions`, so a session works on every
//! replica) keeps the session under the SHA-256 of that secret, never the
//! secret itself, with the token's id, name and scope and when it was last
//! used. Every request checks the token again (revoking it ends its
//! sessions) and the idle time (`session_idle_minutes`). The form token
//! against cross-site requests (`csrf`) is derived from the secret too, so
//! the store holds nothing a request could be forged from.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cookies::{cookie, COOKIE};
use super::errors::PageError;
use super::staff::Staff;
use crate::auth::{Principal, Scope};
use crate::clock;
use crate::model::AuditEntry;
use crate::store::documents::{self, Collection};
use crate::store::{SharedStore, StoreResult};
use crate::web::state::AppState;

/// Where sessions are kept.
pub const SESSIONS: Collection = Collection::new("staff_sessions");

/// A session's last use is written at most this often (seconds): the idle
/// expiry is minutes to hours, and a write per page view is not needed.
const TOUCH_EVERY_SECS: i64 = 60;

/// Expired sessions are swept from the store at most this often per
/// process (seconds), at a login.
const SWEEP_EVERY_SECS: i64 = 600;

/// A session as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    pub token_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
}

fn digest(domain: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0]);
    h.update(secret.as_bytes());
    data_encoding::BASE64URL_NOPAD.encode(&h.finalize())
}

/// The store key of the session whose cookie holds `secret`.
fn key_of(secret: &str) -> String {
    digest("ysz-session", secret)
}

/// The form token of the session whose cookie holds `secret`.
fn csrf_of(secret: &str) -> String {
    digest("ysz-csrf", secret)
}

/// A cookie's secret as it must look: 64 lowercase hex digits.
fn well_formed(secret: &str) -> bool {
    secret.len() == 64
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Opens a session for an authenticated token; returns the cookie's value.
/// Audited as `session.login`.
pub async fn open(state: &AppState, who: &Principal, token_id: &str) -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| PageError::internal(anyhow::anyhow!("no system randomness: {e}")))?;
    let secret = data_encoding::HEXLOWER.encode(&bytes);
    let now = clock::now();
    let session = StoredSession {
        token_id: token_id.to_owned(),
        name: who.name.clone(),
        scope: who.scope.as_string(),
        created_at: now,
        last_seen: now,
    };
    let audit = AuditEntry {
        at: now,
        actor: who.name.clone(),
        action: "session.login".into(),
        target: format!("token:{token_id}"),
        before: serde_json::Value::Null,
        after: serde_json::json!({"scope": session.scope}),
        reason: None,
    };
    let inserted = documents::insert(
        state.store.as_ref(),
        SESSIONS,
        &key_of(&secret),
        &session,
        Some(audit),
    )
    .await?;
    if !inserted {
        // 256 random bits met a live session's: never hand that one out.
        return Err(PageError::internal(anyhow::anyhow!(
            "a new session's key is taken"
        )));
    }
    sweep_now_and_then(&state.store, state.settings.session_idle).await;
    Ok(secret)
}

/// Ends the session of this request, if any; audited as `session.logout`.
pub async fn close(state: &AppState, req: &HttpRequest) -> Result<(), PageError> {
    let Some(secret) = cookie(req, COOKIE).filter(|s| well_formed(s)) else {
        return Ok(());
    };
    let key = key_of(secret);
    let Some(session) =
        documents::get::<StoredSession>(state.store.as_ref(), SESSIONS, &key).await?
    else {
        return Ok(());
    };
    let audit = AuditEntry {
        at: clock::now(),
        actor: session.name.clone(),
        action: "session.logout".into(),
        target: format!("token:{}", session.token_id),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
        reason: None,
    };
    documents::remove(state.store.as_ref(), SESSIONS, &key, Some(audit)).await?;
    Ok(())
}

fn idle_for(session: &StoredSession, now: Timestamp) -> i64 {
    now.as_second() - session.last_seen.as_second()
}

/// The staff member of this request's session, or why there is none.
async fn staff_of(state: &AppState, req: &HttpRequest) -> Result<Staff, PageError> {
    let Some(secret) = cookie(req, COOKIE) else {
        return Err(PageError::login(req, false));
    };
    if !well_formed(secret) {
        return Err(PageError::login(req, true));
    }
    let key = key_of(secret);
    let store = state.store.as_ref();
    let Some(text) = store.document(SESSIONS, &key).await? else {
        return Err(PageError::login(req, true));
    };
    let session: StoredSession = serde_json::from_str(&text)
        .map_err(|e| PageError::internal(anyhow::anyhow!("stored session does not parse: {e}")))?;
    let now = clock::now();
    let idle = state.settings.session_idle.as_secs() as i64;
    let token = store.token(&session.token_id).await?;
    let live_token = token.filter(|t| !t.revoked);
    if idle_for(&session, now) >= idle || live_token.is_none() {
        // Compare-and-swap: a session touched meanwhile is not removed.
        documents::replace::<StoredSession>(store, SESSIONS, &key, text, None, None).await?;
        return Err(PageError::login(req, true));
    }
    let token = live_token.expect("checked above");
    let scope = Scope::parse(&token.scope)
        .map_err(|e| PageError::internal(anyhow::anyhow!("stored token scope: {e}")))?;
    if idle_for(&session, now) >= TOUCH_EVERY_SECS {
        let touched = StoredSession {
            last_seen: now,
            ..session
        };
        // Whoever touches first wins; a logout meanwhile stays a logout.
        documents::replace(store, SESSIONS, &key, text, Some(&touched), None).await?;
    }
    Ok(Staff::new(
        Principal {
            name: token.name,
            scope,
        },
        token.id,
        csrf_of(secret),
    ))
}

impl FromRequest for Staff {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                PageError::internal(anyhow::anyhow!("the app state is not registered"))
            })?;
            staff_of(state, &req).await
        })
    }
}

/// Removes sessions idle past the limit, at most every
/// [`SWEEP_EVERY_SECS`] per process; a failure is logged, not raised (the
/// login it runs in succeeded).
async fn sweep_now_and_then(store: &SharedStore, idle: std::time::Duration) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = clock::now();
    let last = LAST.load(Ordering::Relaxed);
    if now.as_second() - last < SWEEP_EVERY_SECS
        || LAST
            .compare_exchange(last, now.as_second(), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match sweep(store, idle.as_secs() as i64, now).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "expired staff sessions removed"),
        Err(e) => tracing::warn!(error = %e, "cannot sweep expired staff sessions"),
    }
}

/// Removes every session idle for `idle` seconds or more; how many.
pub async fn sweep(store: &SharedStore, idle: i64, now: Timestamp) -> StoreResult<u64> {
    let mut removed = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.documents(SESSIONS, after.as_deref(), 1000).await?;
        let Some((last, _)) = page.last() else {
            return Ok(removed);
        };
        after = Some(last.clone());
        for (key, text) in page {
            let expired = serde_json::from_str::<StoredSession>(&text)
                .map_or(true, |s| idle_for(&s, now) >= idle);
            if expired
                && documents::replace::<StoredSession>(
                    store.as_ref(),
                    SESSIONS,
                    &key,
                    text,
                    None,
                    None,
                )
                .await?
            {
                removed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sweep_removes_the_sessions_idle_too_long_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            std::sync::Arc::new(crate::store::embedded::EmbeddedStore::open(dir.path()).unwrap());
        let now = clock::now();
        let ago = |mins: i64| now - jiff::SignedDuration::from_mins(mins);
        for (key, last_seen) in [("a", ago(500)), ("b", ago(10)), ("c", ago(481))] {
            let s = StoredSession {
                token_id: "0badc0de".into(),
                name: "县局".into(),
                scope: "write".into(),
                created_at: ago(600),
                last_seen,
            };
            documents::put(store.as_ref(), SESSIONS, key, &s, None)
                .await
                .unwrap();
        }
        assert_eq!(sweep(&store, 480 * 60, now).await.unwrap(), 2);
        let left = store.documents(SESSIONS, None, 10).await.unwrap();
        assert_eq!(
            left.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(sweep(&store, 480 * 60, now).await.unwrap(), 0);
    }

    #[test]
    fn the_store_key_and_the_form_token_are_derived_apart_from_the_secret() {
        let secret = "ab".repeat(32);
        assert!(well_formed(&secret));
        let (key, csrf) = (key_of(&secret), csrf_of(&secret));
        assert_ne!(key, csrf);
        assert!(!key.contains(&secret) && !csrf.contains(&secret));
        assert_eq!(key, key_of(&secret), "stable");
        assert_ne!(key, key_of(&"ac".repeat(32)));
        for bad in [
            "",
            "AB".repeat(32).as_str(),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
