//! Regulators' queries (search, paging after a merchant, stats, the
//! reprint list and its count) answer on random data exactly what a read
//! of every projection answers, after the index has seen inserts, changes
//! of grade, name, region and categories, overrides, codes issued,
//! superseded and revoked.

use std::collections::BTreeMap;

use yisaozhi::model::{CreditCode, MerchantKind};
use yisaozhi::store::query::{DayCounts, Page, RegionDay, ReprintItem, Stats, DAILY_COUNTS};

use super::*;

/// SplitMix64: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const REGIONS: [&str; 5] = ["511504", "511502", "511521", "510104", "440101"];
const WORDS: [&str; 12] = [
    "鑫源",
    "超市",
    "便利店",
    "超",
    "市",
    "A",
    "a",
    "·",
    "=",
    "1",
    "12",
    " ",
];
const CATEGORIES: [&str; 5] = ["食品", "酒类", "饮料", "药品", "食品销售"];
const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn random_uscc(rng: &mut Rng, region: &str) -> String {
    let mut s = format!("92{region}");
    for _ in 0..9 {
        s.push(USCC_CHARS[rng.below(USCC_CHARS.len())] as char);
    }
    s.push(CreditCode::check_char(&s).expect("check character"));
    s
}

fn random_merchant(rng: &mut Rng, mid: &str) -> Merchant {
    let region = *rng.pick(&REGIONS);
    let mut name = String::from(*rng.pick(&["好味", "鑫源", "百味"]));
    for _ in 0..rng.below(4) {
        let word = WORDS[rng.below(WORDS.len())];
        name.push_str(word);
    }
    let vendor = rng.chance(4);
    let mut categories: Vec<&str> = (0..rng.below(3) + 1)
        .map(|_| *rng.pick(&CATEGORIES))
        .collect();
    if rng.chance(2) {
        categories.dedup();
    }
    let mut line = json!({
        "id": mid, "name": name, "kind": if vendor { "vendor" } else { "shop" },
        "address": "南岸东路1号", "region": region, "categories": categories,
        "contact_name": "张三", "contact_phone": "13800001234",
    });
    if !vendor || rng.chance(3) {
        line["uscc"] = json!(random_uscc(rng, region));
    }
    records::parse_merchant(&line.to_string()).expect("random merchant")
}

/// A projection of `m` with a random grade.
fn graded(rng: &mut Rng, m: &Merchant) -> Projection {
    let mut p = project(m, &[], None);
    p.grade = *rng.pick(&Grade::ALL);
    p.computed_grade = p.grade;
    p
}

/// `n` random merchants (ids `<tag>0000`, …) upserted, each with a
/// projection of a random grade.
async fn random_graded(s: &SharedStore, rng: &mut Rng, tag: &str, n: usize) -> Vec<Merchant> {
    let ms: Vec<Merchant> = (0..n)
        .map(|i| random_merchant(rng, &format!("{tag}{i:04}")))
        .collect();
    s.upsert_merchants(ms.clone()).await.unwrap();
    let ps: Vec<Projection> = ms.iter().map(|m| graded(rng, m)).collect();
    s.put_projections(ps).await.unwrap();
    ms
}

/// Every projection, read page by page: the reference.
async fn everything(s: &SharedStore) -> Vec<Projection> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = s.projections_page(after.clone(), 97).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last.merchant.id.clone());
        all.extend(page);
    }
}

