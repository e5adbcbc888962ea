//! `tokens`: regulator API tokens, shown once and stored as hashes.

use anyhow::Context;

use crate::clock;

use super::args::TokensAction;

/// `tokens add|list|revoke`.
pub(super) async fn run(action: TokensAction) -> anyhow::Result<()> {
    match action {
        TokensAction::Add {
            common,
            name,
            scope,
        } => {
            let settings = common.settings()?;
            let scope = crate::auth::Scope::parse(&scope).map_err(anyhow::Error::msg)?;
            let (plain, stored) =
                crate::auth::new_token(&name, &scope, clock::now()).map_err(anyhow::Error::msg)?;
            let store = settings.open_store().await?;
            store.put_token(stored).await?;
            println!("{plain}");
            eprintln!(
                "token for `{name}` (scope {}): shown once, stored only as a hash",
                scope.as_string()
            );
            Ok(())
        }
        TokensAction::List { common } => {
            let store = common.settings()?.open_store().await?;
            println!(
                "{:<10} {:<20} {:<14} {:<22} revoked",
                "id", "name", "scope", "created"
            );
            for t in store.tokens().await? {
                println!(
                    "{:<10} {:<20} {:<14} {:<22} {}",
                    t.id,
                    t.name,
                    t.scope,
                    t.created_at.to_string(),
                    if t.revoked { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        TokensAction::Revoke { common, id } => {
            let store = common.settings()?.open_store().await?;
            let mut token = store.token(&id).await?.with_context(|| {
                format!(
                    "no token with id `{}`: see `yisaozhi tokens list`",
                    crate::model::truncate(&id)
                )
            })?;
            token.revoked = true;
            store.put_token(token.clone()).await?;
            store
                .append_audit(crate::model::AuditEntry {
                    at: clock::now(),
                    actor: "cli".into(),
                    action: "token.revoke".into(),
                    target: format!("token:{}", token.id),
                    before: serde_json::json!({"name": token.name, "revoked": false}),
                    after: serde_json::json!({"name": token.name, "revoked": true}),
                    reason: None,
                })
                .await?;
            println!("token {} ({}) revoked", token.id, token.name);
            Ok(())
        }
    }
}
