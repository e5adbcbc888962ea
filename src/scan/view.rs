//! A merchant's cached view ([`MerchantView`]): its projection as the scan
//! needs it, its codes' statuses, the token texts checked against it and
//! the answers memoised beside each; and what a scan is judged to be
//! ([`Status`], [`Verified`]). Nothing here reads the store or the clock.

use std::sync::Arc;

use jiff::civil::Date;
use yisaozhi_codes::{Claims, Day, KeyId};

use crate::model::{CodeStatus, MerchantId, Projection};
use crate::store::{parse_projection_json, StoreError};
use crate::tips::Audience;

use super::packed::{self, Runs, Shared};

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
    /// The projection, as the scan keeps it.
    source: Source,
    /// What every answer needs of the projection (read first, cheaply).
    pub(super) grade_fields: LiveGradeFields,
    /// The statuses of the merchant's codes, by serial (sorted).
    codes: Box<[(u32, CodeStatus)]>,
    /// Token texts of this merchant whose signature was checked (by a keyed
    /// hash of the text), with their claims and the answers to their scans
    /// memoised today: a warm scan compares the text's hash instead of
    /// looking it up in the verified-token cache, and finds its answer
    /// beside it. At most [`CHECKED_PER_VIEW`] (a merchant has a handful of
    /// codes; forged texts are never kept here). A new view (after any
    /// change) starts without answers, so none goes stale.
    checked: std::sync::Mutex<Vec<Checked>>,
    /// When the view was read from the store.
    pub(super) read_at: std::time::Instant,
    /// When a read ahead of its expiry last found the store unchanged, in
    /// milliseconds after `read_at` (0: never).
    confirmed_ms: std::sync::atomic::AtomicU64,
    /// Set once a read ahead of the view's expiry has been started.
    pub(super) rereading: std::sync::atomic::AtomicBool,
}

/// The projection of a view.
#[derive(Debug, PartialEq)]
enum Source {
    /// A view kept in the view cache: the members of the projection's JSON
    /// (as stored, without its braces), compressed as runs of the wording
    /// every projection holds ([`members_shared`]) and its own text. A scan
    /// answer without an override splices them in as they are (compressed
    /// into a gzip answer); the projection is parsed from them when a page
    /// is rendered.
    Packed(Runs),
    /// A view for one request (no view cache): the JSON as stored...
    Json(Box<str>),
    /// ...or the projection the store parsed.
    Parsed(Box<Projection>),
}

/// The fields of a projection every scan answer needs: enough for the live
/// grade. Reading it from the JSON also checks the JSON is well formed.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LiveGradeFields {
    pub(super) computed_grade: crate::model::Grade,
    /// Boxed: nearly every merchant has none.
    #[serde(rename = "override")]
    override_: Option<Box<crate::model::Override>>,
    /// Which consumer tips apply: the merchant's region and categories.
    merchant: Audience,
}

/// How many checked token texts a view keeps (oldest dropped first).
const CHECKED_PER_VIEW: usize = 8;

/// A token text whose signature was checked (its [`TextKey`]), its claims,
/// and the answers to its scan memoised from the view for one day.
#[derive(Debug, Clone)]
struct Checked {
    text: TextKey,
    claims: CodeFields,
    answers: Option<Box<Answers>>,
}

/// A code's claims as a view keeps them beside a checked text: all but the
/// merchant, who is the view's (12 bytes, where the claims with the id
/// twice take a shared allocation and two more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFields {
    pub kid: KeyId,
    pub serial: u32,
    pub issued: Day,
    pub expires: Day,
    pub grade: yisaozhi_codes::Grade,
}

/// A checked code as an answer shows it: its merchant and its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code<'a> {
    pub merchant: &'a str,
    pub fields: CodeFields,
}

impl<'a> Code<'a> {
    pub fn of(c: &'a Claims) -> Self {
        Self {
            merchant: &c.merchant,
            fields: CodeFields::of(c),
        }
    }
}

impl CodeFields {
    pub fn of(c: &Claims) -> Self {
        Self {
            kid: c.kid,
            serial: c.serial,
            issued: c.issued,
            expires: c.expires,
            grade: c.grade,
        }
    }

    /// The claims of a code of `merchant` with these fields.
    fn verified(self, merchant: &str) -> Arc<Verified> {
        Arc::new(Verified {
            claims: Claims {
                kid: self.kid,
                merchant: merchant.into(),
                serial: self.serial,
                issued: self.issued,
                expires: self.expires,
                grade: self.grade,
            },
            merchant_id: MerchantId::parse(merchant).ok(),
        })
    }
}

