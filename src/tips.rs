//! Consumer tips (消费提示, CONTRACT §5): short notices that staff publish
//! for regions and product categories over a window of days, shown on the
//! scan page and in the scan JSON of every merchant they cover.
//!
//! Tips are few (at most [`MAX_TIPS`] stored) and every rendered scan
//! answer asks which apply, so each process keeps them all in memory
//! ([`Tips`]): an immutable [`TipSet`] behind an `Arc`, swapped whole when
//! the tips change, numbered by a generation that the scan's memoised
//! answers are keyed by (a warm scan compares one atomic number). A write
//! stores the tip with its audit entry in the `tips` collection, then a new
//! random stamp in `tips_stamp`; every process reads the stamp at each
//! change poll and reloads the tips when it differs (and at the latest
//! every [`FULL_RELOAD`], in case a process died between the two writes).
//!
//! Coverage: a region code ending in zeros covers every region starting
//! with its non-zero prefix (`511500` covers `511504`, as in CONTRACT §7).
//! An empty `regions` list means every region (publishable only by a token
//! whose scope is every region); an empty `categories` list means every
//! category. A tip is in force from `from` through `until`, both included,
//! in China Standard Time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::auth::Scope;
use crate::model::{check_text, truncate, AuditEntry, RegionCode, TextKind};
use crate::store::documents::{self, Collection, Documents};
use crate::store::{StoreError, StoreResult};

/// The tips, one document each, keyed by id.
pub const TIPS: Collection = Collection::new("tips");
/// One document, [`STAMP_KEY`]: a random text written after every change.
const STAMP: Collection = Collection::new("tips_stamp");
const STAMP_KEY: &str = "current";

/// Most characters of a tip's text.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most region codes one tip lists.
pub const MAX_REGIONS: usize = 64;
/// Most categories one tip lists.
pub const MAX_CATEGORIES: usize = 32;
/// Most characters of one category.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Longest window of a tip, in days (`from` and `until` included).
pub const MAX_WINDOW_DAYS: i64 = 366;
/// Most tips stored at once: a publication beyond it is refused until
/// ended ones are deleted.
pub const MAX_TIPS: usize = 1000;
/// Most tips one merchant's answer shows: the latest starting first.
pub const MAX_SHOWN: usize = 10;
/// Tips are read again at least this often, whatever the stamp says.
pub const FULL_RELOAD: Duration = Duration::from_secs(60);

/// A published tip, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    pub id: String,
    pub text: String,
    /// Regions covered (a code ending in zeros covers its prefix); empty:
    /// every region.
    pub regions: Vec<RegionCode>,
    /// Categories covered, as merchants list them; empty: every category.
    pub categories: Vec<String>,
    /// First day in force.
    pub from: Date,
    /// Last day in force.
    pub until: Date,
    /// The token name that published it.
    pub actor: String,
    pub at: Timestamp,
}

/// The prefix of region codes that `region` covers: its digits without the
/// trailing zeros (`511500` → `5115`; `000000` → every region).
pub fn covered_prefix(region: &RegionCode) -> &str {
    region.as_str().trim_end_matches('0')
}

impl Tip {
    /// Whether the tip is in force on `day`.
    pub fn in_force(&self, day: Date) -> bool {
        self.from <= day && day <= self.until
    }

    /// Whether the tip applies to a merchant in `region` that lists
    /// `categories`, whatever the day.
    pub fn covers(&self, region: &str, categories: &[String]) -> bool {
        let in_region = self.regions.is_empty()
            || self
                .regions
                .iter()
                .any(|r| region.starts_with(covered_prefix(r)));
        in_region
            && (self.categories.is_empty()
                || self.categories.iter().any(|c| categories.contains(c)))
    }

    /// Whether `scope` may publish or delete this tip: every region it
    /// covers is in the scope's regions.
    pub fn within(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Read => false,
            Scope::Write { region_prefix } => {
                region_prefix.is_empty()
                    || (!self.regions.is_empty()
                        && self
                            .regions
                            .iter()
                            .all(|r| covered_prefix(r).starts_with(region_prefix.as_str())))
            }
        }
    }
}

/// The body of a publication, as sent ([`Draft::from_json`]);
/// [`Draft::into_tip`] checks it.
#[derive(Debug)]
pub struct Draft {
    text: String,
    regions: Vec<String>,
    categories: Vec<String>,
    from: String,
    until: String,
}

/// Why a publication was refused: the field and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct DraftError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> DraftError {
    DraftError {
        field,
        message: message.into(),
    }
}

