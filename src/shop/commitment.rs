//! The quality commitment (质量承诺书, as 江油's vendors sign it): the text
//! a shop reads, and signing it, which becomes a `commitment` record dated
//! that day through the records import (graded at once), so the scan page
//! shows "已签署质量承诺".

use jiff::civil::Date;
use jiff::Timestamp;
use serde_json::json;

use crate::grading::Rules;
use crate::model::{AuditEntry, MerchantId};
use crate::store::Store;

/// The commitment's version: a new text gets a new number.
pub const COMMITMENT_VERSION: u32 = 1;

/// What the shop signs.
pub const COMMITMENT_TEXT: &[&str] = &[
    "本经营者郑重承诺：",
    "一、依法取得并公示营业执照及相关许可证件，亮照亮证经营。",
    "二、严格落实进货查验和索票索证制度，不采购、不销售来源不明、过期、变质或不合格的商品。",
    "三、如实建立进货台账，定期开展自查，发现问题立即整改。",
    "四、明码标价，计量准确，不缺斤短两，不以虚假或引人误解的宣传欺骗消费者。",
    "五、积极处理消费者投诉，配合市场监督管理部门的监督检查和抽检。",
    "六、如违反上述承诺，自愿接受相应处理，并同意将本承诺及履行情况向社会公示。",
];

/// Signs the commitment for `merchant` today: a `commitment` record
/// (`shop-commitment-<merchant>-<YYYYMMDD>`, so signing twice a day makes
/// one record), imported and graded at once; audited as
/// `shop.commitment`. Returns the record id and the merchants regraded.
pub async fn sign(
    store: &dyn Store,
    rules: &Rules,
    merchant: &MerchantId,
    today: Date,
    now: Timestamp,
) -> anyhow::Result<(String, Vec<MerchantId>)> {
    let id = format!("shop-commitment-{merchant}-{}", today.strftime("%Y%m%d"));
    let line = json!({
        "id": id, "merchant": merchant, "kind": "commitment", "date": today,
        "source": super::reviews::SHOP_SOURCE,
        "summary": format!("质量承诺书（第{COMMITMENT_VERSION}版），经营者在线签署"),
    });
    let (new, ids) = super::reviews::import_line(store, rules, &line, &|_| true, today).await?;
    if new {
        store
            .append_audit(AuditEntry {
                at: now,
                actor: format!("shop:{merchant}"),
                action: "shop.commitment".into(),
                target: merchant.to_string(),
                before: serde_json::Value::Null,
                after: json!({"record": id, "version": COMMITMENT_VERSION, "date": today}),
                reason: None,
            })
            .await?;
    }
    Ok((id, ids))
}
