//! The ledger (台账): every merchant a search's filters match, as CSV that
//! spreadsheet programs open as it is (UTF-8 with a byte-order mark,
//! Chinese column names, one line per merchant).
//!
//! Streamed: the store is read in pages of [`PAGE`] merchants in
//! merchant-id order ([`RegulatorQueries::search_after`]), each page
//! written out before the next is read, so memory does not grow with the
//! number of merchants. An error after the first page ends the download
//! early (the status line has gone); the client sees a truncated file.
//!
//! Scope: [`LedgerScope`] is given by the caller (the API's bearer token
//! here; a workbench session can hand in the same), so one handler serves
//! both. The lines are limited to the scope's regions, and personal data
//! (contact name and phone, ID number) is written unmasked only to a scope
//! that may change those merchants (a `write` token of their region);
//! a read-only scope gets the masked forms the public sees, and no ID
//! number. A download with personal data is audited.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::error::ApiError;
use super::extract::Regulator;
use super::filters::{query, SearchQuery};
use super::state::AppState;
use crate::auth::Scope;
use crate::clock;
use crate::model::{china_date, AuditEntry, Merchant, MerchantId, Projection};
use crate::store::query::MerchantQuery;
use crate::store::SharedStore;

/// Merchants read from the store at a time.
const PAGE: usize = 500;
/// Merchant reads in flight for a page's personal data.
const MERCHANT_READS: usize = 8;

/// The column names, in order.
pub const COLUMNS: [&str; 15] = [
    "编号",
    "名称",
    "类型",
    "统一社会信用代码",
    "地址",
    "区划代码",
    "经营类别",
    "联系人",
    "联系电话",
    "身份证号",
    "等级",
    "计算等级",
    "原因",
    "更新时间",
    "下次变化日期",
];

/// What a ledger may hold: the regions (a prefix of region codes, empty
/// for all) and whether personal data is written unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerScope {
    pub region_prefix: String,
    pub personal_data: bool,
}

impl LedgerScope {
    /// A token's (or a session's) scope: a `write` scope covers its
    /// regions with personal data; `read` covers every region without.
    pub fn of(scope: &Scope) -> LedgerScope {
        match scope {
            Scope::Read => LedgerScope {
                region_prefix: String::new(),
                personal_data: false,
            },
            Scope::Write { region_prefix } => LedgerScope {
                region_prefix: region_prefix.clone(),
                personal_data: true,
            },
        }
    }

    /// `query` limited to this scope: its region filter narrowed to the
    /// scope's regions; `Err` with a message when it asks for regions
    /// outside them.
    pub fn limit(&self, mut query: MerchantQuery) -> Result<MerchantQuery, String> {
        let scope = self.region_prefix.as_str();
        match query.region.as_deref() {
            Some(r) if r.starts_with(scope) => {}
            Some(r) if !scope.starts_with(r) => {
                return Err(format!(
                    "region {r} is outside the regions this ledger may cover ({scope})"
                ));
            }
            _ if scope.is_empty() => {}
            _ => query.region = Some(scope.to_owned()),
        }
        Ok(query)
    }
}

/// `GET /api/v1/admin/merchants.csv?q=&grade=&region=&category=&kind=`.
pub async fn merchants_csv(
    state: web::Data<AppState>,
    who: Regulator,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ledger_of_request(&state, &req, &who).await
}

/// The ledger of the search filters in `req`'s query string, within
/// `who`'s scope: the API's and the workbench's download alike.
pub async fn ledger_of_request(
    state: &AppState,
    req: &HttpRequest,
    who: &crate::auth::Principal,
) -> Result<HttpResponse, ApiError> {
    let query = query::<SearchQuery>(req)?.parse(20)?;
    ledger(
        state.store.clone(),
        query,
        LedgerScope::of(&who.scope),
        &who.name,
    )
    .await
}