/// Refuses a list of `len` items when over `max`, with `hint`.
fn at_most(field: &'static str, len: usize, max: usize, hint: &str) -> Result<(), DraftError> {
    if len > max {
        return Err(refuse(
            field,
            format!("at most {max} items (got {len}); {hint}"),
        ));
    }
    Ok(())
}

fn parse_date(field: &'static str, raw: &str) -> Result<Date, DraftError> {
    raw.parse().map_err(|_| {
        refuse(
            field,
            format!("expected YYYY-MM-DD, got `{}`", truncate(raw)),
        )
    })
}

/// The fields of a publication's body.
const FIELDS: &str = "text, regions, categories, from, until";

fn text_field(
    m: &mut serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<String, DraftError> {
    match m.remove(field) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(refuse(field, "expected a string")),
        None => Err(refuse(field, "missing")),
    }
}

fn list_field(
    m: &mut serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Vec<String>, DraftError> {
    let expected = || refuse(field, "expected a list of strings (empty: no restriction)");
    match m.remove(field) {
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(expected()),
            })
            .collect(),
        Some(_) => Err(expected()),
        None => Err(refuse(field, "missing")),
    }
}

impl Draft {
    /// Reads a publication's body: an object of exactly the fields
    /// `text`, `regions`, `categories`, `from` and `until`.
    pub fn from_json(body: serde_json::Value) -> Result<Draft, DraftError> {
        let serde_json::Value::Object(mut m) = body else {
            return Err(refuse("body", format!("expected an object of {FIELDS}")));
        };
        let draft = Draft {
            text: text_field(&mut m, "text")?,
            regions: list_field(&mut m, "regions")?,
            categories: list_field(&mut m, "categories")?,
            from: text_field(&mut m, "from")?,
            until: text_field(&mut m, "until")?,
        };
        if let Some(unknown) = m.keys().next() {
            return Err(refuse(
                "body",
                format!("unknown field `{}`; expected {FIELDS}", truncate(unknown)),
            ));
        }
        Ok(draft)
    }

    /// The tip this draft publishes as `id`, by `actor`, checked against
    /// `today`: text 1–[`MAX_TEXT_CHARS`] characters of one line, region
    /// codes of 6 digits, categories of one line, `from` ≤ `until`,
    /// `until` not before today, a window of at most
    /// [`MAX_WINDOW_DAYS`]; repeated regions and categories are kept once.
    pub fn into_tip(
        self,
        id: String,
        actor: &str,
        today: Date,
        at: Timestamp,
    ) -> Result<Tip, DraftError> {
        let text = self.text.trim();
        if text.is_empty() {
            return Err(refuse(
                "text",
                format!("expected 1-{MAX_TEXT_CHARS} characters"),
            ));
        }
        check_text(text, MAX_TEXT_CHARS, TextKind::Line)
            .map_err(|e| refuse("text", e.to_string()))?;
        at_most(
            "regions",
            self.regions.len(),
            MAX_REGIONS,
            "a code ending in zeros covers its prefix, e.g. 511500",
        )?;
        let mut regions = Vec::with_capacity(self.regions.len());
        for raw in &self.regions {
            let r = RegionCode::parse(raw).map_err(|e| refuse("regions", e.to_string()))?;
            if !regions.contains(&r) {
                regions.push(r);
            }
        }
        at_most(
            "categories",
            self.categories.len(),
            MAX_CATEGORIES,
            "an empty list covers every category",
        )?;
        let mut categories: Vec<String> = Vec::with_capacity(self.categories.len());
        for raw in &self.categories {
            let c = raw.trim();
            if c.is_empty() {
                return Err(refuse(
                    "categories",
                    "an empty category; leave the list empty to cover every category",
                ));
            }
            check_text(c, MAX_CATEGORY_CHARS, TextKind::Line)
                .map_err(|e| refuse("categories", format!("`{}`: {e}", truncate(c))))?;
            if !categories.iter().any(|k| k == c) {
                categories.push(c.to_owned());
            }
        }
        let from = parse_date("from", &self.from)?;
        let until = parse_date("until", &self.until)?;
        if until < from {
            return Err(refuse(
                "until",
                format!("{until} is before `from` ({from})"),
            ));
        }
        if until < today {
            return Err(refuse(
                "until",
                format!("{until} has passed (today is {today})"),
            ));
        }
        let last = from.checked_add(jiff::Span::new().days(MAX_WINDOW_DAYS - 1));
        if last.is_ok_and(|last| until > last) {
            return Err(refuse(
                "until",
                format!("a tip runs at most {MAX_WINDOW_DAYS} days ({from} to {until} is longer)"),
            ));
        }
        Ok(Tip {
            id,
            text: text.to_owned(),
            regions,
            categories,
            from,
            until,
            actor: actor.to_owned(),
            at,
        })
    }
}

