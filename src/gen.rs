//! `yisaozhi gen`: synthetic merchants and records for benchmarks and tests,
//! in the input formats of CONTRACT §3.
//!
//! Realistic on purpose: about 10 % of merchants are itinerant vendors (most
//! without a credit code); every shop has a valid GB 32100-2015 credit code;
//! all seven record kinds appear; dates fall in the `days` before `as_of`.
//! Each merchant has a hidden risk profile (clean, risky, bad) that shapes
//! its records, so most merchants grade green with a tail of yellow and red
//! (with the default rules and 10 records per merchant: roughly 85 / 11 / 4 %).
//!
//! Deterministic: the same options give byte-identical files. Merchants are
//! drawn from a generator seeded by (seed, merchant number) and records from
//! one seeded by (seed, chunk number) with a fixed chunk size, so the output
//! does not depend on the number of threads. Chunks are generated in parallel
//! (rayon) and written in order through a `BufWriter`; memory stays bounded
//! by a few chunks whatever the sizes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::civil::Date;
use jiff::ToSpan;
use rayon::prelude::*;

use crate::domain::CreditCode;
use crate::progress::{Progress, Unit};

/// Records per generator chunk (fixed: part of the output's determinism).
const CHUNK: u64 = 1 << 15;
/// Merchants per generator chunk.
const MERCHANT_CHUNK: u64 = 1 << 14;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// `merchants.jsonl` and `records.jsonl`.
    Jsonl,
    /// `merchants.csv` and one `<kind>.csv` per record kind.
    Csv,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub merchants: u64,
    pub records: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// Records are dated in the `days` days up to and including `as_of`.
    pub as_of: Date,
    pub days: u32,
    pub format: GenFormat,
    /// Number of the first record (record ids are `<kind prefix><number>`);
    /// a later batch starts after the earlier one so its ids are new.
    pub first_record: u64,
    /// Give records only to this many merchants (spread evenly over all of
    /// them), e.g. 1 % of merchants for an incremental refresh.
    pub touch: Option<u64>,
    /// Write the merchants file.
    pub write_merchants: bool,
    /// Show progress (a bar on a terminal, log lines otherwise).
    pub progress: bool,
}

/// What `generate` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub merchants: u64,
    pub vendors: u64,
    pub records: u64,
    /// Records per kind, in [`crate::records::RECORD_KINDS`] order.
    pub by_kind: [u64; 7],
    pub files: Vec<PathBuf>,
}

impl std::fmt::Display for GenSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "generated {} merchants ({} vendors) and {} records (",
            self.merchants, self.vendors, self.records
        )?;
        for (i, (kind, n)) in crate::records::RECORD_KINDS
            .iter()
            .zip(self.by_kind)
            .enumerate()
        {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{kind} {n}")?;
        }
        write!(f, ")")?;
        for file in &self.files {
            write!(f, "\n  {}", file.display())?;
        }
        Ok(())
    }
}

