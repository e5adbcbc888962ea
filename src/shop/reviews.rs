//! Submissions and their review: a shop files a self-report, a reply or a
//! credit repair application (`shop_reviews`, keyed by a time-ordered id;
//! the pending ones are also listed by region in `review_queue`, which
//! the regulators' queue reads, oldest first); a regulator whose scope
//! covers the merchant accepts or rejects it once (a compare-and-swap on
//! the pending document), and an accepted one becomes a record through
//! the same import as `POST /api/v1/admin/records`, graded at once.
//!
//! A shop's own submissions are found through `shop_files`, one document
//! per merchant (read by key) listing its latest [`MAX_FILED`] review ids.
//! At most [`MAX_PENDING`] may wait at once per merchant.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::review_queue;
use super::submissions::Submission;
use crate::grading::Rules;
use crate::model::{AuditEntry, MerchantId, Record, RecordBody, RegionCode, MAX_TEXT_CHARS};
use crate::store::documents::{self, Collection};
use crate::store::{Store, StoreError};

/// Every submission, keyed by [`new_id`] (time-ordered).
pub const REVIEWS: Collection = Collection::new("shop_reviews");
/// Per merchant, the ids of its latest submissions.
pub const FILES: Collection = Collection::new("shop_files");
/// Submissions a merchant may have waiting at once.
pub const MAX_PENDING: usize = 20;
/// Submissions a shop's page lists (older ones stay in the queue).
pub const MAX_FILED: usize = 50;
/// Longest decision reason, in characters.
pub const MAX_DECISION_CHARS: usize = 500;
/// The `source` of records made from a shop's submissions.
pub const SHOP_SOURCE: &str = "shop";

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Accepted,
    Rejected,
}

impl ReviewStatus {
    pub fn parse(raw: &str) -> Option<ReviewStatus> {
        match raw {
            "pending" => Some(ReviewStatus::Pending),
            "accepted" => Some(ReviewStatus::Accepted),
            "rejected" => Some(ReviewStatus::Rejected),
            _ => None,
        }
    }
}

/// A regulator's decision on a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `accept` or `reject`.
    pub decision: String,
    pub reason: Option<String>,
    pub actor: String,
    pub at: Timestamp,
    /// The record an accepted submission became.
    pub record_id: Option<String>,
}

/// A submission and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub merchant: String,
    pub status: ReviewStatus,
    pub submitted_at: Timestamp,
    pub submission: Submission,
    pub decision: Option<Decision>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Filed {
    /// Oldest first.
    reviews: Vec<String>,
}

/// Why a submission or a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A new review id: the UTC time to the nanosecond, then 32 random bits
/// (`20260301T093015123456789-1a2b3c4d`), so keys sort by submission time.
fn new_id(now: Timestamp) -> Result<String, StoreError> {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(format!(
        "{}{:09}-{}",
        now.strftime("%Y%m%dT%H%M%S"),
        now.subsec_nanosecond(),
        data_encoding::HEXLOWER.encode(&r)
    ))
}

