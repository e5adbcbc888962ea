//! The scan path: token → signature (cached) → code status → live projection
//! (cached), with the consumer tips in force for the merchant. No HTTP here:
//! the web layer renders a [`Scan`], encodes it, and memoises its answers in
//! the slots a cached view keeps beside each checked text
//! ([`MerchantView::memoised`]), so a change that replaces the view drops
//! them too, and a change of the tips makes them stale ([`MemoKey`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use moka::future::Cache;
use yisaozhi_codes::{Day, Token, Verdict};

use crate::clock;
use crate::keys::Keyring;
use crate::metrics;
use crate::model::{CodeStatus, MerchantId};
use crate::store::{ScanRead, SharedStore, StoreError, StoredProjection};
use crate::tips::{Tip, TipSet, Tips};

pub mod packed;
mod rereads;
mod view;

pub use self::view::{
    members_shared, Code, CodeFields, Memo, MemoKey, MerchantView, Status, TextKey, Verified,
    ANSWER_SLOTS,
};

/// The outcome of one scan.
#[derive(Debug)]
pub struct Scan {
    pub status: Status,
    /// Present unless the code is malformed or forged.
    pub claims: Option<Arc<Verified>>,
    pub view: Option<Arc<MerchantView>>,
    pub today: Date,
    /// The tips as the scan found them.
    pub tips: Arc<TipSet>,
}

impl Scan {
    /// What an answer to this scan depends on besides the view and the text.
    pub fn memo_key(&self) -> MemoKey {
        MemoKey {
            day: self.today,
            tips: self.tips.generation(),
        }
    }

    /// The tips in force today for the merchant shown (none if none is).
    pub fn shown_tips(&self) -> Vec<&Tip> {
        self.view
            .as_ref()
            .map(|v| self.tips.shown(v.audience(), self.today))
            .unwrap_or_default()
    }
}

/// Reads a merchant's view: its projection and its codes' statuses, in one
/// store read.
async fn load_view(
    store: &dyn ScanRead,
    id: &MerchantId,
    kept: bool,
) -> Result<Option<Arc<MerchantView>>, StoreError> {
    let Some(read) = store.scan_view(id).await? else {
        return Ok(None);
    };
    let codes = read.codes.into_boxed_slice();
    let view = match read.projection {
        StoredProjection::Parsed(p) => MerchantView::new(*p, codes),
        StoredProjection::Json(json) => MerchantView::from_json(json, codes)?,
    };
    Ok(Some(Arc::new(if kept { view.kept()? } else { view })))
}

/// [`load_view`], timed and counted as a store read.
async fn read_view(
    store: SharedStore,
    id: MerchantId,
    kept: bool,
) -> Result<Option<Arc<MerchantView>>, StoreError> {
    let started = std::time::Instant::now();
    let loaded = load_view(&*store, &id, kept).await;
    metrics::store_read(started, loaded.is_ok());
    loaded
}

/// What the verified-token cache holds: the claims if the signature holds,
/// or why it does not.
type Signature = Result<Arc<Verified>, &'static str>;

/// Caches in front of the store for the scan path.
#[derive(Clone)]
pub struct Scanner {
    store: SharedStore,
    keys: Arc<Keyring>,
    /// `None` when the configured capacity is 0: every scan reads the store
    /// (the "cold" benchmark), concurrent reads are not coalesced.
    views: Option<Cache<MerchantId, Option<Arc<MerchantView>>, Hasher>>,
    /// token text (its keyed hash) → claims if the signature holds, or why
    /// it does not. The signature does not depend on the day, so the answer
    /// never goes stale. Texts a cached view remembers are not kept here
    /// too: they move here when their view is dropped for a change.
    verified: moka::sync::Cache<TextKey, Signature>,
    /// The views' expiry, also asked when to read a scanned view again.
    expiry: ViewExpiry,
    /// Views due to be read again, drained at a capped rate.
    rereads: rereads::Queue<(MerchantId, Arc<MerchantView>)>,
    /// Counts the views dropped because their merchant changed. A view read
    /// from the store while this moved may predate the change: it is not
    /// kept.
    invalidations: Arc<std::sync::atomic::AtomicU64>,
    /// The consumer tips, kept current by `startup`'s change poll.
    tips: Arc<Tips>,
}