/// Writes the data set into `opts.out`.
pub fn generate(opts: &GenOptions) -> anyhow::Result<GenSummary> {
    anyhow::ensure!(opts.merchants > 0, "--merchants must be at least 1");
    anyhow::ensure!(opts.days > 0, "--days must be at least 1");
    if let Some(t) = opts.touch {
        anyhow::ensure!(
            (1..=opts.merchants).contains(&t),
            "--touch must be between 1 and --merchants"
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    crate::refresh::name_rayon_threads();
    let ctx = Ctx::new(opts)?;
    let mut summary = GenSummary::default();
    if opts.write_merchants {
        write_merchants(&ctx, opts, &mut summary)?;
    }
    write_records(&ctx, opts, &mut summary)?;
    Ok(summary)
}

// --- randomness -----------------------------------------------------------

/// SplitMix64: tiny, fast, good enough for synthetic data, and stable
/// across platforms and versions (unlike a library's default generator).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.0 ^= r.next().wrapping_add(n.wrapping_mul(0xE703_7ED1_A0B4_28DB));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, drawn with those weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// --- vocabulary -----------------------------------------------------------

/// Sichuan county-level divisions (GB/T 2260).
const REGIONS: [(&str, &str); 16] = [
    ("511504", "叙州区"),
    ("511502", "翠屏区"),
    ("511503", "南溪区"),
    ("510781", "江油市"),
    ("510522", "合江县"),
    ("510923", "大英县"),
    ("510104", "锦江区"),
    ("510105", "青羊区"),
    ("510106", "金牛区"),
    ("510107", "武侯区"),
    ("510108", "成华区"),
    ("510703", "涪城区"),
    ("510502", "江阳区"),
    ("510903", "船山区"),
    ("511102", "市中区"),
    ("511302", "顺庆区"),
];
const TOWNS: [&str; 12] = [
    "柏溪", "南岸", "赵场", "观音", "横江", "高场", "凤仪", "蕨溪", "喜捷", "白花", "泥溪", "双龙",
];
const ROADS: [&str; 10] = [
    "人民路",
    "建设路",
    "解放路",
    "中山路",
    "新华街",
    "滨江路",
    "长江大道",
    "金沙江路",
    "东街",
    "西街",
];
const SHOP_WORDS: [&str; 16] = [
    "鑫源", "惠民", "福满", "家乐", "顺达", "兴旺", "同心", "百味", "康泰", "金穗", "万家", "和兴",
    "佳美", "新悦", "广源", "利民",
];
const SHOP_KINDS: [&str; 12] = [
    "超市",
    "便利店",
    "副食店",
    "餐馆",
    "面馆",
    "火锅店",
    "大药房",
    "烟酒店",
    "粮油店",
    "水果店",
    "熟食店",
    "茶叶店",
];
const VENDOR_GOODS: [&str; 8] = [
    "烧烤",
    "凉粉",
    "水果",
    "蔬菜",
    "炸洋芋",
    "糖油果子",
    "豆花",
    "小百货",
];
const CATEGORIES: [&str; 22] = [
    "食品",
    "酒类",
    "饮料",
    "粮油",
    "肉制品",
    "乳制品",
    "调味品",
    "糕点",
    "水果",
    "蔬菜",
    "水产品",
    "餐饮服务",
    "药品",
    "医疗器械",
    "保健食品",
    "化妆品",
    "日用品",
    "服装",
    "家电",
    "农资",
    "烟草",
    "儿童用品",
];
const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超",
];
const PRODUCTS: [(&str, &str); 12] = [
    ("散装白酒", "GB 2757-2012"),
    ("酱油", "GB 2717-2018"),
    ("食用植物油", "GB 2716-2018"),
    ("大米", "GB 2762-2022"),
    ("糕点", "GB 7099-2015"),
    ("鲜猪肉", "GB 2707-2016"),
    ("豆芽", "GB 22556-2008"),
    ("饮料", "GB 7101-2022"),
    ("腌腊肉制品", "GB 2730-2015"),
    ("蔬菜", "GB 2763-2021"),
    ("小麦粉", "GB 2762-2022"),
    ("食醋", "GB 2719-2018"),
];
const FAILED_ITEMS: [&str; 10] = [
    "甲醇",
    "菌落总数",
    "大肠菌群",
    "酸价",
    "过氧化值",
    "铅",
    "苯甲酸",
    "克伦特罗",
    "毒死蜱",
    "二氧化硫",
];
const COMPLAINTS: [&str; 8] = [
    "缺斤短两",
    "售卖过期食品",
    "价格欺诈",
    "卫生状况差",
    "拒绝退换",
    "虚假宣传",
    "服务态度差",
    "未明码标价",
];
const LIST_REASONS: [&str; 5] = [
    "未按期公示年度报告",
    "通过登记的住所无法联系",
    "提供虚假材料取得登记",
    "生产销售假冒伪劣产品",
    "拒不履行行政处罚决定",
];
const SELF_REPORTS: [&str; 4] = [
    "本月进货票据已上传",
    "进货查验记录齐全",
    "自查未发现问题",
    "已完成自查并整改",
];
const COMMITMENTS: [&str; 3] = ["食品安全承诺书", "诚信经营承诺书", "质量安全承诺书"];
const SOURCES: [&str; 6] = [
    "双随机抽查",
    "日常监督检查",
    "专项整治",
    "12315平台",
    "国家企业信用信息公示系统",
    "商户自主填报",
];
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Merchant risk profiles: how likely adverse findings are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Risk {
    Clean,
    Risky,
    Bad,
}

/// Record kinds in [`crate::records::RECORD_KINDS`] order.
const INSPECTION: usize = 0;
const SAMPLING: usize = 1;
const PENALTY: usize = 2;
const COMPLAINT: usize = 3;
const LIST: usize = 4;
const SELF_REPORT: usize = 5;
const COMMITMENT: usize = 6;
const ID_PREFIX: [&str; 7] = ["JC", "CY", "CF", "TS", "ML", "ZC", "CN"];

/// Kind weights (per mille-ish) by risk.
const KIND_WEIGHTS: [[u32; 7]; 3] = [
    // inspection, sampling, penalty, complaint, list, self_report, commitment
    [330, 200, 3, 70, 3, 300, 94],
    [300, 220, 40, 150, 30, 200, 60],
    [280, 220, 120, 160, 80, 100, 40],
];

/// Shared, precomputed state.
struct Ctx {
    merchants: u64,
    width: usize,
    seed: u64,
    days: u32,
    /// `dates[i]` is `as_of - DATE_BACK + i` as `YYYY-MM-DD`.
    dates: Vec<[u8; 10]>,
    first_record: u64,
    touch: Option<u64>,
}

/// Dates table reach: up to this many days before `as_of` and after it.
const DATE_BACK: i64 = 4000;
const DATE_AHEAD: i64 = 1200;

impl Ctx {
    fn new(opts: &GenOptions) -> anyhow::Result<Ctx> {
        anyhow::ensure!(
            i64::from(opts.days) <= DATE_BACK - 100,
            "--days must be at most {}",
            DATE_BACK - 100
        );
        let start = opts
            .as_of
            .checked_sub(DATE_BACK.days())
            .context("--as-of is too early")?;
        let mut dates = Vec::with_capacity((DATE_BACK + DATE_AHEAD) as usize);
        let mut d = start;
        for _ in 0..DATE_BACK + DATE_AHEAD {
            let s = d.to_string();
            let b: [u8; 10] = s.as_bytes().try_into().context("--as-of out of range")?;
            dates.push(b);
            d = d.tomorrow().context("--as-of is too late")?;
        }
        let width = opts.merchants.to_string().len().max(7);
        anyhow::ensure!(width < 32, "--merchants is too large");
        Ok(Ctx {
            merchants: opts.merchants,
            width,
            seed: opts.seed,
            days: opts.days,
            dates,
            first_record: opts.first_record,
            touch: opts.touch,
        })
    }

    /// The date `offset` days after `as_of` (negative: before).
    fn date(&self, offset: i64) -> &str {
        let i = (DATE_BACK + offset).clamp(0, DATE_BACK + DATE_AHEAD - 1) as usize;
        // The table holds ASCII dates only.
        std::str::from_utf8(&self.dates[i]).unwrap_or("2000-01-01")
    }

    fn merchant_id(&self, n: u64, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "M{:0w$}", n + 1, w = self.width);
    }

    fn risk(&self, n: u64) -> Risk {
        let x = Rng::new(self.seed, 2, n).below(1000);
        if x < 40 {
            Risk::Bad
        } else if x < 160 {
            Risk::Risky
        } else {
            Risk::Clean
        }
    }

    fn is_vendor(&self, n: u64) -> bool {
        Rng::new(self.seed, 3, n).below(100) < 10
    }
}

