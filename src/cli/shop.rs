//! `merchants access ID`: a shop's one-time activation code, printed for
//! the letter handed to the shop (or `--revoke` to end its access).

use anyhow::Context;

use super::args::MerchantsAction;
use crate::clock;
use crate::model::MerchantId;

/// `merchants access ID [--revoke]`.
pub(super) async fn run(action: MerchantsAction) -> anyhow::Result<()> {
    let MerchantsAction::Access { common, id, revoke } = action;
    let id = MerchantId::parse(&id).map_err(|e| anyhow::anyhow!("merchant id: {e}"))?;
    let store = common.settings()?.open_store().await?;
    store
        .merchant(&id)
        .await?
        .with_context(|| format!("no merchant `{id}`: import or register it first"))?;
    if revoke {
        crate::shop::access::revoke(store.as_ref(), &id, "cli", clock::now()).await?;
        eprintln!("access of merchant {id} revoked: its sessions and tokens have ended");
        return Ok(());
    }
    let code = crate::shop::access::issue_code(store.as_ref(), &id, "cli", clock::now()).await?;
    println!("{code}");
    eprintln!(
        "activation code for merchant {id}: one use, valid {} days; sign in at /shop/login",
        crate::shop::access::CODE_VALID_DAYS
    );
    Ok(())
}