/// The ledger of `query` within `scope`, for `actor` (a token's or a
/// member of staff's name, for the audit log).
pub async fn ledger(
    store: SharedStore,
    query: MerchantQuery,
    scope: LedgerScope,
    actor: &str,
) -> Result<HttpResponse, ApiError> {
    let query = scope.limit(query).map_err(ApiError::Forbidden)?;
    if scope.personal_data {
        store
            .append_audit(AuditEntry {
                at: clock::now(),
                actor: actor.to_owned(),
                action: "ledger.export".into(),
                target: format!("region:{}", query.region.as_deref().unwrap_or("")),
                before: json!(null),
                after: json!({
                    "q": query.q, "grade": query.grade, "region": query.region,
                    "category": query.category, "kind": query.kind, "personal_data": true,
                }),
                reason: None,
            })
            .await?;
    }
    let today = clock::today();
    let head = header_bytes();
    let pages = futures_util::stream::unfold(
        Some(None),
        move |after: Option<Option<MerchantId>>| {
            let store = store.clone();
            let query = query.clone();
            let scope = scope.clone();
            async move {
                let after = after?;
                match page(&store, &query, &scope, after, today).await {
                    Ok(None) => None,
                    Ok(Some((bytes, last))) => Some((Ok(bytes), Some(Some(last)))),
                    Err(e) => {
                        tracing::error!(error = %e, "ledger: reading the store failed; the download ends here");
                        Some((Err(e), None))
                    }
                }
            }
        },
    );
    let body = futures_util::stream::once(async move { Ok::<_, ApiError>(head) }).chain(pages);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"merchants.csv\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// The byte-order mark and the column names.
fn header_bytes() -> web::Bytes {
    let mut out = Vec::from("\u{feff}".as_bytes());
    let mut w = csv::Writer::from_writer(&mut out);
    // Writing to a Vec cannot fail.
    let _ = w.write_record(COLUMNS);
    let _ = w.flush();
    drop(w);
    web::Bytes::from(out)
}

/// The CSV of the page after `after`, and its last merchant; `None` after the last page.
async fn page(
    store: &SharedStore,
    query: &MerchantQuery,
    scope: &LedgerScope,
    after: Option<MerchantId>,
    today: jiff::civil::Date,
) -> Result<Option<(web::Bytes, MerchantId)>, ApiError> {
    let projections = store.search_after(query, after, PAGE).await?;
    let Some(last) = projections.last().map(|p| p.merchant.id.clone()) else {
        return Ok(None);
    };
    let merchants: Vec<Option<Merchant>> = if scope.personal_data {
        futures_util::stream::iter(projections.iter())
            .map(|p| store.merchant(&p.merchant.id))
            .buffered(MERCHANT_READS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?
    } else {
        vec![None; projections.len()]
    };
    let mut out = Vec::with_capacity(projections.len() * 300);
    let mut w = csv::Writer::from_writer(&mut out);
    for (p, m) in projections.iter().zip(&merchants) {
        w.write_record(line(p, m.as_ref(), today))
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    w.flush().map_err(|e| ApiError::Internal(e.into()))?;
    drop(w);
    Ok(Some((web::Bytes::from(out), last)))
}

/// A text cell a spreadsheet will not take for a formula: one that starts
/// with `=`, `+`, `-`, `@` or a tab gets a leading `'`.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// One merchant's line; `merchant` (the stored merchant, with personal
/// data) only for a scope that may see it.
fn line(p: &Projection, merchant: Option<&Merchant>, today: jiff::civil::Date) -> Vec<String> {
    let m = &p.merchant;
    let (contact, phone, id_number) = match merchant {
        Some(full) => (
            full.contact_name.clone(),
            full.contact_phone.clone(),
            full.id_number.clone(),
        ),
        None => (m.contact.clone(), m.phone.clone(), None),
    };
    let reasons: Vec<String> = p
        .reasons
        .iter()
        .map(|r| format!("{} {}", r.rule, r.text))
        .collect();
    let kind = match m.kind {
        crate::model::MerchantKind::Shop => "店铺",
        crate::model::MerchantKind::Vendor => "流动摊贩",
    };
    let updated = china_date(p.updated_at).to_string();
    vec![
        m.id.to_string(),
        cell(&m.name),
        kind.to_owned(),
        m.uscc.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        cell(&m.address),
        m.region.to_string(),
        cell(&m.categories.join(";")),
        cell(&contact.unwrap_or_default()),
        cell(&phone.unwrap_or_default()),
        id_number.unwrap_or_default(),
        p.effective(today).0.label_zh().to_owned(),
        p.computed_grade.label_zh().to_owned(),
        cell(&reasons.join("；")),
        updated,
        p.next_change_at.map(|d| d.to_string()).unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_narrows_the_region_or_refuses_another() {
        let township = LedgerScope::of(&Scope::parse("write:511504").unwrap());
        let q = |r: Option<&str>| MerchantQuery {
            region: r.map(str::to_owned),
            ..MerchantQuery::default()
        };
        assert_eq!(
            township.limit(q(None)).unwrap().region.as_deref(),
            Some("511504")
        );
        assert_eq!(
            township.limit(q(Some("5115"))).unwrap().region.as_deref(),
            Some("511504")
        );
        assert!(township.limit(q(Some("511502"))).is_err());
        let all = LedgerScope::of(&Scope::Read);
        assert!(!all.personal_data);
        assert_eq!(all.limit(q(None)).unwrap().region, None);
        assert_eq!(
            all.limit(q(Some("51"))).unwrap().region.as_deref(),
            Some("51")
        );
    }

    #[test]
    fn formulas_are_not_formulas() {
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("-3"), "'-3");
        assert_eq!(cell("鑫源超市"), "鑫源超市");
    }
}