// --- merchants --------------------------------------------------------------

/// One generated merchant, as field values.
struct GenMerchant {
    id: String,
    name: String,
    vendor: bool,
    uscc: Option<String>,
    address: String,
    region: &'static str,
    categories: Vec<&'static str>,
    contact_name: Option<String>,
    contact_phone: Option<String>,
    id_number: Option<String>,
}

fn merchant(ctx: &Ctx, n: u64) -> GenMerchant {
    let mut r = Rng::new(ctx.seed, 1, n);
    let vendor = ctx.is_vendor(n);
    let (region, county) = *r.pick(&REGIONS);
    let town = *r.pick(&TOWNS);
    let mut id = String::with_capacity(16);
    ctx.merchant_id(n, &mut id);
    let name = if vendor {
        format!("{town}流动摊贩·{}{}", r.pick(&VENDOR_GOODS), n % 1000)
    } else {
        format!(
            "{county}{}{}{}",
            r.pick(&SHOP_WORDS),
            r.pick(&SHOP_KINDS),
            n % 100
        )
    };
    let uscc = (!vendor || r.chance(200)).then(|| {
        let company = !vendor && r.chance(300);
        let mut s = String::with_capacity(18);
        s.push('9');
        s.push(if company { '1' } else { '2' });
        s.push_str(region);
        for _ in 0..9 {
            s.push(USCC_CHARS[r.below(31) as usize] as char);
        }
        // All characters come from the alphabet, so a check character exists.
        s.push(CreditCode::check_char(&s).unwrap_or('0'));
        s
    });
    let address = if vendor {
        format!("{town}农贸市场周边")
    } else {
        format!("{town}{}{}号", r.pick(&ROADS), r.range(1, 300))
    };
    let ncat = if vendor { 1 } else { r.range(1, 3) as usize };
    let mut categories: Vec<&'static str> = Vec::with_capacity(ncat);
    while categories.len() < ncat {
        let c = *r.pick(&CATEGORIES);
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    let contact_name =
        (vendor || r.chance(700)).then(|| format!("{}{}", r.pick(&SURNAMES), r.pick(&GIVEN)));
    let contact_phone = contact_name
        .as_ref()
        .map(|_| format!("1{}{:09}", r.range(3, 9), r.below(1_000_000_000)));
    let id_number = vendor.then(|| id_number(&mut r, region));
    GenMerchant {
        id,
        name,
        vendor,
        uscc,
        address,
        region,
        categories,
        contact_name,
        contact_phone,
        id_number,
    }
}

/// A fictitious 18-character resident ID number with a valid ISO 7064
/// MOD 11-2 check character.
fn id_number(r: &mut Rng, region: &str) -> String {
    let mut s = String::with_capacity(18);
    s.push_str(region);
    s.push_str(&format!(
        "{:04}{:02}{:02}{:03}",
        r.range(1960, 2004),
        r.range(1, 12),
        r.range(1, 28),
        r.below(1000)
    ));
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = s.bytes().zip(W).map(|(b, w)| u32::from(b - b'0') * w).sum();
    s.push(b"10X98765432"[(sum % 11) as usize] as char);
    s
}

fn write_merchants(ctx: &Ctx, opts: &GenOptions, summary: &mut GenSummary) -> anyhow::Result<()> {
    let (name, header) = match opts.format {
        GenFormat::Jsonl => ("merchants.jsonl", None),
        GenFormat::Csv => (
            "merchants.csv",
            Some("id,name,kind,uscc,address,region,categories,contact_name,contact_phone,id_number\n"),
        ),
    };
    let path = opts.out.join(name);
    let mut out = create(&path)?;
    if let Some(h) = header {
        out.write_all(h.as_bytes())?;
    }
    let progress = Progress::new("merchants", opts.merchants, Unit::Items, opts.progress);
    let chunks = opts.merchants.div_ceil(MERCHANT_CHUNK);
    let window = (rayon::current_num_threads() * 2) as u64;
    let mut c = 0;
    while c < chunks {
        let end = (c + window).min(chunks);
        let parts: Vec<(Vec<u8>, u64)> = (c..end)
            .into_par_iter()
            .map(|chunk| {
                let lo = chunk * MERCHANT_CHUNK;
                let hi = (lo + MERCHANT_CHUNK).min(opts.merchants);
                let mut buf = Vec::with_capacity(((hi - lo) * 300) as usize);
                let mut vendors = 0;
                for n in lo..hi {
                    let m = merchant(ctx, n);
                    vendors += u64::from(m.vendor);
                    match opts.format {
                        GenFormat::Jsonl => merchant_json(&m, &mut buf),
                        GenFormat::Csv => merchant_csv(&m, &mut buf),
                    }
                }
                (buf, vendors)
            })
            .collect();
        for (buf, vendors) in parts {
            out.write_all(&buf)?;
            summary.vendors += vendors;
        }
        progress.set(((end * MERCHANT_CHUNK).min(opts.merchants)) as u64);
        c = end;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    progress.finish();
    summary.merchants = opts.merchants;
    summary.files.push(path);
    Ok(())
}

fn merchant_json(m: &GenMerchant, b: &mut Vec<u8>) {
    b.extend_from_slice(b"{\"id\":");
    json_str(b, &m.id);
    b.extend_from_slice(b",\"name\":");
    json_str(b, &m.name);
    b.extend_from_slice(if m.vendor {
        b",\"kind\":\"vendor\""
    } else {
        b",\"kind\":\"shop\""
    });
    if let Some(u) = &m.uscc {
        b.extend_from_slice(b",\"uscc\":");
        json_str(b, u);
    }
    b.extend_from_slice(b",\"address\":");
    json_str(b, &m.address);
    b.extend_from_slice(b",\"region\":");
    json_str(b, m.region);
    b.extend_from_slice(b",\"categories\":[");
    for (i, c) in m.categories.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json_str(b, c);
    }
    b.push(b']');
    for (key, v) in [
        ("contact_name", &m.contact_name),
        ("contact_phone", &m.contact_phone),
        ("id_number", &m.id_number),
    ] {
        if let Some(v) = v {
            b.extend_from_slice(b",\"");
            b.extend_from_slice(key.as_bytes());
            b.extend_from_slice(b"\":");
            json_str(b, v);
        }
    }
    b.extend_from_slice(b"}\n");
}

fn merchant_csv(m: &GenMerchant, b: &mut Vec<u8>) {
    let cats = m.categories.join(";");
    let fields: [&str; 10] = [
        &m.id,
        &m.name,
        if m.vendor { "vendor" } else { "shop" },
        m.uscc.as_deref().unwrap_or(""),
        &m.address,
        m.region,
        &cats,
        m.contact_name.as_deref().unwrap_or(""),
        m.contact_phone.as_deref().unwrap_or(""),
        m.id_number.as_deref().unwrap_or(""),
    ];
    csv_row(b, &fields);
}

/// Writes a JSON string. Generated text never holds quotes, backslashes or
/// control characters, so it needs no escaping.
fn json_str(b: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20));
    b.push(b'"');
    b.extend_from_slice(s.as_bytes());
    b.push(b'"');
}

