//! A merchant's cached view ([`MerchantView`]): its projection as the scan
//! needs it, its codes' statuses, the token texts checked against it and
//! the answers memoised beside each; and what a scan is judged to be
//! ([`Status`], [`Verified`]). Nothing here reads the store or the clock.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::Date;
use yisaozhi_codes::Claims;

use crate::model::{CodeStatus, MerchantId, Projection};
use crate::store::{parse_projection_json, StoreError};
use crate::tips::Audience;

/// What a scanned code turned out to be (CONTRACT §2 statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Forged,
    Malformed,
    Revoked,
    Superseded,
    Expired,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Forged => "forged",
            Status::Malformed => "malformed",
            Status::Revoked => "revoked",
            Status::Superseded => "superseded",
            Status::Expired => "expired",
        }
    }

    /// Whether the page may show the merchant behind the code. Forged and
    /// malformed codes name nobody we can trust; a revoked code is withdrawn.
    pub fn shows_merchant(self) -> bool {
        matches!(self, Status::Valid | Status::Superseded | Status::Expired)
    }
}

/// Everything a scan answer needs, in one cacheable value per merchant.
#[derive(Debug)]
pub struct MerchantView {
    /// The projection's JSON as stored, when the store read it as such: a
    /// scan answer without an override carries it as is, and the projection
    /// is parsed from it only when something needs its fields.
    json: Option<Box<str>>,
    /// What every answer needs of the projection (read first, cheaply).
    pub(super) grade_fields: LiveGradeFields,
    projection: std::sync::OnceLock<Projection>,
    pub codes: HashMap<u32, CodeStatus>,
    /// Token texts of this merchant whose signature was checked, with their
    /// claims and the answers to their scans memoised today: a warm scan
    /// compares the text instead of looking it up in the verified-token
    /// cache, and finds its answer beside it. At most [`CHECKED_PER_VIEW`]
    /// (a merchant has a handful of codes; forged texts are never kept
    /// here). A new view (after any change) starts without answers, so none
    /// goes stale.
    checked: std::sync::Mutex<Vec<Checked>>,
    /// Whether the view is kept (in the view cache) beyond the request that
    /// read it: only then are answers and checked texts worth keeping.
    kept: bool,
    /// When the view was read from the store.
    pub(super) read_at: std::time::Instant,
    /// Set once a read ahead of the view's expiry has been started.
    pub(super) rereading: std::sync::atomic::AtomicBool,
}

/// The fields of a projection every scan answer needs: enough for the live
/// grade. Reading it from the JSON also checks the JSON is well formed.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LiveGradeFields {
    pub(super) computed_grade: crate::model::Grade,
    #[serde(rename = "override")]
    override_: Option<crate::model::Override>,
    /// Which consumer tips apply: the merchant's region and categories.
    merchant: Audience,
}

/// How many checked token texts a view keeps (oldest dropped first).
const CHECKED_PER_VIEW: usize = 8;

/// A token text whose signature was checked, its claims, and the answers to
/// its scan memoised from the view for one day.
#[derive(Debug, Clone)]
struct Checked {
    text: Box<str>,
    claims: Arc<Verified>,
    answers: Option<Answers>,
}

/// How many answers to one checked text a view memoises: the web layer
/// chooses what each slot holds (a form and an encoding), the scanner only
/// keeps them.
pub const ANSWER_SLOTS: usize = 4;

/// What a memoised answer depends on besides the view and the text: the
/// day, and the generation of the tips it shows ([`TipSet::generation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoKey {
    pub day: Date,
    pub tips: u64,
}

/// The answers to one text's scan under a [`MemoKey`]: its status and each
/// body memoised so far, by slot. Everything an answer holds is fixed by
/// the view, the text and the key.
#[derive(Debug, Clone)]
struct Answers {
    key: MemoKey,
    status: Status,
    bodies: [Option<bytes::Bytes>; ANSWER_SLOTS],
}

impl MerchantView {
    /// A view of a projection the store parsed.
    pub fn new(projection: Projection, codes: HashMap<u32, CodeStatus>) -> Self {
        let grade_fields = LiveGradeFields {
            computed_grade: projection.computed_grade,
            override_: projection.override_.clone(),
            merchant: Audience {
                region: projection.merchant.region.clone(),
                categories: projection.merchant.categories.clone(),
            },
        };
        Self::build(None, grade_fields, projection.into(), codes)
    }

    /// A view of a projection as its stored JSON: only what the live grade
    /// needs is read now, the rest when [`MerchantView::projection`] is
    /// first asked for.
    pub fn from_json(json: String, codes: HashMap<u32, CodeStatus>) -> Result<Self, StoreError> {
        let grade_fields: LiveGradeFields = parse_projection_json(&json)?;
        Ok(Self::build(
            Some(json.into_boxed_str()),
            grade_fields,
            Default::default(),
            codes,
        ))
    }