/// A new tip id: `tip-` and 16 hex digits (64 random bits).
pub fn new_id() -> StoreResult<String> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw)
        .map_err(|e| StoreError::Unavailable(format!("no system randomness: {e}")))?;
    Ok(format!("tip-{}", data_encoding::HEXLOWER.encode(&raw)))
}

/// Whether `raw` has the form of a tip id (a path's id is checked before
/// any store read).
pub fn is_id(raw: &str) -> bool {
    raw.strip_prefix("tip-").is_some_and(|hex| {
        hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Who a tip may be shown to: a merchant's region and categories, as its
/// projection lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct Audience {
    pub region: RegionCode,
    pub categories: Vec<String>,
}

/// Every stored tip at one moment, newest window first; immutable.
#[derive(Debug, Default)]
pub struct TipSet {
    generation: u64,
    tips: Vec<Tip>,
}

impl TipSet {
    /// Numbers the sets a process has held: a new set, a new number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every tip: the latest `from` first, then the latest published.
    pub fn all(&self) -> &[Tip] {
        &self.tips
    }

    /// The tips in force on `day` for `audience`: at most [`MAX_SHOWN`],
    /// the latest starting first.
    pub fn shown(&self, audience: &Audience, day: Date) -> Vec<&Tip> {
        self.tips
            .iter()
            .filter(|t| t.in_force(day) && t.covers(audience.region.as_str(), &audience.categories))
            .take(MAX_SHOWN)
            .collect()
    }
}

fn newest_first(tips: &mut [Tip]) {
    tips.sort_by(|a, b| (b.from, b.at, &b.id).cmp(&(a.from, a.at, &a.id)));
}

/// The tips as this process knows them, shared by the scanner and the
/// handlers, and how it learns of changes.
#[derive(Debug, Default)]
pub struct Tips {
    current: RwLock<Arc<TipSet>>,
    /// The generation of `current`, readable without the lock.
    generation: AtomicU64,
    /// The stamp read before the last load and when that was; `None`
    /// before the first load.
    loaded: Mutex<Option<(Option<String>, Instant)>>,
}

impl Tips {
    /// The generation of the current set: one atomic load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current set.
    pub fn current(&self) -> Arc<TipSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `tips` in place, as a new generation only if they differ from
    /// the current ones (a periodic reload of unchanged tips keeps every
    /// memoised answer).
    fn replace(&self, mut tips: Vec<Tip>) {
        newest_first(&mut tips);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.tips == tips {
            return;
        }
        let generation = current.generation + 1;
        *current = Arc::new(TipSet { generation, tips });
        self.generation.store(generation, Ordering::Release);
    }

    /// Reads every tip from the store. The stamp is read first: a change
    /// made after it writes a new stamp, which the next poll sees.
    pub async fn reload<S: Documents + ?Sized>(&self, store: &S) -> StoreResult<()> {
        let stamp = store.document(STAMP, STAMP_KEY).await?;
        let tips = all(store).await?;
        // The tips and the stamp read before them go in place together: of
        // two loads at once, whichever lands last leaves a pair that is
        // either current or older than the stored stamp, which the next
        // poll then sees.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        self.replace(tips);
        *loaded = Some((stamp, Instant::now()));
        Ok(())
    }

    /// Reloads the tips if another process changed them since the last
    /// load (the stamp differs), if they were never loaded, or if the last
    /// load is [`FULL_RELOAD`] old. One small read otherwise.
    pub async fn poll<S: Documents + ?Sized>(&self, store: &S) -> StoreResult<()> {
        let last = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let due = match last {
            None => true,
            Some((_, at)) if at.elapsed() >= FULL_RELOAD => true,
            Some((seen, _)) => store.document(STAMP, STAMP_KEY).await? != seen,
        };
        if due {
            self.reload(store).await?;
        }
        Ok(())
    }

    /// Stores a new tip with its audit entry, tells other processes, and
    /// loads it here. Whether it was stored (`false`: its id was taken).
    pub async fn publish<S: Documents + ?Sized>(
        &self,
        store: &S,
        tip: &Tip,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        let stored = documents::insert(store, TIPS, &tip.id, tip, Some(audit)).await?;
        if stored {
            self.changed(store).await?;
        }
        Ok(stored)
    }

    /// Deletes the tip stored as `old_json` (as read), with its audit
    /// entry: whether it did (`false`: deleted or changed meanwhile).
    pub async fn delete<S: Documents + ?Sized>(
        &self,
        store: &S,
        id: &str,
        old_json: String,
        audit: AuditEntry,
    ) -> StoreResult<bool> {
        let deleted =
            documents::replace::<Tip>(store, TIPS, id, old_json, None, Some(audit)).await?;
        if deleted {
            self.changed(store).await?;
        }
        Ok(deleted)
    }

    /// After a change: a new stamp for the other processes, and this
    /// process's set read again.
    async fn changed<S: Documents + ?Sized>(&self, store: &S) -> StoreResult<()> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw)
            .map_err(|e| StoreError::Unavailable(format!("no system randomness: {e}")))?;
        let stamp = data_encoding::HEXLOWER.encode(&raw);
        documents::put(store, STAMP, STAMP_KEY, &stamp, None).await?;
        self.reload(store).await
    }
}