/// Writes one CSV row; generated text never holds commas, quotes or line
/// breaks, so no field needs quoting.
fn csv_row(b: &mut Vec<u8>, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        debug_assert!(!f.bytes().any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r')));
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(f.as_bytes());
    }
    b.push(b'\n');
}

// --- records ----------------------------------------------------------------

/// CSV header of each kind's file.
const CSV_HEADERS: [&str; 7] = [
    "id,merchant,kind,date,source,hazards,deadline,rectified,rectified_on\n",
    "id,merchant,kind,date,source,product,standard,passed,failed_items\n",
    "id,merchant,kind,date,source,decision_no,severity,fine_cny,publicity_until\n",
    "id,merchant,kind,date,source,substantiated,summary\n",
    "id,merchant,kind,date,source,list,action,reason\n",
    "id,merchant,kind,date,source,report_type,summary\n",
    "id,merchant,kind,date,source,summary\n",
];

/// Output buffers of one chunk: one for JSONL, seven (one per kind) for CSV.
struct RecordBufs {
    bufs: Vec<Vec<u8>>,
    by_kind: [u64; 7],
}

fn write_records(ctx: &Ctx, opts: &GenOptions, summary: &mut GenSummary) -> anyhow::Result<()> {
    let mut outs = Vec::new();
    match opts.format {
        GenFormat::Jsonl => {
            let path = opts.out.join("records.jsonl");
            outs.push(create(&path)?);
            summary.files.push(path);
        }
        GenFormat::Csv => {
            for (kind, header) in crate::records::RECORD_KINDS.iter().zip(CSV_HEADERS) {
                let path = opts.out.join(format!("{kind}.csv"));
                let mut out = create(&path)?;
                out.write_all(header.as_bytes())?;
                outs.push(out);
                summary.files.push(path);
            }
        }
    }
    let progress = Progress::new("records", opts.records, Unit::Items, opts.progress);
    let chunks = opts.records.div_ceil(CHUNK);
    let window = (rayon::current_num_threads() * 2) as u64;
    let mut c = 0;
    while c < chunks {
        let end = (c + window).min(chunks);
        let parts: Vec<RecordBufs> = (c..end)
            .into_par_iter()
            .map(|chunk| record_chunk(ctx, opts, chunk))
            .collect();
        for part in parts {
            for (out, buf) in outs.iter_mut().zip(&part.bufs) {
                out.write_all(buf)?;
            }
            for (total, n) in summary.by_kind.iter_mut().zip(part.by_kind) {
                *total += n;
            }
        }
        progress.set((end * CHUNK).min(opts.records));
        c = end;
    }
    for out in &mut outs {
        out.flush().context("cannot write the records")?;
    }
    progress.finish();
    summary.records = opts.records;
    Ok(())
}