/// The view cache's hasher: several times faster than SipHash on merchant
/// ids, randomly seeded. Only merchant ids of signed codes are inserted
/// (unverified ones are only looked up), so nobody can choose the keys to
/// make them collide. The verified-token cache, whose keys anyone can
/// choose, keeps std's SipHash.
type Hasher = foldhash::fast::RandomState;

/// The view cache's safety TTL: a view is read again from the store at the
/// latest about this long after it was read, in case a change notice was
/// missed. Each merchant's is spread over ±20 % of it (see [`view_ttl`]).
const VIEW_TTL: Duration = Duration::from_secs(300);

/// The safety TTL of the view whose merchant id hashes to `hash`: between
/// 0.8 and 1.2 × `base`. Views read together (a warm-up, a restart under
/// traffic) then do not all expire, and are read from the store again, in
/// the same second: that would be a burst of store reads every `base`, in
/// step with the first one.
fn view_ttl(base: Duration, hash: u64) -> Duration {
    let spread = (base.as_millis() as u64 * 2 / 5).max(1);
    base - base / 5 + Duration::from_millis(hash % spread)
}

/// How long before its expiry a view that is scanned is read again, in the
/// background: a merchant scanned all day keeps its view, and its scans
/// never wait for the store because of the safety TTL.
fn reread_ahead(base: Duration) -> Duration {
    base / 5
}

/// Expiry of the view cache's entries: [`view_ttl`] of a randomly seeded
/// hash of the merchant id, from when the view was read (a view read again
/// ahead of its expiry starts a new one).
#[derive(Clone)]
struct ViewExpiry {
    hasher: Hasher,
    base: Duration,
}

impl ViewExpiry {
    fn ttl(&self, id: &str) -> Duration {
        use std::hash::BuildHasher;
        view_ttl(self.base, self.hasher.hash_one(id))
    }
}

impl moka::Expiry<MerchantId, Option<Arc<MerchantView>>> for ViewExpiry {
    fn expire_after_create(
        &self,
        key: &MerchantId,
        _value: &Option<Arc<MerchantView>>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.ttl(key.as_str()))
    }

    fn expire_after_update(
        &self,
        key: &MerchantId,
        _value: &Option<Arc<MerchantView>>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(key.as_str()))
    }

    /// A view confirmed unchanged by a read ahead of its expiry lives a TTL
    /// from then: its expiry moves once (by more than a second), not at
    /// every read, which would reschedule its timer each time.
    fn expire_after_read(
        &self,
        key: &MerchantId,
        value: &Option<Arc<MerchantView>>,
        read_at: std::time::Instant,
        duration_until_expiry: Option<Duration>,
        _last_modified_at: std::time::Instant,
    ) -> Option<Duration> {
        let (Some(view), Some(left)) = (value, duration_until_expiry) else {
            return duration_until_expiry;
        };
        let until = view.fresh_since() + self.ttl(key.as_str());
        let wanted = until.saturating_duration_since(read_at);
        if wanted > left + Duration::from_secs(1) {
            Some(wanted)
        } else {
            duration_until_expiry
        }
    }
}

impl Scanner {
    pub fn new(store: SharedStore, keys: Arc<Keyring>, capacity: u64) -> Self {
        Self::with_view_ttl(store, keys, capacity, VIEW_TTL)
    }