/// A token text as views and the verified-token cache know it: a 128-bit
/// hash keyed at random per process (two SipHash-1-3), 16 bytes instead of
/// the ~200-byte text. Nobody can choose a text that collides with another
/// without the keys, which never leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextKey([u64; 2]);

impl TextKey {
    pub fn of(text: &str) -> Self {
        use std::hash::BuildHasher;
        static KEYS: std::sync::OnceLock<[std::hash::RandomState; 2]> = std::sync::OnceLock::new();
        let [a, b] = KEYS.get_or_init(|| [Default::default(), Default::default()]);
        Self([a.hash_one(text), b.hash_one(text)])
    }
}

/// How many answers to one checked text a view memoises: the web layer
/// chooses what each slot holds (a form), the scanner only keeps them.
pub const ANSWER_SLOTS: usize = 2;

/// What a memoised answer depends on besides the view and the text: the
/// day, and the generation of the tips it shows ([`TipSet::generation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoKey {
    pub day: Date,
    pub tips: u64,
}

/// A memoised answer as the web layer packs it: `piece` (or, if `None`, the
/// view's projection members), then `after`; and the CRC-32 and length of
/// that text, for a gzip answer. What the web layer puts around it (a
/// shared head; a head written for each answer) is its own business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memo {
    pub piece: Option<Runs>,
    pub after: Box<[u8]>,
    pub crc: u32,
    pub len: u32,
}

impl Memo {
    /// The bytes it keeps (for measuring memory).
    pub fn heap_bytes(&self) -> usize {
        self.after.len() + self.piece.as_ref().map_or(0, Runs::heap_bytes)
    }
}

/// The answers to one text's scan under a [`MemoKey`]: its status and each
/// answer memoised so far, by slot. Everything an answer holds is fixed by
/// the view, the text and the key.
#[derive(Debug, Clone)]
struct Answers {
    key: MemoKey,
    status: Status,
    memos: [Option<Memo>; ANSWER_SLOTS],
}

impl MerchantView {
    /// A view of a projection the store parsed, for one request (see
    /// [`MerchantView::kept`]).
    pub fn new(projection: Projection, codes: Box<[(u32, CodeStatus)]>) -> Self {
        let grade_fields = LiveGradeFields {
            computed_grade: projection.computed_grade,
            override_: projection.override_.clone().map(Box::new),
            merchant: Audience {
                region: projection.merchant.region.clone(),
                categories: projection.merchant.categories.clone(),
            },
        };
        Self::build(Source::Parsed(projection.into()), grade_fields, codes)
    }

    /// A view of a projection as its stored JSON, for one request (see
    /// [`MerchantView::kept`]): only what the live grade needs is read now,
    /// the rest when [`MerchantView::projection`] is asked for.
    pub fn from_json(json: String, codes: Box<[(u32, CodeStatus)]>) -> Result<Self, StoreError> {
        let grade_fields: LiveGradeFields = parse_projection_json(&json)?;
        Ok(Self::build(
            Source::Json(json.into_boxed_str()),
            grade_fields,
            codes,
        ))
    }

    fn build(
        source: Source,
        grade_fields: LiveGradeFields,
        mut codes: Box<[(u32, CodeStatus)]>,
    ) -> Self {
        codes.sort_unstable_by_key(|&(serial, _)| serial);
        Self {
            source,
            grade_fields,
            codes,
            checked: Default::default(),
            read_at: std::time::Instant::now(),
            confirmed_ms: Default::default(),
            rereading: Default::default(),
        }
    }

    /// The view to keep in the view cache: its projection compressed, and
    /// checked texts and answers memoised in it from now on.
    pub fn kept(mut self) -> Result<Self, StoreError> {
        let json = match &self.source {
            Source::Packed(_) => return Ok(self),
            Source::Json(json) => std::borrow::Cow::Borrowed(&**json),
            Source::Parsed(p) => serde_json::to_string(p)
                .map_err(|e| StoreError::Corrupt(format!("projection to JSON: {e}")))?
                .into(),
        };
        let members = members(&json)?;
        let piece = packed::deflate_runs(&[], members.as_bytes(), members_shared());
        self.source = Source::Packed(piece);
        Ok(self)
    }