fn record_chunk(ctx: &Ctx, opts: &GenOptions, chunk: u64) -> RecordBufs {
    let lo = chunk * CHUNK;
    let hi = (lo + CHUNK).min(opts.records);
    let nbufs = if opts.format == GenFormat::Jsonl {
        1
    } else {
        7
    };
    let mut out = RecordBufs {
        bufs: (0..nbufs)
            .map(|_| Vec::with_capacity(((hi - lo) * 200) as usize / nbufs))
            .collect(),
        by_kind: [0; 7],
    };
    let mut r = Rng::new(ctx.seed, 4, chunk);
    let mut rec = GenRecord::default();
    for n in lo..hi {
        gen_record(ctx, &mut r, ctx.first_record + n, &mut rec);
        out.by_kind[rec.kind] += 1;
        match opts.format {
            GenFormat::Jsonl => rec.json(ctx, &mut out.bufs[0]),
            GenFormat::Csv => rec.csv(ctx, &mut out.bufs[rec.kind]),
        }
    }
    out
}

/// One generated record: common fields and the kind's fields as text
/// (empty = absent), reused across records to avoid allocation.
#[derive(Default)]
struct GenRecord {
    kind: usize,
    id: String,
    merchant: String,
    date: i64,
    source: &'static str,
    /// Kind-specific fields in CSV header order: (name, value, is JSON literal).
    fields: Vec<(&'static str, String, bool)>,
}

impl GenRecord {
    fn set(&mut self, name: &'static str, value: impl std::fmt::Display, literal: bool) {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = write!(s, "{value}");
        self.fields.push((name, s, literal));
    }