fn reference_search(all: &[Projection], q: &MerchantQuery) -> Page<Projection> {
    let per_page = q.per_page.clamp(1, 500);
    let matching: Vec<&Projection> = all.iter().filter(|p| q.matches(p)).collect();
    Page {
        total: matching.len() as u64,
        page: q.page.max(1),
        per_page,
        items: matching
            .into_iter()
            .skip((q.page.max(1) - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect(),
    }
}

fn reference_stats(all: &[Projection], region: Option<&str>) -> Stats {
    let mut stats = Stats::default();
    for p in all {
        if region.is_none_or(|r| p.merchant.region.as_str().starts_with(r)) {
            stats.add(p);
        }
    }
    stats
}

async fn reference_reprint(s: &SharedStore, all: &[Projection]) -> Vec<ReprintItem> {
    let mut out = Vec::new();
    for p in all {
        let codes = s.codes_of(&p.merchant.id).await.unwrap();
        if let Some(c) = codes
            .iter()
            .find(|c| c.status == CodeStatus::Active && c.printed_grade != p.grade)
        {
            out.push(ReprintItem::new(p, c));
        }
    }
    out
}

fn random_query(rng: &mut Rng, all: &[Projection]) -> MerchantQuery {
    let some = |rng: &mut Rng| rng.chance(2);
    let q = match rng.below(6) {
        0 | 1 => {
            let name: Vec<char> = rng.pick(all).merchant.name.chars().collect();
            let start = rng.below(name.len());
            let len = 1 + rng.below((name.len() - start).min(4));
            Some(name[start..start + len].iter().collect())
        }
        2 => Some(rng.pick(all).merchant.id.to_string()),
        3 => all
            .iter()
            .find_map(|p| p.merchant.uscc.as_ref().filter(|_| rng.chance(7)))
            .map(|u| u.to_string()),
        4 => Some(rng.pick(&WORDS).to_string()),
        _ => None,
    };
    let region = some(rng).then(|| {
        let r = *rng.pick(&REGIONS);
        r[..1 + rng.below(6)].to_owned()
    });
    MerchantQuery {
        q,
        grade: some(rng).then(|| *rng.pick(&Grade::ALL)),
        region,
        category: (rng.chance(3)).then(|| rng.pick(&CATEGORIES).to_string()),
        kind: (rng.chance(3)).then(|| *rng.pick(MerchantKind::ALL)),
        page: 1 + rng.below(4),
        per_page: 1 + rng.below(40),
    }
}

fn id_list(ps: &[Projection]) -> Vec<String> {
    ps.iter().map(|p| p.merchant.id.to_string()).collect()
}

/// Every query checked against the reference, with the state it saw.
async fn check_queries(s: &SharedStore, rng: &mut Rng, queries: usize) {
    let all = everything(s).await;
    assert!(!all.is_empty());
    for _ in 0..queries {
        let q = random_query(rng, &all);
        let want = reference_search(&all, &q);
        let got = s.search(&q).await.unwrap();
        assert_eq!(
            (got.total, id_list(&got.items)),
            (want.total, id_list(&want.items)),
            "{q:?}"
        );
        assert_eq!(got.items, want.items, "{q:?}");
        assert_eq!((got.page, got.per_page), (want.page, want.per_page));

        // The ledger's way: pages after the last merchant of the one before.
        let mut streamed = Vec::new();
        let mut after = None;
        let limit = 1 + rng.below(30);
        loop {
            let page = s.search_after(&q, after.clone(), limit).await.unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some(last.merchant.id.clone());
            streamed.extend(id_list(&page));
        }
        let every: Vec<String> = all
            .iter()
            .filter(|p| q.matches(p))
            .map(|p| p.merchant.id.to_string())
            .collect();
        assert_eq!(streamed, every, "{q:?}");
    }
    for region in [
        None,
        Some("5"),
        Some("51"),
        Some("5115"),
        Some("511504"),
        Some("9"),
    ] {
        let want = reference_stats(&all, region);
        let got = s.stats(region).await.unwrap();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            serde_json::to_value(&want).unwrap(),
            "stats of {region:?}"
        );
    }
    let want = reference_reprint(s, &all).await;
    let got = s.reprint().await.unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&want).unwrap()
    );
    for region in [None, Some("51"), Some("511504"), Some("44")] {
        let n = want
            .iter()
            .filter(|r| region.is_none_or(|p| r.region.starts_with(p)))
            .count() as u64;
        assert_eq!(s.reprint_count(region).await.unwrap(), n, "{region:?}");
    }
}