    /// A scanner whose views' safety TTL is spread around `view_ttl`
    /// instead of [`VIEW_TTL`].
    fn with_view_ttl(
        store: SharedStore,
        keys: Arc<Keyring>,
        capacity: u64,
        view_ttl: Duration,
    ) -> Self {
        let expiry = ViewExpiry {
            hasher: Hasher::default(),
            base: view_ttl,
        };
        Self {
            store,
            keys,
            views: (capacity > 0).then(|| {
                Cache::builder()
                    .name("merchant_views")
                    .max_capacity(capacity)
                    .expire_after(expiry.clone())
                    .build_with_hasher(Hasher::default())
            }),
            expiry,
            rereads: Default::default(),
            invalidations: Default::default(),
            tips: Default::default(),
            // Sized apart from the view cache: a verify costs ~100 µs, and a
            // cold view cache (capacity 0) must not mean re-verifying.
            verified: moka::sync::Cache::builder()
                .name("verified_tokens")
                .max_capacity(capacity.max(100_000))
                .build(),
        }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    pub fn tips(&self) -> &Tips {
        &self.tips
    }

    /// Whether any merchant's view is cached: scans of those merchants can
    /// be answered without the store.
    pub async fn has_cached_views(&self) -> bool {
        let Some(views) = &self.views else {
            return false;
        };
        if views.entry_count() == 0 {
            // The count lags behind inserts until the cache's housekeeping.
            views.run_pending_tasks().await;
        }
        views.entry_count() > 0
    }

    /// The merchant's projection and code statuses, from cache or store.
    pub async fn view(
        &self,
        id: &MerchantId,
    ) -> Result<Option<Arc<MerchantView>>, Arc<StoreError>> {
        let Some(views) = &self.views else {
            metrics::cache("merchant_views", false);
            return read_view(self.store.clone(), id.clone(), false)
                .await
                .map_err(Arc::new);
        };
        if let Some(hit) = views.get(id).await {
            metrics::cache("merchant_views", true);
            if let Some(view) = &hit {
                self.reread_if_due(id.as_str(), view);
            }
            return Ok(hit);
        }
        metrics::cache("merchant_views", false);
        let before = self.invalidations.load(Ordering::Acquire);
        let read = views
            .try_get_with_by_ref(id, read_view(self.store.clone(), id.clone(), true))
            .await;
        self.drop_if_invalidated_since(id, before).await;
        read
    }

    /// Queues `view` to be read again in the background once it is within
    /// [`reread_ahead`] of its expiry (once per view, unless the queue is
    /// full: a later scan queues it then).
    fn reread_if_due(&self, id: &str, view: &Arc<MerchantView>) {
        let due = self.expiry.ttl(id) - reread_ahead(self.expiry.base);
        if view.fresh_since().elapsed() < due || view.rereading.swap(true, Ordering::Relaxed) {
            return;
        }
        // The id of a cached view: well formed.
        let Ok(id) = MerchantId::parse(id) else {
            return;
        };
        let reader = || {
            let scanner = self.clone();
            move |(id, old): (MerchantId, Arc<MerchantView>)| {
                let scanner = scanner.clone();
                async move { scanner.reread(&id, &old).await }
            }
        };
        if !self.rereads.push(reader, (id, view.clone())) {
            view.rereading.store(false, Ordering::Relaxed);
        }
    }

    /// Reads a view again and puts it in place of `old`. If the read fails,
    /// `old` is served until it expires, and a scan after that reads the
    /// store itself: a store that is down is not asked again at every scan.
    /// When nothing changed (nearly always), `old` stays in place, confirmed
    /// (no new view, no cache insert).
    pub(crate) async fn reread(&self, id: &MerchantId, old: &MerchantView) {
        let Some(views) = &self.views else {
            return;
        };
        let before = self.invalidations.load(Ordering::Acquire);
        let Ok(read) = read_view(self.store.clone(), id.clone(), false).await else {
            return;
        };
        let unchanged = || self.invalidations.load(Ordering::Acquire) == before;
        let view = match read.map(Arc::try_unwrap) {
            Some(Ok(view)) if view.matches(old) && unchanged() => {
                old.confirm();
                // A read applies the confirmation to the cache's expiry.
                let _ = views.get(id).await;
                return;
            }
            Some(Ok(view)) => match view.kept() {
                Ok(view) => Some(Arc::new(view)),
                Err(_) => return,
            },
            // Just read, so held nowhere else.
            Some(Err(_)) => return,
            None => None,
        };
        if let Some(view) = &view {
            view.adopt(old);
        }
        views.insert(id.clone(), view).await;
        self.drop_if_invalidated_since(id, before).await;
    }

    /// Drops the cached view of `id` if any view was invalidated since the
    /// count was `before`: the view may have been read before that change
    /// and put in the cache after its invalidation.
    async fn drop_if_invalidated_since(&self, id: &MerchantId, before: u64) {
        if self.invalidations.load(Ordering::Acquire) != before {
            if let Some(views) = &self.views {
                views.invalidate(id).await;
            }
        }
    }

    pub async fn invalidate(&self, id: &MerchantId) {
        if let Some(views) = &self.views {
            // Counted before the view is dropped: a read that sees the old
            // count finds the new one by the time it checks after caching.
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            if let Some(Some(view)) = views.remove(id).await {
                // Its texts' signatures still hold: not checked again.
                for (text, claims) in view.checked_claims(id.as_str()) {
                    self.verified.insert(text, Ok(claims));
                }
            }
        }
    }

    pub fn invalidate_all(&self) {
        if let Some(views) = &self.views {
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            views.invalidate_all();
        }
    }

    /// The cached signature check of a token's text, if there is one.
    /// Only texts that parsed as a token are ever cached, and a token's text
    /// is its canonical form, so a hit needs no parse.
    fn cached_signature(&self, text: &str) -> Option<Signature> {
        let hit = self.verified.get(&TextKey::of(text));
        metrics::cache("verified_tokens", hit.is_some());
        hit
    }

    /// Checks a token's signature (~100 µs). The caller caches the outcome,
    /// in the merchant's cached view or in the verified-token cache.
    fn check_signature(&self, token: &Token) -> Signature {
        let text = token.as_str();
        // Day 0: expiry is judged per request below, so the cached answer is
        // about the signature alone.
        match yisaozhi_codes::verify(text, |kid| self.keys.public(kid), Day(0)) {
            Verdict::Valid(claims) | Verdict::Expired(claims) => Ok(Arc::new(Verified {
                merchant_id: MerchantId::parse(&claims.merchant).ok(),
                claims,
            })),
            Verdict::Forged { why, .. } => Err(why),
            Verdict::Malformed(_) => Err("malformed"),
        }
    }

    /// `answer` of the memo in `slot` for a scan of `text` today with the
    /// current tips, if the merchant's view is cached and holds one for this
    /// very text: the warm path, with no signature check and no second
    /// cache. `answer` also gets the text's claims and the view (whose
    /// projection a memo may refer to).
    pub async fn memoised_answer<R>(
        &self,
        text: &str,
        today: Date,
        slot: usize,
        answer: impl FnOnce(Status, Code<'_>, &Memo, &MerchantView) -> R,
    ) -> Option<R> {
        let views = self.views.as_ref()?;
        // Untrusted until the text is found among the view's checked ones.
        let claimed = yisaozhi_codes::claimed_merchant(text)?;
        let view = views.get(claimed.as_str()).await.flatten()?;
        let key = MemoKey {
            day: today,
            tips: self.tips.generation(),
        };
        let answer = view.with_memo(text, key, slot, |status, claims, memo| {
            let code = Code {
                merchant: claimed.as_str(),
                fields: claims,
            };
            answer(status, code, memo, &view)
        })?;
        metrics::cache("merchant_views", true);
        self.reread_if_due(claimed.as_str(), &view);
        Some(answer)
    }

    /// Scans a token's text on `today`. The store's budget for the scan
    /// counts from `started`.
    pub async fn scan(
        &self,
        text: &str,
        today: Date,
        started: tokio::time::Instant,
    ) -> Result<Scan, Arc<StoreError>> {
        crate::store::SCAN_STARTED
            .scope(started, self.scan_text(text, today))
            .await
    }

    /// Scans a token's text.
    async fn scan_text(&self, text: &str, today: Date) -> Result<Scan, Arc<StoreError>> {
        if let Some(scan) = self.scan_warm(text, today).await {
            return Ok(scan);
        }
        let (signature, checked_now) = match self.cached_signature(text) {
            Some(hit) => (hit, false),
            None => {
                let Ok(token) = Token::parse(text) else {
                    return Ok(self.judge(Status::Malformed, None, None, today));
                };
                (self.check_signature(&token), true)
            }
        };
        let claims = match signature {
            Ok(claims) => claims,
            Err(why) => {
                if checked_now {
                    self.verified.insert(TextKey::of(text), Err(why));
                }
                return Ok(self.judge(Status::Forged, None, None, today));
            }
        };
        let view = match &claims.merchant_id {
            Some(id) => self.view(id).await,
            None => Ok(None),
        };
        // Kept where it is found next: beside the text in the merchant's
        // cached view, or else in the verified-token cache.
        match &view {
            Ok(Some(view)) if view.memoises() => view.remember(text, &claims),
            _ if checked_now => self.verified.insert(TextKey::of(text), Ok(claims.clone())),
            _ => {}
        }
        Ok(self.judge(Status::Valid, Some(claims), view?, today))
    }

    /// The warm path: the merchant's view is cached and this very text was
    /// verified against it, so neither the signature nor the verified-token
    /// cache is consulted. `None` sends the scan down the full path.
    async fn scan_warm(&self, text: &str, today: Date) -> Option<Scan> {
        let views = self.views.as_ref()?;
        // Untrusted until the text is found among the view's checked ones.
        let claimed = yisaozhi_codes::claimed_merchant(text)?;
        let view = views.get(claimed.as_str()).await.flatten()?;
        let claims = view.verified(text, claimed.as_str())?;
        metrics::cache("merchant_views", true);
        self.reread_if_due(claimed.as_str(), &view);
        Some(self.judge(Status::Valid, Some(claims), Some(view), today))
    }

    /// The scan of a code: `status` is `Valid` for a code whose signature holds,
    /// and is then refined by the code's status in the view and its expiry.
    fn judge(
        &self,
        status: Status,
        claims: Option<Arc<Verified>>,
        view: Option<Arc<MerchantView>>,
        today: Date,
    ) -> Scan {
        let mut scan = Scan {
            status,
            claims: None,
            view: None,
            today,
            tips: self.tips.current(),
        };
        let Some(claims) = claims else {
            return scan;
        };
        let code_status = view.as_ref().and_then(|v| v.code_status(claims.serial));
        let expired = clock::to_day(today).is_some_and(|d| d > claims.expires);
        scan.status = match code_status {
            None | Some(CodeStatus::Revoked) => Status::Revoked,
            Some(CodeStatus::Superseded) => Status::Superseded,
            Some(CodeStatus::Active) if expired => Status::Expired,
            Some(CodeStatus::Active) => Status::Valid,
        };
        scan.claims = Some(claims);
        if scan.status.shows_merchant() {
            scan.view = view;
        }
        scan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moka::Expiry;

    #[test]
    fn view_ttls_spread_over_a_fifth_either_side_of_the_safety_ttl() {
        let low = VIEW_TTL * 4 / 5;
        let high = VIEW_TTL * 6 / 5;
        assert_eq!(view_ttl(VIEW_TTL, 0), low);
        assert!(view_ttl(VIEW_TTL, u64::MAX) < high);
        let expiry = ViewExpiry {
            hasher: Hasher::default(),
            base: VIEW_TTL,
        };
        let ttls: Vec<Duration> = (0..10_000)
            .map(|i| {
                let id = MerchantId::parse(&format!("M{i:07}")).unwrap();
                expiry
                    .expire_after_create(&id, &None, std::time::Instant::now())
                    .unwrap()
            })
            .collect();
        assert!(ttls.iter().all(|t| (low..high).contains(t)));
        // Spread, not bunched: every tenth of the range gets about a tenth.
        let tenth = (high - low) / 10;
        for k in 0..10u32 {
            let from = low + tenth * k;
            let n = ttls
                .iter()
                .filter(|t| (from..from + tenth).contains(*t))
                .count();
            assert!((800..1200).contains(&n), "tenth {k}: {n} of 10,000");
        }
    }

    /// A scanner over a fresh embedded store holding one merchant whose
    /// projection is `grade`, with views' safety TTL around `ttl`.
    async fn scanner_of_one(
        dir: &std::path::Path,
        grade: crate::model::Grade,
        ttl: Duration,
    ) -> (Scanner, MerchantId) {
        let store: SharedStore =
            Arc::new(crate::store::embedded::EmbeddedStore::open(dir).unwrap());
        let merchant = crate::records::parse_merchant(
            r#"{"id":"XZ-0001","name":"叙州区好味超市","kind":"shop","address":"叙州区南岸东路1号","region":"511521","categories":["食品"],"contact_name":"张三","contact_phone":"13812345678"}"#,
        )
        .unwrap();
        store.upsert_merchants(vec![merchant]).await.unwrap();
        let id = MerchantId::parse("XZ-0001").unwrap();
        put_grade(&store, &id, grade).await;
        let keys = Arc::new(crate::keys::Keyring::from_published(vec![]).unwrap());
        (Scanner::with_view_ttl(store, keys, 100, ttl), id)
    }

    /// Stores a projection of `id` computed as `grade`, telling no scanner.
    async fn put_grade(store: &SharedStore, id: &MerchantId, grade: crate::model::Grade) {
        let merchant = store.merchant(id).await.unwrap().unwrap();
        let mut p = crate::grading::project(
            &merchant,
            &[],
            None,
            &crate::grading::Rules::default(),
            "2026-06-01".parse().unwrap(),
            "2026-06-01T00:00:00Z".parse().unwrap(),
        );
        p.computed_grade = grade;
        p.grade = grade;
        store.put_projections(vec![p]).await.unwrap();
    }

    async fn cached_grade(scanner: &Scanner, id: &MerchantId) -> Option<crate::model::Grade> {
        let views = scanner.views.as_ref().unwrap();
        let view = views.get(id).await.flatten()?;
        Some(view.grade_fields.computed_grade)
    }

    /// Sleeps until `first`, the view of `id`, is due to be read again
    /// (and `after` more), then scans it: answered from `first`, and a read
    /// is queued.
    async fn scan_when_due(
        scanner: &Scanner,
        id: &MerchantId,
        first: &Arc<MerchantView>,
        ttl: Duration,
        after: Duration,
    ) {
        let expires = scanner.expiry.ttl(id.as_str());
        let due = expires - reread_ahead(ttl);
        tokio::time::sleep(due.saturating_sub(first.read_at.elapsed()) + after).await;
        assert!(
            first.read_at.elapsed() < expires - reread_ahead(ttl) / 2,
            "the test slept past its window (a machine too busy to check this)"
        );
        let served = scanner.view(id).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&served, first));
    }

    /// Waits 10 ms more, failing once 2 s have passed in all.
    async fn tick_towards(waited: &mut Duration) {
        assert!(*waited < Duration::from_secs(2), "not read again");
        tokio::time::sleep(Duration::from_millis(10)).await;
        *waited += Duration::from_millis(10);
    }

    #[tokio::test]
    async fn a_view_scanned_near_its_expiry_is_read_again_in_the_background() {
        use crate::model::Grade;
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(20);
        let (scanner, id) = scanner_of_one(dir.path(), Grade::Green, ttl).await;
        let first = scanner.view(&id).await.unwrap().unwrap();
        assert_eq!(first.grade_fields.computed_grade, Grade::Green);
        // A change whose notice never reaches this scanner.
        put_grade(scanner.store(), &id, Grade::Red).await;
        let expires = scanner.expiry.ttl(id.as_str());
        let due = expires - reread_ahead(ttl);
        // Before the view is due, a scan neither reads nor changes it.
        tokio::time::sleep(due / 2).await;
        assert!(Arc::ptr_eq(
            &scanner.view(&id).await.unwrap().unwrap(),
            &first
        ));
        // Due: this scan is answered from the cached view, and starts a read.
        scan_when_due(&scanner, &id, &first, ttl, Duration::ZERO).await;
        let mut waited = Duration::ZERO;
        while cached_grade(&scanner, &id).await != Some(Grade::Red) {
            tick_towards(&mut waited).await;
        }
        // Read again before it expired, and its expiry starts anew: it is
        // still cached past the first view's expiry.
        assert!(first.read_at.elapsed() < expires);
        let second = scanner
            .views
            .as_ref()
            .unwrap()
            .get(&id)
            .await
            .flatten()
            .unwrap();
        tokio::time::sleep(expires.saturating_sub(first.read_at.elapsed()) + ttl / 10).await;
        let still = scanner.views.as_ref().unwrap().get(&id).await.flatten();
        assert!(still.is_some_and(|v| Arc::ptr_eq(&v, &second)));
    }

    #[tokio::test]
    async fn a_view_read_again_with_nothing_changed_stays_in_place_past_its_first_expiry() {
        use crate::model::Grade;
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(6);
        let (scanner, id) = scanner_of_one(dir.path(), Grade::Green, ttl).await;
        let first = scanner.view(&id).await.unwrap().unwrap();
        let expires = scanner.expiry.ttl(id.as_str());
        scan_when_due(&scanner, &id, &first, ttl, ttl / 50).await;
        let mut waited = Duration::ZERO;
        while first.fresh_since() == first.read_at {
            tick_towards(&mut waited).await;
        }
        assert!(!first.rereading.load(Ordering::Relaxed));
        // Nothing changed: the same view, still cached after the expiry it
        // had when it was read.
        tokio::time::sleep(expires.saturating_sub(first.read_at.elapsed()) + ttl / 10).await;
        let views = scanner.views.as_ref().unwrap();
        let still = views.get(&id).await.flatten();
        assert!(still.is_some_and(|v| Arc::ptr_eq(&v, &first)));
    }

    #[tokio::test]
    async fn a_view_read_before_a_change_and_cached_after_its_invalidation_is_dropped() {
        use crate::model::Grade;
        let dir = tempfile::tempdir().unwrap();
        let (scanner, id) = scanner_of_one(dir.path(), Grade::Green, VIEW_TTL).await;
        let views = scanner.views.as_ref().unwrap();
        // A read that starts before the change...
        let before = scanner.invalidations.load(Ordering::Acquire);
        let stale = load_view(&**scanner.store(), &id, true).await.unwrap();
        // ...the change and its notice...
        put_grade(scanner.store(), &id, Grade::Red).await;
        scanner.invalidate(&id).await;
        // ...then the stale read reaches the cache.
        views.insert(id.clone(), stale).await;
        scanner.drop_if_invalidated_since(&id, before).await;
        assert_eq!(cached_grade(&scanner, &id).await, None);
        let view = scanner.view(&id).await.unwrap().unwrap();
        assert_eq!(view.grade_fields.computed_grade, Grade::Red);
        // A read with no change since it started stays.
        let before = scanner.invalidations.load(Ordering::Acquire);
        scanner.drop_if_invalidated_since(&id, before).await;
        assert_eq!(cached_grade(&scanner, &id).await, Some(Grade::Red));
    }

    #[tokio::test]
    async fn a_view_read_again_keeps_its_answers_only_if_nothing_changed() {
        use crate::model::Grade;
        let dir = tempfile::tempdir().unwrap();
        let (scanner, id) = scanner_of_one(dir.path(), Grade::Green, VIEW_TTL).await;
        let store = scanner.store().clone();
        let read = || async { load_view(&*store, &id, true).await.unwrap().unwrap() };
        let today: Date = "2026-06-01".parse().unwrap();
        let claims = Arc::new(Verified {
            claims: yisaozhi_codes::Claims {
                kid: yisaozhi_codes::KeyId(1),
                merchant: id.as_str().into(),
                serial: 1,
                issued: Day(0),
                expires: Day(u16::MAX),
                grade: yisaozhi_codes::Grade::Green,
            },
            merchant_id: Some(id.clone()),
        });
        // Slots as the web layer uses them: JSON, page.
        let (json_slot, page_slot) = (0, 1);
        let key = |day, tips| MemoKey { day, tips };
        let json = (key(today, 0), json_slot);
        let memo = |text: &[u8]| Memo {
            piece: None,
            after: text.into(),
            crc: packed::crc32(&[text]),
            len: text.len() as u32,
        };
        let memoised = |view: &MerchantView, text: &str, key: MemoKey, slot: usize| {
            view.with_memo(text, key, slot, |status, _, memo| (status, memo.clone()))
        };
        let first = read().await;
        first.remember("123", &claims);
        first.memoise("123", json.0, json.1, Status::Valid, memo(b"first"));
        assert_eq!(
            memoised(&first, "123", json.0, json.1),
            Some((Status::Valid, memo(b"first")))
        );
        // Nothing else was answered: not the page, not another text, not
        // another day, not with other tips.
        assert_eq!(memoised(&first, "123", json.0, page_slot), None);
        assert_eq!(memoised(&first, "124", json.0, json.1), None);
        let tomorrow = today.tomorrow().unwrap();
        assert_eq!(memoised(&first, "123", key(tomorrow, 0), json_slot), None);
        assert_eq!(memoised(&first, "123", key(today, 1), json_slot), None);
        // A view read again with nothing changed keeps the text and answer.
        let same = read().await;
        same.adopt(&first);
        assert_eq!(
            memoised(&same, "123", json.0, json.1),
            Some((Status::Valid, memo(b"first")))
        );
        // One read after a change keeps the checked text, not its answer.
        put_grade(&store, &id, Grade::Red).await;
        let changed = read().await;
        changed.adopt(&first);
        assert_eq!(memoised(&changed, "123", json.0, json.1), None);
        // Its claims, kept without the merchant, are the claims checked.
        let kept = changed.verified("123", id.as_str()).unwrap();
        assert_eq!(kept.claims, claims.claims);
        assert_eq!(kept.merchant_id.as_ref(), Some(&id));
        // An answer of another day is replaced, with its status.
        let page = (key(tomorrow, 0), page_slot);
        first.memoise("123", page.0, page.1, Status::Expired, memo(b"p"));
        assert_eq!(memoised(&first, "123", json.0, json.1), None);
        assert_eq!(
            memoised(&first, "123", page.0, page.1),
            Some((Status::Expired, memo(b"p")))
        );
    }
}