    fn json(&self, ctx: &Ctx, b: &mut Vec<u8>) {
        b.extend_from_slice(b"{\"id\":");
        json_str(b, &self.id);
        b.extend_from_slice(b",\"merchant\":");
        json_str(b, &self.merchant);
        b.extend_from_slice(b",\"kind\":");
        json_str(b, crate::records::RECORD_KINDS[self.kind]);
        b.extend_from_slice(b",\"date\":");
        json_str(b, ctx.date(self.date));
        b.extend_from_slice(b",\"source\":");
        json_str(b, self.source);
        for (name, value, literal) in &self.fields {
            if value.is_empty() {
                continue;
            }
            b.extend_from_slice(b",\"");
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(b"\":");
            if *literal {
                b.extend_from_slice(value.as_bytes());
            } else if *name == "failed_items" {
                b.push(b'[');
                for (i, item) in value.split(';').enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    json_str(b, item);
                }
                b.push(b']');
            } else {
                json_str(b, value);
            }
        }
        b.extend_from_slice(b"}\n");
    }

    fn csv(&self, ctx: &Ctx, b: &mut Vec<u8>) {
        let mut fields: Vec<&str> = Vec::with_capacity(5 + self.fields.len());
        fields.extend([
            self.id.as_str(),
            self.merchant.as_str(),
            crate::records::RECORD_KINDS[self.kind],
            ctx.date(self.date),
            self.source,
        ]);
        fields.extend(self.fields.iter().map(|(_, v, _)| v.as_str()));
        csv_row(b, &fields);
    }
}