/// Issues a code to one merchant in `one_in`, with a random printed grade
/// (a new code supersedes the merchant's active one).
async fn issue_some(
    s: &SharedStore,
    rng: &mut Rng,
    ms: &[Merchant],
    one_in: usize,
    serial: &mut u32,
) {
    for m in ms {
        if rng.chance(one_in) {
            *serial += 1;
            let printed = *rng.pick(&Grade::ALL);
            s.issue_code(code(*serial, m.id.as_str(), printed), None)
                .await
                .unwrap();
        }
    }
}

pub(super) async fn searches_and_stats_answer_what_reading_every_projection_answers(b: Backend) {
    let s = &b.store;
    let mut rng = Rng(19);
    let n = 240;
    let mut ms: Vec<Merchant> = (0..n)
        .map(|i| random_merchant(&mut rng, &format!("M{:04}", (i * 7919) % 10_000)))
        .collect();
    s.upsert_merchants(ms.clone()).await.unwrap();
    // Some never get a projection.
    let mut graded_now = Vec::new();
    for m in &ms {
        if !rng.chance(10) {
            graded_now.push(graded(&mut rng, m));
        }
    }
    for chunk in graded_now.chunks(50) {
        s.put_projections(chunk.to_vec()).await.unwrap();
    }
    // Codes for some: printed grades that may or may not be the live one.
    let mut serial = 0;
    issue_some(s, &mut rng, &ms, 2, &mut serial).await;
    check_queries(s, &mut rng, 120).await;

    // Changes: grades, names, regions, categories; a merchant graded twice
    // in one batch; overrides; codes superseded and revoked.
    for m in ms.iter_mut() {
        if rng.chance(4) {
            let fresh = random_merchant(&mut rng, m.id.as_str());
            *m = fresh;
        }
    }
    s.upsert_merchants(ms.clone()).await.unwrap();
    let mut batch = Vec::new();
    for m in &ms {
        if rng.chance(2) {
            batch.push(graded(&mut rng, m));
        }
    }
    if let Some(first) = batch.first().cloned() {
        let mut again = graded(&mut rng, &ms[0]);
        again.merchant = first.merchant.clone();
        batch.push(again);
    }
    s.put_projections(batch).await.unwrap();
    for m in &ms {
        if !rng.chance(8) {
            continue;
        }
        let o = Override {
            grade: *rng.pick(&Grade::ALL),
            reason: "复查".into(),
            expires_at: None,
            actor: "admin".into(),
            at: at(5),
        };
        let p = project(m, &[], Some(&o));
        s.set_override(
            &m.id,
            Some(o),
            p,
            entry(5, "admin", "override.set", m.id.as_str()),
        )
        .await
        .unwrap();
    }
    issue_some(s, &mut rng, &ms, 4, &mut serial).await;
    for revoked in (1..=serial).filter(|_| rng.chance(5)) {
        s.revoke_code(revoked, entry(6, "admin", "code.revoke", "x"))
            .await
            .unwrap();
    }
    check_queries(s, &mut rng, 160).await;
}

/// Codes issued while the projections of their merchants are written: the
/// index (each batch compared with what it read, and read again if a code
/// changed it meanwhile) still answers what reading every projection and
/// code answers.
pub(super) async fn the_index_holds_when_codes_are_issued_during_a_projection_write(b: Backend) {
    let s = &b.store;
    let mut rng = Rng(31);
    let ms = random_graded(s, &mut rng, "C", 300).await;
    // The same merchants graded again and again while codes are issued for
    // them, so codes land between an index batch's read and its write.
    let rounds: Vec<Vec<Projection>> = (0..60)
        .map(|_| ms.iter().map(|m| graded(&mut rng, m)).collect())
        .collect();
    let printed: Vec<(usize, Grade)> = (0..600)
        .map(|_| (rng.below(ms.len()), *rng.pick(&Grade::ALL)))
        .collect();
    let writing = async {
        for round in rounds {
            s.put_projections(round).await.unwrap();
        }
    };
    let issuing = async {
        for (serial, (i, grade)) in printed.iter().enumerate() {
            s.issue_code(code(serial as u32 + 1, ms[*i].id.as_str(), *grade), None)
                .await
                .unwrap();
        }
    };
    tokio::join!(writing, issuing);
    assert!(s.reprint_count(None).await.unwrap() > 0);
    check_queries(s, &mut rng, 40).await;
}

