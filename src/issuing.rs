//! Issuing codes: sign the merchant's current grade into a new serial, which
//! supersedes the merchant's previous code.

use anyhow::Context;
use yisaozhi_codes::{Claims, Token};

use crate::clock;
use crate::keys::Keyring;
use crate::model::{AuditEntry, CodeStatus, IssuedCode, MerchantId};
use crate::store::{ServiceWrites, Store};

/// Why a code could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("merchant `{0}` is unknown or has not been graded yet: run a refresh first")]
    NotGraded(MerchantId),
    #[error("no active signing key: run `yisaozhi keys generate`")]
    NoKey,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Issues a new code for `id` with the merchant's live grade, superseding the
/// previous one. `actor` is recorded in the audit log when given.
pub async fn issue(
    store: &dyn Store,
    keys: &Keyring,
    id: &MerchantId,
    validity_days: i32,
    actor: Option<&str>,
) -> Result<IssuedCode, IssueError> {
    let (kid, key) = keys.active().ok_or(IssueError::NoKey)?;
    let projection = store
        .projection(id)
        .await
        .context("reading the projection")?
        .ok_or_else(|| IssueError::NotGraded(id.clone()))?;
    let today = clock::today();
    let (grade, _) = projection.effective(today);
    let expires_at = today
        .checked_add(jiff::Span::new().days(validity_days))
        .context("code expiry overflows the calendar")?;
    let serial = store.next_serial().await.context("allocating a serial")?;
    let claims = Claims {
        kid,
        merchant: id.as_str().to_owned(),
        serial,
        issued: clock::to_day(today).context("today is outside the code calendar")?,
        expires: clock::to_day(expires_at).context("expiry is outside the code calendar")?,
        grade,
    };
    let token: Token = yisaozhi_codes::sign(&claims, key).context("signing the code")?;
    let code = IssuedCode {
        serial,
        merchant: id.clone(),
        kid: kid.0,
        token,
        issued_at: today,
        expires_at,
        printed_grade: grade,
        status: CodeStatus::Active,
    };
    let audit = actor.map(|actor| AuditEntry {
        at: clock::now(),
        actor: actor.to_owned(),
        action: "code.issue".into(),
        target: id.as_str().to_owned(),
        before: serde_json::Value::Null,
        after: serde_json::json!({"serial": serial, "printed_grade": grade, "expires_at": expires_at}),
        reason: None,
    });
    store
        .issue_code(code.clone(), audit)
        .await
        .context("storing the code")?;
    Ok(code)
}

/// The code a merchant's door should show: its active one.
pub async fn active_code(
    store: &dyn ServiceWrites,
    id: &MerchantId,
) -> anyhow::Result<Option<IssuedCode>> {
    let codes = store.codes_of(id).await?;
    Ok(codes
        .into_iter()
        .rev()
        .find(|c| c.status == CodeStatus::Active))
}