fn gen_record(ctx: &Ctx, r: &mut Rng, number: u64, rec: &mut GenRecord) {
    use std::fmt::Write as _;
    // Merchant: uniform over everyone (or the touched subset); vendors are
    // visited half as often as shops.
    let pick = |r: &mut Rng| match ctx.touch {
        Some(t) => r.below(t) * (ctx.merchants / t),
        None => r.below(ctx.merchants),
    };
    let mut m = pick(r);
    if ctx.is_vendor(m) && r.chance(500) {
        m = pick(r);
    }
    let risk = ctx.risk(m);
    let vendor = ctx.is_vendor(m);
    let weights = &KIND_WEIGHTS[match risk {
        Risk::Clean => 0,
        Risk::Risky => 1,
        Risk::Bad => 2,
    }];
    let kind = r.weighted(weights);
    rec.kind = kind;
    rec.id.clear();
    let _ = write!(rec.id, "{}{:010}", ID_PREFIX[kind], number + 1);
    rec.merchant.clear();
    ctx.merchant_id(m, &mut rec.merchant);
    let date = -(r.below(u64::from(ctx.days)) as i64);
    rec.date = date;
    rec.fields.clear();
    let by_risk = |clean: u64, risky: u64, bad: u64| match risk {
        Risk::Clean => clean,
        Risk::Risky => risky,
        Risk::Bad => bad,
    };
    match kind {
        INSPECTION => {
            rec.source = *r.pick(&SOURCES[..3]);
            let hazards = if r.chance(by_risk(40, 250, 450)) {
                r.range(1, 4)
            } else {
                0
            };
            rec.set("hazards", hazards, true);
            if hazards > 0 {
                let deadline = date + r.range(7, 30) as i64;
                rec.set("deadline", ctx.date(deadline), false);
                let rectified = r.chance(by_risk(970, 850, 650));
                rec.set("rectified", rectified, true);
                if rectified {
                    let on = (date + r.range(1, (deadline - date) as u64) as i64).min(0);
                    rec.set("rectified_on", ctx.date(on), false);
                } else {
                    rec.set("rectified_on", "", false);
                }
            } else {
                rec.set("deadline", "", false);
                rec.set("rectified", true, true);
                rec.set("rectified_on", "", false);
            }
        }
        SAMPLING => {
            rec.source = *r.pick(&SOURCES[..3]);
            let (product, standard) = *r.pick(&PRODUCTS);
            rec.set("product", product, false);
            rec.set("standard", if r.chance(900) { standard } else { "" }, false);
            let passed = !r.chance(by_risk(15, 120, 300));
            rec.set("passed", passed, true);
            if passed {
                rec.set("failed_items", "", false);
            } else if r.chance(300) {
                let a = *r.pick(&FAILED_ITEMS);
                let mut b = *r.pick(&FAILED_ITEMS);
                if b == a {
                    b = FAILED_ITEMS[(FAILED_ITEMS.iter().position(|x| *x == a).unwrap_or(0) + 1)
                        % FAILED_ITEMS.len()];
                }
                rec.set("failed_items", format_args!("{a};{b}"), false);
            } else {
                rec.set("failed_items", r.pick(&FAILED_ITEMS), false);
            }
        }
        PENALTY => {
            rec.source = *r.pick(&SOURCES[..3]);
            let severity = r.weighted(&[by_risk(70, 50, 30) as u32, 28, by_risk(2, 12, 35) as u32]);
            let (sev, fine, publicity) = match severity {
                0 => ("minor", r.range(2, 30) * 100, 90),
                1 => ("general", r.range(20, 99) * 100, 365),
                _ => ("severe", r.range(10, 200) * 1000, 1095),
            };
            let county = &REGIONS[(m % REGIONS.len() as u64) as usize].1[..3];
            rec.set(
                "decision_no",
                format_args!(
                    "{county}市监处罚〔{}〕{}号",
                    &ctx.date(date)[..4],
                    number % 100_000
                ),
                false,
            );
            rec.set("severity", sev, false);
            rec.set("fine_cny", fine, true);
            let until = if severity == 0 && r.chance(300) {
                String::new()
            } else {
                ctx.date(date + publicity).to_owned()
            };
            rec.set("publicity_until", until, false);
        }
        COMPLAINT => {
            rec.source = "12315平台";
            rec.set("substantiated", r.chance(by_risk(150, 450, 600)), true);
            rec.set(
                "summary",
                if r.chance(800) {
                    *r.pick(&COMPLAINTS)
                } else {
                    ""
                },
                false,
            );
        }
        LIST => {
            rec.source = "国家企业信用信息公示系统";
            let serious = r.chance(by_risk(20, 60, 250));
            rec.set("list", if serious { "serious" } else { "abnormal" }, false);
            rec.set(
                "action",
                if r.chance(600) { "add" } else { "remove" },
                false,
            );
            let reason = if serious {
                *r.pick(&LIST_REASONS[2..])
            } else {
                *r.pick(&LIST_REASONS[..2])
            };
            rec.set("reason", reason, false);
        }
        SELF_REPORT => {
            rec.source = "商户自主填报";
            let t = *r.pick(&["invoice", "incoming_check", "self_check"]);
            rec.set("report_type", t, false);
            rec.set(
                "summary",
                if r.chance(700) {
                    *r.pick(&SELF_REPORTS)
                } else {
                    ""
                },
                false,
            );
        }
        _ => {
            debug_assert_eq!(kind, COMMITMENT);
            rec.source = if vendor {
                "游商登记"
            } else {
                "商户自主填报"
            };
            rec.set("summary", r.pick(&COMMITMENTS), false);
        }
    }
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{parse_merchant, parse_record};

    fn opts(dir: &Path, format: GenFormat) -> GenOptions {
        GenOptions {
            merchants: 500,
            records: 5000,
            seed: 7,
            out: dir.to_owned(),
            as_of: "2026-06-01".parse().unwrap(),
            days: 730,
            format,
            first_record: 0,
            touch: None,
            write_merchants: true,
            progress: false,
        }
    }

    #[test]
    fn output_is_valid_deterministic_and_covers_every_kind() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let s = generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&opts(b.path(), GenFormat::Jsonl)).unwrap();
        for f in ["merchants.jsonl", "records.jsonl"] {
            let x = std::fs::read(a.path().join(f)).unwrap();
            assert_eq!(x, std::fs::read(b.path().join(f)).unwrap(), "{f} differs");
        }
        let merchants = std::fs::read_to_string(a.path().join("merchants.jsonl")).unwrap();
        let mut vendors = 0;
        for line in merchants.lines() {
            let m = parse_merchant(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            vendors += usize::from(m.kind == crate::records::MerchantKind::Vendor);
            if m.kind == crate::records::MerchantKind::Shop {
                assert!(m.uscc.is_some(), "{line}");
            }
        }
        assert_eq!(merchants.lines().count(), 500);
        assert!((25..=80).contains(&vendors), "{vendors} vendors");
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let as_of: Date = "2026-06-01".parse().unwrap();
        for line in records.lines() {
            let r = parse_record(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(r.date <= as_of && r.date > as_of.checked_sub(730.days()).unwrap());
        }
        assert_eq!(s.records, 5000);
        assert!(s.by_kind.iter().all(|&n| n > 0), "{:?}", s.by_kind);
    }

    #[test]
    fn another_seed_gives_other_data() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        generate(&GenOptions {
            seed: 8,
            ..opts(b.path(), GenFormat::Jsonl)
        })
        .unwrap();
        let x = std::fs::read(a.path().join("records.jsonl")).unwrap();
        assert_ne!(x, std::fs::read(b.path().join("records.jsonl")).unwrap());
    }

    #[test]
    fn csv_has_one_file_per_kind_with_the_same_records() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(&opts(a.path(), GenFormat::Jsonl)).unwrap();
        let s = generate(&opts(b.path(), GenFormat::Csv)).unwrap();
        assert_eq!(s.files.len(), 8);
        let jsonl = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut rows = 0;
        for kind in crate::records::RECORD_KINDS {
            let csv = std::fs::read_to_string(b.path().join(format!("{kind}.csv"))).unwrap();
            rows += csv.lines().count() - 1;
        }
        assert_eq!(rows, jsonl.lines().count());
    }

    #[test]
    fn touch_limits_the_merchants_and_first_record_shifts_ids() {
        let a = tempfile::tempdir().unwrap();
        generate(&GenOptions {
            touch: Some(5),
            first_record: 1_000_000,
            write_merchants: false,
            ..opts(a.path(), GenFormat::Jsonl)
        })
        .unwrap();
        assert!(!a.path().join("merchants.jsonl").exists());
        let records = std::fs::read_to_string(a.path().join("records.jsonl")).unwrap();
        let mut merchants = std::collections::BTreeSet::new();
        for line in records.lines() {
            let r = parse_record(line).unwrap();
            assert!(r.id[2..].parse::<u64>().unwrap() > 1_000_000, "{}", r.id);
            merchants.insert(r.merchant);
        }
        assert_eq!(merchants.len(), 5, "{merchants:?}");
    }

    #[test]
    fn generated_id_numbers_and_credit_codes_check() {
        let mut r = Rng::new(1, 1, 1);
        let id = id_number(&mut r, "511504");
        assert_eq!(id.len(), 18);
        for n in 0..200 {
            let ctx = Ctx::new(&opts(Path::new("."), GenFormat::Jsonl)).unwrap();
            if let Some(u) = merchant(&ctx, n).uscc {
                CreditCode::parse(&u).unwrap();
            }
        }
    }
}