    /// Since when the view is known to match the store: when it was read,
    /// or when a read ahead of its expiry last found nothing changed.
    pub fn fresh_since(&self) -> std::time::Instant {
        use std::sync::atomic::Ordering;
        let ms = self.confirmed_ms.load(Ordering::Relaxed);
        self.read_at + std::time::Duration::from_millis(ms)
    }

    /// Whether this view, just read for one request, holds what `kept` (a
    /// kept view of the same merchant) holds: the same projection JSON and
    /// code statuses. Then `kept` need not be replaced, only
    /// [`confirmed`](MerchantView::confirm).
    pub(super) fn matches(&self, kept: &MerchantView) -> bool {
        let Source::Packed(piece) = &kept.source else {
            return false;
        };
        if self.codes != kept.codes {
            return false;
        }
        let same = |json: &str| {
            let mut old = Vec::with_capacity(piece.len());
            members(json).is_ok_and(|m| inflate(piece, &mut old).is_ok() && *m.as_bytes() == old)
        };
        match &self.source {
            Source::Packed(mine) => mine == piece,
            Source::Json(json) => same(json),
            Source::Parsed(p) => serde_json::to_string(p).is_ok_and(|json| same(&json)),
        }
    }

    /// Marks the view as found unchanged in the store now: its safety TTL
    /// counts from now, and it may be read again ahead of that.
    pub(super) fn confirm(&self) {
        use std::sync::atomic::Ordering;
        let ms = self.read_at.elapsed().as_millis().max(1) as u64;
        self.confirmed_ms.store(ms, Ordering::Relaxed);
        self.rereading.store(false, Ordering::Relaxed);
    }

    /// The status of the merchant's code `serial`, if it has that code.
    pub fn code_status(&self, serial: u32) -> Option<CodeStatus> {
        let at = self.codes.binary_search_by_key(&serial, |&(s, _)| s).ok()?;
        Some(self.codes[at].1)
    }