    fn build(
        json: Option<Box<str>>,
        grade_fields: LiveGradeFields,
        projection: std::sync::OnceLock<Projection>,
        codes: HashMap<u32, CodeStatus>,
    ) -> Self {
        Self {
            json,
            grade_fields,
            projection,
            codes,
            checked: Default::default(),
            kept: true,
            read_at: std::time::Instant::now(),
            rereading: Default::default(),
        }
    }

    /// Marks the view as used by one request only (no view cache): nothing
    /// is memoised in it.
    pub fn transient(mut self) -> Self {
        self.kept = false;
        self
    }

    /// The projection, parsed from the stored JSON on first use.
    pub fn projection(&self) -> Result<&Projection, StoreError> {
        if let Some(p) = self.projection.get() {
            return Ok(p);
        }
        let parsed = parse_projection_json(self.json.as_deref().unwrap_or_default())?;
        Ok(self.projection.get_or_init(|| parsed))
    }

    /// The grade to show on `today` (see [`Projection::effective`]).
    pub fn live_grade(&self, today: Date) -> crate::model::Grade {
        crate::model::effective(
            self.grade_fields.computed_grade,
            self.grade_fields.override_.as_ref(),
            today,
        )
        .0
    }

    /// The merchant's region and categories: which tips apply.
    pub fn audience(&self) -> &Audience {
        &self.grade_fields.merchant
    }

    /// The projection's stored JSON when it is, byte for byte, its public
    /// projection: stored and without an override (see
    /// `web::public_projection`).
    pub fn public_json(&self) -> Option<&str> {
        self.json
            .as_deref()
            .filter(|_| self.grade_fields.override_.is_none())
    }

    /// The claims of `text` if it was checked against this view before.
    pub(super) fn verified(&self, text: &str) -> Option<Arc<Verified>> {
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .iter()
            .find(|c| *c.text == *text)
            .map(|c| c.claims.clone())
    }

    /// Takes over what `old`, a view of the same merchant read earlier,
    /// learnt: its checked texts (a signature does not change with the
    /// merchant's data), and their answers if both views hold the same
    /// stored projection and code statuses (a view read again when nothing
    /// changed then renders nothing again).
    pub(super) fn adopt(&self, old: &MerchantView) {
        let mut learnt = old
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let same_projection = match (&self.json, &old.json) {
            (Some(mine), Some(old)) => mine == old,
            (None, None) => self
                .projection
                .get()
                .is_some_and(|p| Some(p) == old.projection.get()),
            _ => false,
        };
        if !(same_projection && self.codes == old.codes) {
            for c in &mut learnt {
                c.answers = None;
            }
        }
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = learnt;
    }

    /// Remembers that `text` verified with `claims` (of this merchant).
    pub(super) fn remember(&self, text: &str, claims: &Arc<Verified>) {
        if !self.kept {
            return;
        }
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.iter().any(|c| *c.text == *text) {
            return;
        }
        if checked.len() >= CHECKED_PER_VIEW {
            checked.remove(0);
        }
        checked.push(Checked {
            text: text.into(),
            claims: claims.clone(),
            answers: None,
        });
    }

    /// Whether answers are memoised in this view: only in a view kept in
    /// the view cache.
    pub fn memoises(&self) -> bool {
        self.kept
    }

    /// The status and the body memoised in `slot` for a scan of `text`
    /// under `key`, if any.
    pub fn memoised(
        &self,
        text: &str,
        key: MemoKey,
        slot: usize,
    ) -> Option<(Status, bytes::Bytes)> {
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let answers = checked.iter().find(|c| *c.text == *text)?.answers.as_ref();
        let answers = answers.filter(|a| a.key == key)?;
        Some((answers.status, answers.bodies[slot].clone()?))
    }

    /// Memoises `body` in `slot`, the answer with `status` to a scan of the
    /// checked `text`, while `key` holds (the rest of its day, until the
    /// tips change).
    pub fn memoise(
        &self,
        text: &str,
        key: MemoKey,
        slot: usize,
        status: Status,
        body: &bytes::Bytes,
    ) {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = checked.iter_mut().find(|c| *c.text == *text) else {
            return;
        };
        let answers = match &mut c.answers {
            Some(a) if a.key == key => a,
            stale => stale.insert(Answers {
                key,
                status,
                bodies: Default::default(),
            }),
        };
        answers.bodies[slot] = Some(body.clone());
    }
}

/// The claims of a code whose signature holds, with the merchant id parsed
/// once. Dereferences to the claims.
#[derive(Debug)]
pub struct Verified {
    pub(super) claims: Claims,
    pub(super) merchant_id: Option<MerchantId>,
}

impl std::ops::Deref for Verified {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}
