//! The scan path: token → signature (cached) → code status → live projection
//! (cached). No HTTP here; the handlers in `web::scan` only render the result.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::Date;
use moka::future::Cache;
use yisaozhi_codes::{Claims, Day, Token, Verdict};

use crate::clock;
use crate::domain::MerchantId;
use crate::grading::Projection;
use crate::keys::Keyring;
use crate::metrics;
use crate::store::{CodeStatus, SharedStore, StoreError};

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
    pub projection: Projection,
    pub codes: HashMap<u32, CodeStatus>,
    /// Answers rendered from this view for one day, built on first use; a new
    /// view (after any change) starts empty, so nothing here goes stale.
    rendered: std::sync::Mutex<Rendered>,
}

/// What a memoised rendering depends on besides the view and the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderKey {
    /// The scan JSON for a code status and code (serial and printed grade:
    /// everything a code's claims add to the answer is fixed by its serial).
    Json(Status, u32, crate::domain::Grade),
    /// The scan page for a code status and printed grade.
    Page(Status, Option<crate::domain::Grade>),
}

#[derive(Debug, Default)]
struct Rendered {
    day: Option<Date>,
    entries: Vec<(RenderKey, bytes::Bytes)>,
}

impl MerchantView {
    pub fn new(projection: Projection, codes: HashMap<u32, CodeStatus>) -> Self {
        Self {
            projection,
            codes,
            rendered: Default::default(),
        }
    }

    /// The rendering for `key` on `today`, built by `render` on first use.
    pub fn rendered(
        &self,
        today: Date,
        key: RenderKey,
        render: impl FnOnce() -> String,
    ) -> bytes::Bytes {
        let mut memo = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if memo.day != Some(today) {
            memo.day = Some(today);
            memo.entries.clear();
        }
        if let Some((_, hit)) = memo.entries.iter().find(|(k, _)| *k == key) {
            return hit.clone();
        }
        let mut text = render();
        // Kept for the day: no spare capacity (a `Bytes` keeps the whole
        // allocation of the string it came from).
        text.shrink_to_fit();
        let built = bytes::Bytes::from(text);
        memo.entries.push((key, built.clone()));
        built
    }
}

/// The claims of a code whose signature holds, with the merchant id parsed
/// once. Dereferences to the claims.
#[derive(Debug)]
pub struct Verified {
    claims: Claims,
    merchant_id: Option<MerchantId>,
}

impl std::ops::Deref for Verified {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}

/// The outcome of one scan.
#[derive(Debug)]
pub struct Scan {
    pub status: Status,
    /// Present unless the code is malformed or forged.
    pub claims: Option<Arc<Verified>>,
    pub view: Option<Arc<MerchantView>>,
    pub today: Date,
}

/// Reads a merchant's view: its projection and its codes' statuses, in one
/// store read.
async fn load_view(
    store: &dyn crate::store::Store,
    id: &MerchantId,
) -> Result<Option<Arc<MerchantView>>, StoreError> {
    Ok(store.scan_view(id).await?.map(|(projection, codes)| {
        Arc::new(MerchantView::new(projection, codes.into_iter().collect()))
    }))
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
    views: Option<Cache<MerchantId, Option<Arc<MerchantView>>>>,
    /// token text → claims if the signature holds, or why it does not. The
    /// signature does not depend on the day, so the answer never goes stale.
    verified: moka::sync::Cache<Box<str>, Signature>,
}

impl Scanner {
    pub fn new(store: SharedStore, keys: Arc<Keyring>, capacity: u64) -> Self {
        Self {
            store,
            keys,
            views: (capacity > 0).then(|| {
                Cache::builder()
                    .name("merchant_views")
                    .max_capacity(capacity)
                    .time_to_live(std::time::Duration::from_secs(300))
                    .build()
            }),
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

    /// The merchant's projection and code statuses, from cache or store.
    pub async fn view(
        &self,
        id: &MerchantId,
    ) -> Result<Option<Arc<MerchantView>>, Arc<StoreError>> {
        let read = |store: SharedStore, key: MerchantId| async move {
            let started = std::time::Instant::now();
            let loaded = load_view(&*store, &key).await;
            metrics::store_read(started, loaded.is_ok());
            loaded
        };
        let Some(views) = &self.views else {
            metrics::cache("merchant_views", false);
            return read(self.store.clone(), id.clone()).await.map_err(Arc::new);
        };
        if let Some(hit) = views.get(id).await {
            metrics::cache("merchant_views", true);
            return Ok(hit);
        }
        metrics::cache("merchant_views", false);
        views
            .try_get_with_by_ref(id, read(self.store.clone(), id.clone()))
            .await
    }

    pub async fn invalidate(&self, id: &MerchantId) {
        if let Some(views) = &self.views {
            views.invalidate(id).await;
        }
    }

    pub fn invalidate_all(&self) {
        if let Some(views) = &self.views {
            views.invalidate_all();
        }
    }

    /// The cached signature check of a token's text, if there is one.
    /// Only texts that parsed as a token are ever cached, and a token's text
    /// is its canonical form, so a hit needs no parse.
    fn cached_signature(&self, text: &str) -> Option<Signature> {
        let hit = self.verified.get(text);
        metrics::cache("verified_tokens", hit.is_some());
        hit
    }

    fn check_signature(&self, token: &Token) -> Signature {
        let text = token.as_str();
        // Day 0: expiry is judged per request below, so the cached answer is
        // about the signature alone.
        let outcome = match yisaozhi_codes::verify(text, |kid| self.keys.public(kid), Day(0)) {
            Verdict::Valid(claims) | Verdict::Expired(claims) => Ok(Arc::new(Verified {
                merchant_id: MerchantId::parse(&claims.merchant).ok(),
                claims,
            })),
            Verdict::Forged { why, .. } => Err(why),
            Verdict::Malformed(_) => Err("malformed"),
        };
        self.verified.insert(text.into(), outcome.clone());
        outcome
    }

    /// Scans a token (or a full code URL).
    pub async fn scan(&self, text: &str) -> Result<Scan, Arc<StoreError>> {
        let today = clock::today();
        let mut scan = Scan {
            status: Status::Malformed,
            claims: None,
            view: None,
            today,
        };
        let text = yisaozhi_codes::token_from_text(text);
        let signature = match self.cached_signature(text) {
            Some(hit) => hit,
            None => {
                let Ok(token) = Token::parse(text) else {
                    return Ok(scan);
                };
                self.check_signature(&token)
            }
        };
        let claims = match signature {
            Ok(c) => c,
            Err(_) => {
                scan.status = Status::Forged;
                return Ok(scan);
            }
        };
        let view = match &claims.merchant_id {
            Some(id) => self.view(id).await?,
            None => None,
        };
        let code_status = view
            .as_ref()
            .and_then(|v| v.codes.get(&claims.serial).copied());
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
        Ok(scan)
    }
}