    /// The projection: parsed from the stored JSON (each time: a kept view
    /// keeps it compressed, and renders from it once per answer and day).
    pub fn projection(&self) -> Result<std::borrow::Cow<'_, Projection>, StoreError> {
        let json = match &self.source {
            Source::Parsed(p) => return Ok(std::borrow::Cow::Borrowed(p)),
            Source::Json(json) => std::borrow::Cow::Borrowed(&**json),
            Source::Packed(piece) => {
                let mut json = Vec::with_capacity(piece.len() + 2);
                json.push(b'{');
                inflate(piece, &mut json)?;
                json.push(b'}');
                String::from_utf8(json)
                    .map_err(|_| StoreError::Corrupt("projection not UTF-8".into()))?
                    .into()
            }
        };
        Ok(std::borrow::Cow::Owned(parse_projection_json(&json)?))
    }

    /// The grade to show on `today` (see [`Projection::effective`]).
    pub fn live_grade(&self, today: Date) -> crate::model::Grade {
        crate::model::effective(
            self.grade_fields.computed_grade,
            self.grade_fields.override_.as_deref(),
            today,
        )
        .0
    }

    /// The merchant's region and categories: which tips apply.
    pub fn audience(&self) -> &Audience {
        &self.grade_fields.merchant
    }

    /// Appends the members (no braces) of the projection's stored JSON when
    /// they are, byte for byte, those of its public projection: stored and
    /// without an override (see `web::public_projection`). `false` (and
    /// nothing appended) otherwise.
    pub fn write_public_members(&self, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        if self.grade_fields.override_.is_some() {
            return Ok(false);
        }
        match &self.source {
            Source::Parsed(_) => Ok(false),
            Source::Json(json) => {
                out.extend_from_slice(members(json)?.as_bytes());
                Ok(true)
            }
            Source::Packed(piece) => inflate(piece, out).map(|()| true),
        }
    }

    /// The compressed members that [`MerchantView::write_public_members`]
    /// appends, in a kept view.
    pub fn public_members_piece(&self) -> Option<&Runs> {
        match &self.source {
            Source::Packed(piece) if self.grade_fields.override_.is_none() => Some(piece),
            _ => None,
        }
    }

    /// The claims of `text`, a code of the view's `merchant`, if it was
    /// checked against this view before.
    pub(super) fn verified(&self, text: &str, merchant: &str) -> Option<Arc<Verified>> {
        let key = TextKey::of(text);
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .iter()
            .find(|c| c.text == key)
            .map(|c| c.claims.verified(merchant))
    }

    /// The checked texts' claims, codes of the view's `merchant` (to keep
    /// their signatures checked when the view is dropped).
    pub(super) fn checked_claims(&self, merchant: &str) -> Vec<(TextKey, Arc<Verified>)> {
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .iter()
            .map(|c| (c.text, c.claims.verified(merchant)))
            .collect()
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
        let same = self.source == old.source && self.codes == old.codes;
        if !same {
            for c in &mut learnt {
                c.answers = None;
            }
        }
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = learnt;
    }

    /// Remembers that `text` verified with `claims` (of this merchant).
    pub(super) fn remember(&self, text: &str, claims: &Arc<Verified>) {
        if !self.memoises() {
            return;
        }
        let key = TextKey::of(text);
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.iter().any(|c| c.text == key) {
            return;
        }
        if checked.len() >= CHECKED_PER_VIEW {
            checked.remove(0);
        }
        // Most views only ever see one text: no spare room.
        checked.reserve_exact(1);
        checked.push(Checked {
            text: key,
            claims: CodeFields::of(claims),
            answers: None,
        });
    }

    /// Whether answers are memoised in this view: only in a view kept in
    /// the view cache.
    pub fn memoises(&self) -> bool {
        matches!(self.source, Source::Packed(_))
    }

    /// `answer` of the status, the claims and the memo in `slot` for a scan
    /// of `text` under `key`, if there is one (`None` otherwise). `answer`
    /// runs with the view's memo locked: it should copy, not wait.
    pub fn with_memo<R>(
        &self,
        text: &str,
        key: MemoKey,
        slot: usize,
        answer: impl FnOnce(Status, CodeFields, &Memo) -> R,
    ) -> Option<R> {
        let text = TextKey::of(text);
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let c = checked.iter().find(|c| c.text == text)?;
        let answers = c.answers.as_ref().filter(|a| a.key == key)?;
        Some(answer(
            answers.status,
            c.claims,
            answers.memos[slot].as_ref()?,
        ))
    }

    /// Memoises `memo` in `slot`, the answer with `status` to a scan of the
    /// checked `text`, while `key` holds (the rest of its day, until the
    /// tips change).
    pub fn memoise(&self, text: &str, key: MemoKey, slot: usize, status: Status, memo: Memo) {
        let text = TextKey::of(text);
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = checked.iter_mut().find(|c| c.text == text) else {
            return;
        };
        let answers = match &mut c.answers {
            Some(a) if a.key == key => a,
            stale => stale.insert(Box::new(Answers {
                key,
                status,
                memos: Default::default(),
            })),
        };
        answers.memos[slot] = Some(memo);
    }

    /// The bytes this view keeps on the heap for its projection and memos,
    /// besides fixed-size parts (for measuring memory).
    pub fn heap_bytes(&self) -> usize {
        let source = match &self.source {
            Source::Packed(p) => p.heap_bytes(),
            Source::Json(j) => j.len(),
            Source::Parsed(_) => 0,
        };
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let memos: usize = checked
            .iter()
            .filter_map(|c| c.answers.as_ref())
            .flat_map(|a| a.memos.iter().flatten())
            .map(Memo::heap_bytes)
            .sum();
        source + memos
    }
}

/// The members of a JSON object's text: without its braces.
fn members(json: &str) -> Result<&str, StoreError> {
    json.trim()
        .strip_prefix('{')
        .and_then(|j| j.strip_suffix('}'))
        .ok_or_else(|| StoreError::Corrupt("projection is not a JSON object".into()))
}

/// Appends the members a kept view holds.
fn inflate(piece: &Runs, out: &mut Vec<u8>) -> Result<(), StoreError> {
    piece
        .inflate_into(members_shared(), 0, out)
        .map_err(|_| StoreError::Corrupt("cached projection does not inflate".into()))
}

/// The wording every projection's JSON members hold (names of fields,
/// fixed values and the punctuation between them), shared by every kept
/// view. Learnt once from [`crate::grading::wording_samples`].
pub fn members_shared() -> &'static Shared {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let samples: Vec<Vec<u8>> = crate::grading::wording_samples()
            .iter()
            .filter_map(|p| {
                let json = serde_json::to_string(p).ok()?;
                Some(members(&json).ok()?.as_bytes().to_vec())
            })
            .collect();
        Shared::learn(&samples, &MEMBERS_WORDING)
    })
}

/// How the wording of projections' members is cut: from a quote to a quote
/// or colon, at least 16 bytes (field names are short).
const MEMBERS_WORDING: packed::Cut = packed::Cut {
    min: 16,
    starts: b"\"",
    ends: b"\":",
    before: &[],
    apart: &[1, 3],
};

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