/// The counts by category count a merchant once, however often its
/// categories name one; a merchant without a projection is not counted.
pub(super) async fn stats_count_each_merchant_once_per_category(b: Backend) {
    let s = &b.store;
    let line = |mid: &str, cats: serde_json::Value| {
        records::parse_merchant(
            &json!({"id": mid, "name": "好味", "kind": "shop", "address": "南岸",
                "region": "511504", "categories": cats})
            .to_string(),
        )
        .unwrap()
    };
    let a = line("A", json!(["食品", "食品", "酒类"]));
    let b2 = line("B", json!(["食品"]));
    let c = line("C", json!(["酒类"]));
    s.upsert_merchants(vec![a.clone(), b2.clone(), c])
        .await
        .unwrap();
    s.put_projections(vec![project(&a, &[], None), project(&b2, &[], None)])
        .await
        .unwrap();
    let stats = s.stats(Some("511504")).await.unwrap();
    assert_eq!(stats.total, 2);
    let food: BTreeMap<Grade, u64> = [(Grade::Green, 2)].into();
    assert_eq!(stats.by_category["食品"], food);
    assert_eq!(stats.by_category["酒类"][&Grade::Green], 1);
    let found = s
        .search(&MerchantQuery {
            category: Some("食品".into()),
            page: 1,
            per_page: 10,
            ..MerchantQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 2);
    assert_eq!(id_list(&found.items), ["A", "B"]);
}

fn merchant_in(mid: &str, region: &str) -> Merchant {
    records::parse_merchant(
        &json!({"id": mid, "name": format!("商户{mid}"), "kind": "shop", "address": "南岸",
            "region": region, "categories": ["食品"]})
        .to_string(),
    )
    .unwrap()
}

/// Regrades what is due as of `day`, as `yisaozhi refresh` without files.
async fn refresh_on(b: &Backend, day: Date) -> yisaozhi::refresh::Summary {
    let tmp = tempfile::tempdir().unwrap();
    let opts = yisaozhi::refresh::RefreshOptions {
        merchants: None,
        records: Vec::new(),
        as_of: day,
        full: false,
        rejects: tmp.path().join("rejects.jsonl"),
        shard: None,
        stop: None,
    };
    yisaozhi::refresh::run(b.store.as_ref(), &Rules::default(), &opts)
        .await
        .unwrap()
}

async fn day_counts(b: &Backend, day: Date) -> DayCounts {
    yisaozhi::store::documents::get(b.store.as_ref(), DAILY_COUNTS, &DayCounts::key(day))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no counts of {day}"))
}

fn region_day(green: u64, yellow: u64, red: u64, changed: u64) -> RegionDay {
    RegionDay {
        green,
        yellow,
        red,
        changed,
    }
}

/// Each refresh notes its day's counts by region and adds its grade
/// changes to the day's; the dashboard reads twelve weeks of them within a
/// region, beside the live counts and the reprint queue.
pub(super) async fn the_refresh_notes_each_days_counts_and_the_dashboard_reads_them(b: Backend) {
    let s = &b.store;
    let (d1, d2) = (date(2026, 3, 1), date(2026, 3, 2));
    s.upsert_merchants(vec![
        merchant_in("A", "511504"),
        merchant_in("B", "511504"),
        merchant_in("C", "511504"),
        merchant_in("D", "511502"),
    ])
    .await
    .unwrap();
    s.add_records(vec![failed_sampling("a1", "A", "2026-02-01")])
        .await
        .unwrap();
    let first = refresh_on(&b, d1).await;
    assert_eq!(
        first.changed_by_region,
        BTreeMap::new(),
        "first grades are no changes"
    );
    let day1 = day_counts(&b, d1).await;
    assert_eq!(day1.as_of, d1);
    assert_eq!(day1.regions["511504"], region_day(2, 1, 0, 0));
    assert_eq!(day1.regions["511502"], region_day(1, 0, 0, 0));

    // Day 2: B turns red; a second refresh the same day turns D yellow.
    s.add_records(vec![
        failed_sampling("b1", "B", "2026-03-01"),
        failed_sampling("b2", "B", "2026-03-02"),
    ])
    .await
    .unwrap();
    refresh_on(&b, d2).await;
    assert_eq!(
        day_counts(&b, d2).await.regions["511504"],
        region_day(1, 1, 1, 1)
    );
    s.add_records(vec![failed_sampling("d1", "D", "2026-03-02")])
        .await
        .unwrap();
    refresh_on(&b, d2).await;
    let day2 = day_counts(&b, d2).await;
    assert_eq!(day2.regions["511504"], region_day(1, 1, 1, 1), "kept");
    assert_eq!(day2.regions["511502"], region_day(0, 1, 0, 1));
    assert_eq!(day_counts(&b, d1).await, day1, "another day's counts stay");

    // Days beyond twelve weeks and after today are not in the trend.
    for day in [date(2025, 12, 1), date(2026, 3, 3)] {
        let doc = DayCounts {
            as_of: day,
            regions: [("511504".to_owned(), region_day(9, 9, 9, 9))].into(),
        };
        yisaozhi::store::documents::put(s.as_ref(), DAILY_COUNTS, &DayCounts::key(day), &doc, None)
            .await
            .unwrap();
    }
    s.issue_code(code(1, "B", Grade::Green), None)
        .await
        .unwrap();
    s.issue_code(code(2, "D", Grade::Green), None)
        .await
        .unwrap();

    let dash = yisaozhi::dashboard::dashboard(s.as_ref(), Some("511504"), d2)
        .await
        .unwrap();
    let trend: Vec<(Date, RegionDay)> = dash.trend.iter().map(|t| (t.as_of, t.counts)).collect();
    assert_eq!(
        trend,
        [(d1, region_day(2, 1, 0, 0)), (d2, region_day(1, 1, 1, 1))]
    );
    assert_eq!(dash.changes_this_week, 1);
    assert_eq!(dash.total, 3);
    let stats = s.stats(Some("511504")).await.unwrap();
    assert_eq!(dash.by_grade, stats.by_grade);
    assert_eq!(dash.by_region, stats.by_region);
    assert_eq!(dash.reprint_queue, 1, "B's code shows green, B is red");

    let everywhere = yisaozhi::dashboard::dashboard(s.as_ref(), None, d2)
        .await
        .unwrap();
    assert_eq!(everywhere.changes_this_week, 2);
    assert_eq!(everywhere.total, 4);
    assert_eq!(everywhere.reprint_queue, 2);
    assert_eq!(
        everywhere.trend.last().map(|t| t.counts),
        Some(region_day(1, 2, 1, 2))
    );
}

/// A Redis store written before the search index existed (its `{search}`
/// keys deleted here) gets the index built when opened, codes included.
#[tokio::test]
async fn redis_builds_the_search_index_of_an_older_store_once() {
    let b = Backend::redis().await;
    let s = &b.store;
    let mut rng = Rng(22);
    let ms = random_graded(s, &mut rng, "R", 40).await;
    for (i, m) in ms.iter().enumerate().take(10) {
        s.issue_code(code(i as u32 + 1, m.id.as_str(), Grade::Red), None)
            .await
            .unwrap();
    }
    let want = (
        s.stats(None).await.unwrap().total,
        s.reprint_count(None).await.unwrap(),
    );
    assert_eq!(want.0, 40);
    let port = redis_helpers::standalone().port;
    let pattern = format!("{}:{{search}}:*", redis_of(&b).prefix());
    let keys = redis_cli(port, &["--scan", "--pattern", &pattern]);
    for key in keys.lines().filter(|k| !k.is_empty()) {
        redis_cli(port, &["del", key]);
    }
    assert_eq!(s.stats(None).await.unwrap().total, 0, "the index is gone");
    redis_of(&b).build_search_index().await.unwrap();
    let got = (
        s.stats(None).await.unwrap().total,
        s.reprint_count(None).await.unwrap(),
    );
    assert_eq!(got, want);
    check_queries(s, &mut rng, 30).await;
}

/// A Redis store indexed by an earlier version holds a set of merchants per
/// credit code, which nothing reads: connecting removes them, once, and
/// nothing else; standalone and cluster.
async fn old_credit_code_sets_are_removed_on_connect(b: Backend) {
    let s = &b.store;
    let mut rng = Rng(23);
    let ms = random_graded(s, &mut rng, "U", 30).await;
    let redis = redis_of(&b);
    let prefix = redis.prefix().to_owned();
    let ports: Vec<u16> = if redis.is_cluster() {
        redis_helpers::cluster()
            .nodes
            .iter()
            .map(|n| n.port)
            .collect()
    } else {
        vec![redis_helpers::standalone().port]
    };
    // Any node: `-c` follows the cluster's redirections.
    let cli = |args: &[&str]| {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        redis_cli(ports[0], &all)
    };
    let sets = || {
        let pattern = format!("{prefix}:{{search}}:uscc:*");
        ports
            .iter()
            .map(|&port| {
                redis_cli(port, &["--scan", "--pattern", &pattern])
                    .lines()
                    .filter(|k| !k.is_empty())
                    .count()
            })
            .sum::<usize>()
    };
    assert_eq!(sets(), 0, "the index keeps no credit-code sets");
    // What an earlier version left: a set per credit code, and no marker.
    let coded: Vec<&Merchant> = ms.iter().filter(|m| m.uscc.is_some()).collect();
    assert!(coded.len() > 5);
    for m in &coded {
        let key = format!(
            "{prefix}:{{search}}:uscc:{}",
            m.uscc.as_ref().unwrap().as_str()
        );
        cli(&["sadd", &key, m.id.as_str()]);
    }
    assert_eq!(sets(), coded.len());
    let marker = format!("{prefix}:{{meta}}:search-uscc");
    cli(&["del", &marker]);
    let want = (
        s.stats(None).await.unwrap().total,
        s.reprint_count(None).await.unwrap(),
    );
    let options = RedisOptions {
        prefix: prefix.clone(),
        ..Backend::options()
    };
    let again = if redis.is_cluster() {
        RedisStore::connect_cluster(&redis_helpers::cluster().urls(), options).await
    } else {
        RedisStore::connect(&redis_helpers::standalone().url(), options).await
    }
    .unwrap();
    assert_eq!(sets(), 0, "connecting removed them");
    assert_eq!(cli(&["get", &marker]).trim(), "dropped");
    let again: SharedStore = Arc::new(again);
    let got = (
        again.stats(None).await.unwrap().total,
        again.reprint_count(None).await.unwrap(),
    );
    assert_eq!(got, want);
    check_queries(&again, &mut rng, 20).await;
}

#[tokio::test]
async fn redis_removes_the_credit_code_sets_of_an_older_index_on_connect() {
    old_credit_code_sets_are_removed_on_connect(Backend::redis().await).await;
}

#[tokio::test]
async fn cluster_removes_the_credit_code_sets_of_an_older_index_on_connect() {
    old_credit_code_sets_are_removed_on_connect(Backend::cluster().await).await;
}