/// Whether `raw` has the shape of a review id (before any store read).
pub fn is_review_id(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() == 33
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            24 => *c == b'-',
            0..=23 => c.is_ascii_digit(),
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// The record kinds a reply may answer.
const ANSWERABLE: [&str; 5] = ["inspection", "sampling", "penalty", "complaint", "list"];

/// Checks a submission against the merchant's records and grading: a
/// reply answers one of its records or a current reason; a repair names
/// a record a repairable rule concerns, not repaired yet.
async fn check_against_records(
    store: &dyn Store,
    rules: &Rules,
    merchant: &MerchantId,
    submission: &Submission,
) -> Result<(), ReviewError> {
    let find = |records: &[Record], id: &str| records.iter().find(|r| r.id == id).cloned();
    match submission {
        Submission::SelfReport { .. } => Ok(()),
        Submission::Reply {
            record_id: Some(id),
            ..
        } => {
            let records = store.records(merchant).await?;
            match find(&records, id) {
                Some(r) if ANSWERABLE.contains(&r.body.kind()) => Ok(()),
                _ => Err(ReviewError::Invalid(format!(
                    "field `record_id`: no inspection, sampling, penalty, complaint or list record `{}` of this merchant",
                    crate::model::truncate(id)
                ))),
            }
        }
        Submission::Reply { rule, .. } => {
            let rule = rule.as_deref().unwrap_or_default();
            let shown = store.projection(merchant).await?.is_some_and(|p| {
                p.reasons
                    .iter()
                    .any(|r| r.rule == rule && r.rule != crate::grading::GREEN_RULE)
            });
            if shown {
                Ok(())
            } else {
                Err(ReviewError::Invalid(format!(
                    "field `rule`: `{}` is not among this merchant's current reasons",
                    crate::model::truncate(rule)
                )))
            }
        }
        Submission::Repair { record_id, .. } => {
            let records = store.records(merchant).await?;
            let Some(record) = find(&records, record_id) else {
                return Err(ReviewError::Invalid(format!(
                    "field `record_id`: no record `{}` of this merchant",
                    crate::model::truncate(record_id)
                )));
            };
            if rules.repair_ends(&record.body).is_empty() {
                return Err(ReviewError::Invalid(format!(
                    "record `{record_id}` cannot be repaired: credit repair applies to a penalty's publicity or an abnormal-list entry; red rules are not repairable"
                )));
            }
            let repaired = records
                .iter()
                .any(|r| matches!(&r.body, RecordBody::Repair { record } if record == record_id));
            if repaired {
                return Err(ReviewError::Conflict(format!(
                    "record `{record_id}` is already repaired"
                )));
            }
            Ok(())
        }
    }
}

/// Files a submission of `merchant` as pending; audited as
/// `shop.submit.<kind>`.
pub async fn submit(
    store: &dyn Store,
    rules: &Rules,
    merchant: &MerchantId,
    submission: Submission,
    now: Timestamp,
) -> Result<Review, ReviewError> {
    check_against_records(store, rules, merchant, &submission).await?;
    let pending = filed(store, merchant)
        .await?
        .iter()
        .filter(|r| r.status == ReviewStatus::Pending)
        .count();
    if pending >= MAX_PENDING {
        return Err(ReviewError::TooMany(format!(
            "{pending} submissions are already waiting for review; wait for a decision"
        )));
    }
    let review = Review {
        id: new_id(now)?,
        merchant: merchant.to_string(),
        status: ReviewStatus::Pending,
        submitted_at: now,
        submission,
        decision: None,
    };
    let audit = AuditEntry {
        at: now,
        actor: format!("shop:{merchant}"),
        action: format!("shop.submit.{}", review.submission.kind()),
        target: merchant.to_string(),
        before: Value::Null,
        after: json!({"review": review.id, "submission": review.submission}),
        reason: None,
    };
    // The queue's entry first: a submission stored is never missing from
    // the queue; an entry whose submission failed is skipped when read.
    let region = store.merchant(merchant).await?.map(|m| m.region);
    if let Some(region) = &region {
        review_queue::add(store, region, &review.id, &queue_entry(&review), false).await?;
    }
    let inserted = documents::insert(store, REVIEWS, &review.id, &review, Some(audit)).await;
    if !matches!(inserted, Ok(true)) {
        if let Some(region) = &region {
            review_queue::remove(store, region, &review.id).await?;
        }
        inserted?;
        return Err(ReviewError::Conflict(
            "a submission with this id exists; try again".into(),
        ));
    }
    note_filed(store, merchant, &review.id).await?;
    Ok(review)
}

fn queue_entry(review: &Review) -> review_queue::Entry {
    review_queue::Entry {
        merchant: review.merchant.clone(),
        submitted_at: review.submitted_at,
    }
}

/// Builds the pending queue's index from every stored submission, once
/// per store (again if its mark is removed). Entries are inserted only
/// where absent, so concurrent builds agree; an entry written for a
/// submission decided meanwhile is dropped when read.
async fn ensure_queue_built(store: &dyn Store) -> Result<(), StoreError> {
    const PAGE: usize = 1_000;
    if review_queue::built(store).await? {
        return Ok(());
    }
    let mut after: Option<String> = None;
    loop {
        let page = documents::page::<Review>(store, REVIEWS, after.as_deref(), PAGE).await?;
        let done = page.len() < PAGE;
        for (id, review) in page {
            after = Some(id);
            if review.status != ReviewStatus::Pending {
                continue;
            }
            let Ok(merchant) = MerchantId::parse(&review.merchant) else {
                continue;
            };
            if let Some(m) = store.merchant(&merchant).await? {
                review_queue::add(store, &m.region, &review.id, &queue_entry(&review), true)
                    .await?;
            }
        }
        if done {
            return review_queue::mark_built(store).await;
        }
    }
}

/// The current region of `merchant` (`None`: gone), read once per call.
async fn region_of(
    store: &dyn Store,
    known: &mut std::collections::HashMap<String, Option<RegionCode>>,
    merchant: &str,
) -> Result<Option<RegionCode>, StoreError> {
    if let Some(r) = known.get(merchant) {
        return Ok(r.clone());
    }
    let region = match MerchantId::parse(merchant) {
        Ok(id) => store.merchant(&id).await?.map(|m| m.region),
        Err(_) => None,
    };
    known.insert(merchant.to_owned(), region.clone());
    Ok(region)
}

/// The pending submissions of merchants in the regions starting with
/// `prefix`, oldest first, from that range of the queue's index (up to
/// `review_queue::MAX_PENDING_READ` entries), and whether the index was
/// read in full. Each entry is checked against its submission (one no
/// longer pending is dropped; one whose submission is missing is skipped,
/// and dropped after `ORPHAN_AFTER_SECS`) and its merchant's region (a
/// merchant that is gone is left out; one that moved takes its entry to
/// its new region).
pub async fn pending(
    store: &dyn Store,
    prefix: &str,
    now: Timestamp,
) -> Result<(Vec<Review>, bool), StoreError> {
    ensure_queue_built(store).await?;
    let (entries, complete) = review_queue::entries(store, prefix).await?;
    let mut regions = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (stored_key, entry) in entries {
        let Some((region, id)) = stored_key.split_once('/') else {
            continue;
        };
        let review = match documents::get::<Review>(store, REVIEWS, id).await? {
            Some(r) if r.status == ReviewStatus::Pending => r,
            Some(_) => {
                // Decided, the entry's removal not done: drop it now.
                review_queue::drop_key(store, &stored_key).await?;
                continue;
            }
            None => {
                let age = now.as_second() - entry.submitted_at.as_second();
                if age > review_queue::ORPHAN_AFTER_SECS {
                    review_queue::drop_key(store, &stored_key).await?;
                }
                continue;
            }
        };
        let Some(current) = region_of(store, &mut regions, &review.merchant).await? else {
            continue;
        };
        if current.as_str() != region {
            // The merchant moved: its entry follows it.
            review_queue::add(store, &current, id, &entry, false).await?;
            review_queue::drop_key(store, &stored_key).await?;
            if !current.as_str().starts_with(prefix) {
                continue;
            }
        }
        out.push(review);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((out, complete))
}

/// Adds `id` to the merchant's list (compare-and-swap, retried).
async fn note_filed(store: &dyn Store, merchant: &MerchantId, id: &str) -> Result<(), StoreError> {
    for _ in 0..8 {
        let text = store.document(FILES, merchant.as_str()).await?;
        let mut filed: Filed = match &text {
            Some(t) => serde_json::from_str(t)
                .map_err(|e| StoreError::Corrupt(format!("shop files of {merchant}: {e}")))?,
            None => Filed::default(),
        };
        filed.reviews.push(id.to_owned());
        let over = filed.reviews.len().saturating_sub(MAX_FILED);
        filed.reviews.drain(..over);
        let wrote = match text {
            Some(old) => {
                documents::replace(store, FILES, merchant.as_str(), old, Some(&filed), None).await?
            }
            None => documents::insert(store, FILES, merchant.as_str(), &filed, None).await?,
        };
        if wrote {
            return Ok(());
        }
    }
    Err(StoreError::Corrupt(format!(
        "shop files of {merchant}: too many concurrent writers"
    )))
}

/// A merchant's latest submissions, newest first.
pub async fn filed(store: &dyn Store, merchant: &MerchantId) -> Result<Vec<Review>, StoreError> {
    let Some(filed) = documents::get::<Filed>(store, FILES, merchant.as_str()).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(filed.reviews.len());
    for id in filed.reviews.iter().rev() {
        if let Some(r) = documents::get::<Review>(store, REVIEWS, id).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// One submission.
pub async fn get(store: &dyn Store, id: &str) -> Result<Option<Review>, StoreError> {
    if !is_review_id(id) {
        return Ok(None);
    }
    documents::get(store, REVIEWS, id).await
}

/// What the regulators' queue lists.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub kind: Option<String>,
    pub status: Option<ReviewStatus>,
    /// The caller's visible region prefix (`""`: all): pending ones are
    /// read from that range of the queue only.
    pub region_prefix: String,
    /// Only ids after this one (the previous page's `next`).
    pub after: Option<String>,
    pub limit: usize,
}

/// Whether `merchant` is known and in a region `visible` accepts, read
/// once per merchant (remembered for up to 10,000 merchants).
async fn in_scope(
    store: &dyn Store,
    seen: &mut std::collections::HashMap<String, bool>,
    merchant: &str,
    visible: &(dyn Fn(&RegionCode) -> bool + Sync),
) -> Result<bool, StoreError> {
    if let Some(v) = seen.get(merchant) {
        return Ok(*v);
    }
    let v = match MerchantId::parse(merchant) {
        Ok(id) => store
            .merchant(&id)
            .await?
            .is_some_and(|m| visible(&m.region)),
        Err(_) => false,
    };
    if seen.len() < 10_000 {
        seen.insert(merchant.to_owned(), v);
    }
    Ok(v)
}

/// Submissions matching `filter` of merchants in the regions `visible`
/// accepts, oldest first, and the cursor of the next page if there may be
/// more. A merchant's region is read once per listing (a submission whose
/// merchant is gone is left out). Pending ones come from the queue
/// (`review_queue`, the range of `filter.region_prefix`); others from the
/// whole collection in key order.
pub async fn list(
    store: &dyn Store,
    filter: &ReviewFilter,
    visible: &(dyn Fn(&RegionCode) -> bool + Sync),
) -> Result<(Vec<Review>, Option<String>), StoreError> {
    const PAGE: usize = 500;
    if filter.status == Some(ReviewStatus::Pending) {
        return list_pending(store, filter, visible).await;
    }
    let mut out = Vec::new();
    let mut after = filter.after.clone();
    let mut seen: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    loop {
        let page = documents::page::<Review>(store, REVIEWS, after.as_deref(), PAGE).await?;
        let done = page.len() < PAGE;
        for (key, review) in page {
            after = Some(key);
            let kind_ok = filter
                .kind
                .as_deref()
                .is_none_or(|k| review.submission.kind() == k);
            if !kind_ok || !filter.status.is_none_or(|s| review.status == s) {
                continue;
            }
            if in_scope(store, &mut seen, &review.merchant, visible).await? {
                out.push(review);
                if out.len() == filter.limit {
                    return Ok((out, after));
                }
            }
        }
        if done {
            return Ok((out, None));
        }
    }
}

/// [`list`] of pending submissions, from the queue.
async fn list_pending(
    store: &dyn Store,
    filter: &ReviewFilter,
    visible: &(dyn Fn(&RegionCode) -> bool + Sync),
) -> Result<(Vec<Review>, Option<String>), StoreError> {
    let (queue, _) = pending(store, &filter.region_prefix, Timestamp::now()).await?;
    let mut regions: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for review in queue {
        let after = filter
            .after
            .as_deref()
            .is_none_or(|a| review.id.as_str() > a);
        let kind_ok = filter
            .kind
            .as_deref()
            .is_none_or(|k| review.submission.kind() == k);
        if !after || !kind_ok {
            continue;
        }
        if out.len() == filter.limit {
            let next = out.last().map(|r: &Review| r.id.clone());
            return Ok((out, next));
        }
        if in_scope(store, &mut regions, &review.merchant, visible).await? {
            out.push(review);
        }
    }
    Ok((out, None))
}

/// A decision as typed (`accept` or `reject`) and its reason: blank is
/// none, a reason is checked like all free text, and one is required to
/// reject (the shop reads it). Shared by the JSON API and the workbench.
pub fn parse_decision(
    decision: Option<&str>,
    reason: Option<&str>,
) -> Result<(bool, Option<String>), ReviewError> {
    let accept = match decision {
        Some("accept") => true,
        Some("reject") => false,
        _ => {
            return Err(ReviewError::Invalid(
                "field `decision`: expected \"accept\" or \"reject\"".into(),
            ))
        }
    };
    let reason = match reason.map(str::trim) {
        None | Some("") => None,
        Some(s) => {
            crate::model::check_text(s, MAX_DECISION_CHARS, crate::model::TextKind::Lines)
                .map_err(|e| ReviewError::Invalid(format!("field `reason`: {e}")))?;
            Some(s.to_owned())
        }
    };
    if !accept && reason.is_none() {
        return Err(ReviewError::Invalid(format!(
            "field `reason`: required to reject (1-{MAX_DECISION_CHARS} characters): the shop reads it"
        )));
    }
    Ok((accept, reason))
}

/// The record an accepted submission becomes (one JSONL line of the
/// records format).
fn record_line(review: &Review, today: Date) -> Value {
    let id = format!("shop-{}", review.id);
    let base = json!({"id": id, "merchant": review.merchant, "source": SHOP_SOURCE});
    let mut line = match &review.submission {
        Submission::SelfReport {
            report_type, date, ..
        } => json!({"kind": "self_report", "date": date, "report_type": report_type,
                    "summary": self_report_summary(&review.submission)}),
        Submission::Reply {
            record_id,
            rule,
            text,
        } => {
            json!({"kind": "reply", "date": today, "record": record_id, "rule": rule, "text": text})
        }
        Submission::Repair { record_id, .. } => {
            json!({"kind": "repair", "date": today, "record": record_id})
        }
    };
    if let (Value::Object(l), Value::Object(b)) = (&mut line, base) {
        l.extend(b);
    }
    line
}

/// A self-report's fields in one line of plain words, for its record.
fn self_report_summary(s: &Submission) -> String {
    let Submission::SelfReport {
        supplier,
        product,
        batch,
        items,
        summary,
        ..
    } = s
    else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(v) = supplier {
        parts.push(format!("供货方：{v}"));
    }
    if let Some(v) = product {
        parts.push(format!("产品：{v}"));
    }
    if let Some(v) = batch {
        parts.push(format!("批次：{v}"));
    }
    if !items.is_empty() {
        let bad: Vec<&str> = items
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.item.as_str())
            .collect();
        parts.push(if bad.is_empty() {
            format!("查验{}项，均合格", items.len())
        } else {
            format!("查验{}项，不合格：{}", items.len(), bad.join("、"))
        });
    }
    if let Some(v) = summary {
        parts.push(v.clone());
    }
    parts.join("；").chars().take(MAX_TEXT_CHARS).collect()
}

/// What a decision changed: the review as decided, and the merchants the
/// record's import regraded.
pub struct Decided {
    pub review: Review,
    pub regraded: Vec<MerchantId>,
}

/// Decides a pending submission once (`accept` or `reject`, with a
/// reason), as `actor` whose scope `may_write` must cover the merchant.
/// Audited as `review.accept` / `review.reject` with the decision; an
/// accepted one is then imported as a record and graded.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    store: &dyn Store,
    rules: &Rules,
    id: &str,
    accept: bool,
    reason: Option<String>,
    actor: &str,
    may_write: &(dyn Fn(&RegionCode) -> bool + Sync),
    today: Date,
    now: Timestamp,
) -> Result<Decided, ReviewError> {
    let not_found =
        || ReviewError::NotFound(format!("no submission `{}`", crate::model::truncate(id)));
    if !is_review_id(id) {
        return Err(not_found());
    }
    let text = store.document(REVIEWS, id).await?.ok_or_else(not_found)?;
    let review: Review = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("review {id}: {e}")))?;
    let merchant_id = MerchantId::parse(&review.merchant)
        .map_err(|e| StoreError::Corrupt(format!("review {id}: {e}")))?;
    let merchant = store.merchant(&merchant_id).await?.ok_or_else(|| {
        ReviewError::NotFound(format!(
            "merchant `{merchant_id}` of submission {id} is gone"
        ))
    })?;
    if !may_write(&merchant.region) {
        return Err(ReviewError::Forbidden(format!(
            "`{actor}` may not decide for merchants in region {}",
            merchant.region
        )));
    }
    if review.status != ReviewStatus::Pending {
        return Err(already(&review));
    }
    let line = accept.then(|| record_line(&review, today));
    let mut decided = review.clone();
    decided.status = if accept {
        ReviewStatus::Accepted
    } else {
        ReviewStatus::Rejected
    };
    decided.decision = Some(Decision {
        decision: if accept { "accept" } else { "reject" }.into(),
        reason: reason.clone(),
        actor: actor.to_owned(),
        at: now,
        record_id: line
            .as_ref()
            .and_then(|l| l["id"].as_str().map(str::to_owned)),
    });
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: format!("review.{}", if accept { "accept" } else { "reject" }),
        target: merchant_id.to_string(),
        before: json!({"review": id, "kind": review.submission.kind(), "status": review.status}),
        after: json!({"review": id, "status": decided.status, "record": decided.decision.as_ref().and_then(|d| d.record_id.clone())}),
        reason,
    };
    if !documents::replace(store, REVIEWS, id, text, Some(&decided), Some(audit)).await? {
        let now_stored = get(store, id).await?.ok_or_else(not_found)?;
        return Err(already(&now_stored));
    }
    // Decided: out of the queue. Should this fail, the entry is dropped
    // when the queue is next read (its submission is no longer pending).
    if let Err(e) = review_queue::remove(store, &merchant.region, id).await {
        tracing::warn!(error = %e, review = id, "cannot remove a decided submission from the queue");
    }
    let mut regraded = Vec::new();
    if let Some(line) = line {
        let (_, ids) = import_line(store, rules, &line, may_write, today)
            .await
            .map_err(|e| e.context(format!("accepted submission {id}")))?;
        regraded = ids;
    }
    Ok(Decided {
        review: decided,
        regraded,
    })
}