/// Every stored tip, the latest `from` first.
pub async fn all<S: Documents + ?Sized>(store: &S) -> StoreResult<Vec<Tip>> {
    let mut tips: Vec<Tip> = documents::all(store, TIPS)
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    newest_first(&mut tips);
    Ok(tips)
}

/// A stored tip and its text as stored (for a compare-and-swap).
pub async fn stored<S: Documents + ?Sized>(
    store: &S,
    id: &str,
) -> StoreResult<Option<(Tip, String)>> {
    let Some(json) = store.document(TIPS, id).await? else {
        return Ok(None);
    };
    let tip = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("document tips/{id}: {e}")))?;
    Ok(Some((tip, json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn draft(regions: &[&str], categories: &[&str], from: &str, until: &str) -> Draft {
        Draft {
            text: "中秋将至，购买月饼请认准生产日期和保质期，索要购物凭证。".into(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
            categories: categories.iter().map(|s| s.to_string()).collect(),
            from: from.into(),
            until: until.into(),
        }
    }

    fn tip(regions: &[&str], categories: &[&str]) -> Tip {
        draft(regions, categories, "2026-09-01", "2026-09-30")
            .into_tip(
                "tip-0000000000000001".into(),
                "县局",
                day("2026-08-01"),
                Timestamp::UNIX_EPOCH,
            )
            .unwrap()
    }

    fn audience(region: &str, categories: &[&str]) -> Audience {
        Audience {
            region: RegionCode::parse(region).unwrap(),
            categories: categories.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_region_ending_in_zeros_covers_its_prefix_and_empty_lists_cover_everything() {
        // (tip's regions, tip's categories, merchant's region, merchant's
        // categories, covered)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a str, &'a [&'a str], bool);
        let cases: &[Case] = &[
            (&["511500"], &["食品"], "511504", &["食品"], true),
            (&["511500"], &["食品"], "511600", &["食品"], false),
            (&["511504"], &["食品"], "511504", &["餐饮", "食品"], true),
            (&["511504"], &["食品"], "511505", &["食品"], false),
            (&["510000"], &[], "511521", &["药品"], true),
            (&["511521", "511600"], &["药品"], "511602", &["药品"], true),
            (&["511500"], &["药品"], "511504", &["食品"], false),
            (&["511500"], &["药品"], "511504", &[], false),
            (&[], &["食品"], "650102", &["食品"], true),
            (&[], &[], "650102", &[], true),
        ];
        for (regions, categories, region, listed, want) in cases {
            let t = tip(regions, categories);
            let a = audience(region, listed);
            assert_eq!(
                t.covers(a.region.as_str(), &a.categories),
                *want,
                "{regions:?} {categories:?} → {region} {listed:?}"
            );
        }
    }

    #[test]
    fn a_tip_is_in_force_from_its_first_through_its_last_day() {
        let t = tip(&["511500"], &[]);
        assert!(!t.in_force(day("2026-08-31")));
        assert!(t.in_force(day("2026-09-01")));
        assert!(t.in_force(day("2026-09-30")));
        assert!(!t.in_force(day("2026-10-01")));
    }

    #[test]
    fn a_scope_publishes_only_for_regions_inside_it() {
        let township = Scope::parse("write:511504").unwrap();
        let county = Scope::parse("write:5115").unwrap();
        let everywhere = Scope::parse("write").unwrap();
        let read = Scope::parse("read").unwrap();
        let cases: &[(&[&str], &Scope, bool)] = &[
            (&["511504"], &township, true),
            (&["511500"], &township, false),
            (&["511504", "511505"], &township, false),
            (&["511500"], &county, true),
            (&["510000"], &county, false),
            (&["511504", "511521"], &county, true),
            (&[], &county, false),
            (&[], &everywhere, true),
            (&["650102"], &everywhere, true),
            (&["511504"], &read, false),
        ];
        for (regions, scope, want) in cases {
            assert_eq!(
                tip(regions, &[]).within(scope),
                *want,
                "{regions:?} by {scope:?}"
            );
        }
    }

    #[test]
    fn a_draft_is_checked_field_by_field() {
        let today = day("2026-08-01");
        let check = |d: Draft| {
            d.into_tip(
                "tip-0000000000000001".into(),
                "县局",
                today,
                Timestamp::UNIX_EPOCH,
            )
        };
        let texted = |text: String| Draft {
            text,
            ..draft(&["511500"], &[], "2026-08-01", "2026-08-01")
        };
        let many: Vec<String> = (0..=MAX_REGIONS)
            .map(|i| format!("{:06}", 510000 + i))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cats: Vec<String> = (0..=MAX_CATEGORIES).map(|i| format!("类{i}")).collect();
        let cats: Vec<&str> = cats.iter().map(String::as_str).collect();
        let (from, until) = ("2026-08-01", "2026-08-02");
        let cases = [
            (texted("  ".into()), "text"),
            (texted("长".repeat(MAX_TEXT_CHARS + 1)), "text"),
            (texted("注意\u{202e}反转".into()), "text"),
            (texted("第一行\n第二行".into()), "text"),
            (draft(&["5115"], &[], from, until), "regions"),
            (draft(&many, &[], from, until), "regions"),
            (draft(&["511500"], &[""], from, until), "categories"),
            (draft(&["511500"], &["a\tb"], from, until), "categories"),
            (draft(&["511500"], &cats, from, until), "categories"),
            (draft(&["511500"], &[], "2026-8-1", until), "from"),
            (draft(&["511500"], &[], from, "tomorrow"), "until"),
            (draft(&["511500"], &[], "2026-08-03", until), "until"),
            (draft(&["511500"], &[], "2026-07-01", "2026-07-31"), "until"),
            (draft(&["511500"], &[], from, "2027-08-02"), "until"),
        ];
        for (d, field) in cases {
            let shown = format!("{d:?}");
            assert_eq!(check(d).unwrap_err().field, field, "{shown}");
        }
        // The longest window, a window that started before today, repeats
        // kept once, text trimmed.
        let d = Draft {
            text: " 请索要发票 ".into(),
            ..draft(
                &["511500", "511500"],
                &["食品", " 食品 "],
                "2026-07-01",
                "2027-07-01",
            )
        };
        let t = check(d).unwrap();
        assert_eq!(
            (t.regions.len(), t.categories.len(), t.text.as_str()),
            (1, 1, "请索要发票")
        );
    }

    #[test]
    fn a_set_shows_what_is_in_force_for_the_merchant_latest_first_and_at_most_a_few() {
        let tips = Tips::default();
        let mut all = Vec::new();
        for i in 0..(MAX_SHOWN as i8 + 3) {
            let mut t = tip(&["511500"], &["食品"]);
            t.id = format!("tip-{i:016}");
            t.from = day("2026-09-01") + jiff::Span::new().days(i);
            all.push(t);
        }
        let mut elsewhere = tip(&["650000"], &[]);
        elsewhere.id = "tip-elsewhere".into();
        all.push(elsewhere);
        tips.replace(all.clone());
        let set = tips.current();
        assert_eq!(set.generation(), tips.generation());
        let shop = audience("511504", &["食品"]);
        let shown = set.shown(&shop, day("2026-09-20"));
        assert_eq!(shown.len(), MAX_SHOWN);
        assert!(shown.windows(2).all(|w| w[0].from >= w[1].from));
        assert_eq!(shown[0].from, day("2026-09-13"));
        assert_eq!(set.shown(&shop, day("2026-09-01")).len(), 1);
        assert!(set.shown(&shop, day("2026-10-01")).is_empty());
        assert!(set
            .shown(&audience("511504", &["药品"]), day("2026-09-20"))
            .is_empty());
        // Unchanged tips keep the generation; a change makes a new one.
        let g = tips.generation();
        tips.replace(all.clone());
        assert_eq!(tips.generation(), g);
        all.pop();
        tips.replace(all);
        assert_eq!(tips.generation(), g + 1);
        assert_eq!(tips.current().all().len(), MAX_SHOWN + 3);
    }

    #[test]
    fn ids_have_one_form() {
        let id = new_id().unwrap();
        assert!(is_id(&id), "{id}");
        assert_ne!(id, new_id().unwrap());
        for bad in [
            "tip-",
            "tip-0123456789abcdeF",
            "tip-0123456789abcdef0",
            "x-0123456789abcdef",
            "tip-0123456789abcde/",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
    }
}