/// Imports one record (a JSONL line) through the records import, graded
/// at once: whether it was new, and the merchants regraded.
pub async fn import_line(
    store: &dyn Store,
    rules: &Rules,
    line: &Value,
    may_write: &(dyn Fn(&RegionCode) -> bool + Sync),
    today: Date,
) -> anyhow::Result<(bool, Vec<MerchantId>)> {
    let body = serde_json::to_vec(line)?;
    let (report, ids) =
        crate::refresh::import_records_body(store, rules, &body, "review.jsonl", may_write, today)
            .await?;
    if let Some(reject) = report.rejects.first() {
        anyhow::bail!("the record was refused: {}", reject.reason);
    }
    Ok((report.summary.imported > 0, ids))
}

fn already(review: &Review) -> ReviewError {
    ReviewError::Conflict(format!(
        "submission {} is already {}; a decision is made once",
        review.id,
        match review.status {
            ReviewStatus::Pending => "being decided",
            ReviewStatus::Accepted => "accepted",
            ReviewStatus::Rejected => "rejected",
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_ids_sort_by_time_and_nothing_else_passes_for_one() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let a = new_id(t("2026-03-01T09:30:15.000000001Z")).unwrap();
        let b = new_id(t("2026-03-01T09:30:15.000000002Z")).unwrap();
        let c = new_id(t("2026-03-01T09:30:16Z")).unwrap();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a.starts_with("20260301T093015000000001-"), "{a}");
        for id in [&a, &b, &c] {
            assert!(is_review_id(id), "{id}");
        }
        for bad in [
            "",
            "x",
            &a[..32],
            &a.replace('T', "t"),
            &format!("{a}0"),
            "../../etc/passwd",
        ] {
            assert!(!is_review_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_decision_needs_a_known_word_and_a_reason_to_reject() {
        assert_eq!(parse_decision(Some("accept"), None).unwrap(), (true, None));
        assert_eq!(
            parse_decision(Some("accept"), Some(" ")).unwrap(),
            (true, None)
        );
        assert_eq!(
            parse_decision(Some("reject"), Some(" 照片不清 ")).unwrap(),
            (false, Some("照片不清".into()))
        );
        for (d, r, words) in [
            (None, None, "field `decision`"),
            (Some("Accept"), None, "field `decision`"),
            (Some("reject"), None, "required to reject"),
            (Some("reject"), Some("  "), "required to reject"),
            (Some("reject"), Some("a\u{202e}b"), "field `reason`"),
        ] {
            let e = parse_decision(d, r).unwrap_err().to_string();
            assert!(e.contains(words), "{d:?} {r:?}: {e}");
        }
        let long = "字".repeat(MAX_DECISION_CHARS + 1);
        assert!(parse_decision(Some("accept"), Some(&long)).is_err());
    }
}
