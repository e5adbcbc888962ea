//! Sample data for `yisaozhi demo`: the merchants and records it writes to
//! `DIR/merchants.jsonl` and `DIR/records.jsonl` (CONTRACT §3 formats) so that
//! users can read, edit and re-import them.
//!
//! The county is 宜宾市叙州区 (region `511504`): 64 shops and 10 itinerant
//! vendors (游商) in five townships/streets. Every merchant has a clean routine
//! inspection and a passed sampling test or a self-report, so most are green;
//! a few are designed so that each rule of CONTRACT §4 fires, alone where
//! possible, plus cases of credit repair (records whose window or publicity
//! period has ended) and of grades about to change (`next_change_at`).
//!
//! Record dates are offsets from `as_of`, so the demo shows the same grades
//! whatever day it is run. Everything is deterministic: the credit codes,
//! phone numbers and ID numbers come from a fixed hash of the merchant's
//! position, not from a random source. All personal data is fictitious.

use jiff::civil::Date;
use jiff::Span;
use serde_json::{json, Map, Value};

use crate::model::CreditCode;

/// The demo's merchants and records, one JSON object per JSONL line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub merchants: Vec<Value>,
    pub records: Vec<Value>,
}

/// Region code of 宜宾市叙州区 (GB/T 2260), shared by every demo merchant.
pub const REGION: &str = "511504";

/// The townships/streets of the demo, with the local market-regulation office.
pub const TOWNSHIPS: [&str; 5] = ["柏溪街道", "南岸街道", "赵场街道", "观音镇", "横江镇"];
const OFFICES: [&str; 5] = ["柏溪", "南岸", "赵场", "观音", "横江"];

/// How a merchant is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    /// Shop, 个体工商户 (credit code `92…`).
    Ind,
    /// Shop, company (credit code `91…`).
    Co,
    /// Itinerant vendor without a business licence (no credit code).
    Vendor,
    /// Itinerant vendor registered as 个体工商户 (credit code `92…`).
    VendorInd,
}

/// What the merchant's records are designed to show (see [`Scen::expected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scen {
    /// Only the baseline records: green.
    Plain,
    R1,
    R2Severe,
    R2Fine,
    R2Y2,
    R3,
    R3Y4,
    R4,
    Y1,
    Y1Y3,
    Y2,
    Y2General,
    Y3,
    /// One failed sampling 360 days ago: yellow, green again in 5 days.
    Y3Soon,
    Y4,
    /// Hazards found 10 days ago, deadline in 10 days, not yet rectified:
    /// yellow now, red (R4) the day after the deadline.
    Y4Pending,
    /// Hazards found 175 days ago, rectified: yellow, green again in 5 days.
    Y4Soon,
    Y5,
    Y4Y5,
    /// Abnormal list: added, later removed → green.
    Y1Removed,
    /// Three complaints, only two substantiated → green.
    Y5Neg,
    /// A failed sampling 400 days ago (outside the 365-day window) → green.
    OldFail,
    /// A minor penalty whose publicity has ended → green.
    PublicityEnded,
    /// A fine of 20000 400 days ago, publicity ended → green.
    OldFine,
    /// Hazards found 200 days ago and rectified → green.
    OldHazard,
}

impl Scen {
    /// The grade and the matching rule ids (in CONTRACT §4 table order), or
    /// `None` for plain merchants.
    fn expected(self) -> Option<(&'static str, Vec<&'static str>)> {
        use Scen::*;
        let (grade, rules): (&str, &[&str]) = match self {
            Plain => return None,
            R1 => ("red", &["R1"]),
            R2Severe | R2Fine => ("red", &["R2"]),
            R2Y2 => ("red", &["R2", "Y2"]),
            R3 => ("red", &["R3"]),
            R3Y4 => ("red", &["R3", "Y4"]),
            R4 => ("red", &["R4"]),
            Y1 => ("yellow", &["Y1"]),
            Y1Y3 => ("yellow", &["Y1", "Y3"]),
            Y2 | Y2General => ("yellow", &["Y2"]),
            Y3 | Y3Soon => ("yellow", &["Y3"]),
            Y4 | Y4Pending | Y4Soon => ("yellow", &["Y4"]),
            Y5 => ("yellow", &["Y5"]),
            Y4Y5 => ("yellow", &["Y4", "Y5"]),
            Y1Removed | Y5Neg | OldFail | PublicityEnded | OldFine | OldHazard => ("green", &[]),
        };
        Some((grade, rules.to_vec()))
    }
}

/// id, name, registration, township index, street address, categories,
/// contact, scenario. Ids are `XZ-` and the 1-based table position.
type Row = (
    &'static str,
    &'static str,
    Reg,
    usize,
    &'static str,
    &'static [&'static str],
    &'static str,
    Scen,
);

use Reg::{Co, Ind, Vendor, VendorInd};
use Scen::Plain;

#[rustfmt::skip]
const MERCHANTS: &[Row] = &[
    // 柏溪街道
    ("XZ-0001", "叙州区柏溪镇老李家常菜馆", Ind, 0, "建设路88号", &["餐饮"], "李建国", Plain),
    ("XZ-0002", "宜宾市鑫源副食店", Ind, 0, "天池路12号", &["食品", "酒类"], "王秀英", Plain),
    ("XZ-0003", "叙州区柏溪仁和大药房", Co, 0, "金沙路56号", &["药品", "医疗器械"], "张志强", Plain),
    ("XZ-0004", "宜宾市叙州区好又多超市有限公司", Co, 0, "柏溪大道128号", &["食品", "日用品", "酒类"], "刘桂芳", Scen::Y2General),
    ("XZ-0005", "叙州区柏溪王氏农资经营部", Ind, 0, "城北路23号", &["农资"], "王德明", Scen::R4),
    ("XZ-0006", "叙州区柏溪丽人化妆品店", Ind, 0, "叙府路7号", &["化妆品"], "陈丽华", Plain),
    ("XZ-0007", "叙州区柏溪讯达手机通讯店", Ind, 0, "建设路102号", &["电子产品"], "杨海军", Plain),
    ("XZ-0008", "叙州区柏溪张记燃面馆", Ind, 0, "天池路45号", &["餐饮"], "张玉兰", Plain),
    ("XZ-0009", "叙州区柏溪鲜丰水果店", Ind, 0, "城中路19号", &["食品"], "赵成刚", Scen::Y3),
    ("XZ-0010", "宜宾市叙州区金叶烟酒商行", Ind, 0, "金沙路8号", &["酒类", "食品"], "黄小燕", Scen::R1),
    ("XZ-0011", "叙州区柏溪童心母婴用品店", Ind, 0, "柏溪大道66号", &["日用品", "食品"], "周永福", Plain),
    ("XZ-0012", "叙州区柏溪陈记猪肉铺", Ind, 0, "柏溪农贸市场A区12号", &["食品"], "陈国庆", Plain),
    ("XZ-0013", "叙州区柏溪蜀香火锅店", Ind, 0, "叙府路31号", &["餐饮"], "吴春梅", Scen::Y4),
    ("XZ-0014", "叙州区柏溪益民药店", Ind, 0, "城中路77号", &["药品"], "徐淑珍", Plain),
    // 南岸街道
    ("XZ-0015", "宜宾市叙州区喜洋洋超市有限公司", Co, 1, "长江大道东段218号", &["食品", "日用品"], "孙文斌", Plain),
    ("XZ-0016", "叙州区南岸李记宜宾燃面", Ind, 1, "酒都路中段16号", &["餐饮"], "李红梅", Scen::Y5Neg),
    ("XZ-0017", "宜宾市叙州区德仁堂大药房有限公司", Co, 1, "戎州路99号", &["药品", "医疗器械"], "胡建华", Scen::R2Y2),
    ("XZ-0018", "叙州区南岸美颜坊化妆品店", Ind, 1, "航天路5号", &["化妆品"], "朱晓燕", Plain),
    ("XZ-0019", "叙州区南岸数码之家电子产品店", Ind, 1, "长江大道东段56号", &["电子产品"], "高俊杰", Plain),
    ("XZ-0020", "叙州区南岸老字号芽菜店", Ind, 1, "东方红路21号", &["食品"], "林德贵", Plain),
    ("XZ-0021", "叙州区南岸川味小炒", Ind, 1, "酒都路北段8号", &["餐饮"], "何志明", Plain),
    ("XZ-0022", "宜宾市叙州区百汇日用品商行", Ind, 1, "戎州路41号", &["日用品"], "郭秀兰", Scen::Y1Removed),
    ("XZ-0023", "叙州区南岸好日子烘焙坊", Ind, 1, "航天路38号", &["食品"], "马丽娟", Plain),
    ("XZ-0024", "叙州区南岸刘记冷锅鱼", Ind, 1, "东方红路63号", &["餐饮"], "刘长江", Scen::Y2),
    ("XZ-0025", "叙州区南岸惠民五金日杂店", Ind, 1, "长江大道东段301号", &["日用品"], "罗大勇", Plain),
    ("XZ-0026", "宜宾市叙州区酒都名酒行", Co, 1, "酒都路中段88号", &["酒类"], "谢明辉", Scen::OldFine),
    ("XZ-0027", "叙州区南岸清清日化店", Ind, 1, "戎州路12号", &["日用品", "化妆品"], "唐清清", Plain),
    ("XZ-0028", "叙州区南岸小王子奶茶店", Ind, 1, "航天路72号", &["餐饮"], "王子豪", Scen::Y4Y5),
    // 赵场街道
    ("XZ-0029", "叙州区赵场供销农资门市", Co, 2, "赵场大道18号", &["农资"], "邓光荣", Plain),
    ("XZ-0030", "叙州区赵场周记豆花饭", Ind, 2, "港园路9号", &["餐饮"], "周建军", Scen::R2Fine),
    ("XZ-0031", "叙州区赵场便民超市", Ind, 2, "临港大道135号", &["食品", "日用品"], "冯晓梅", Plain),
    ("XZ-0032", "叙州区赵场安康药房", Ind, 2, "赵场大道76号", &["药品"], "曾庆华", Plain),
    ("XZ-0033", "叙州区赵场杨家粮油店", Ind, 2, "赵场农贸市场B区3号", &["食品"], "杨树林", Scen::Y4Pending),
    ("XZ-0034", "叙州区赵场老码头鱼庄", Ind, 2, "临港大道22号", &["餐饮"], "彭友才", Plain),
    ("XZ-0035", "叙州区赵场兴旺家电经营部", Ind, 2, "港园路58号", &["电子产品"], "董兴旺", Scen::Y1),
    ("XZ-0036", "宜宾市叙州区港园食品批发部", Co, 2, "港园路120号", &["食品", "酒类"], "袁海燕", Plain),
    ("XZ-0037", "叙州区赵场蓉蓉美妆店", Ind, 2, "赵场大道41号", &["化妆品"], "蒋蓉", Plain),
    ("XZ-0038", "叙州区赵场何记卤菜", Ind, 2, "赵场农贸市场B区17号", &["食品"], "何国强", Plain),
    ("XZ-0039", "叙州区赵场金穗种子站", Ind, 2, "临港大道201号", &["农资"], "钟金穗", Plain),
    ("XZ-0040", "叙州区赵场学府文具店", Ind, 2, "港园路33号", &["日用品"], "田学文", Plain),
    // 观音镇
    ("XZ-0041", "叙州区观音镇刘记卤菜店", Ind, 3, "观音正街45号", &["食品"], "刘德华", Scen::R3),
    ("XZ-0042", "叙州区观音镇惠民大药房", Ind, 3, "新街18号", &["药品"], "余惠民", Plain),
    ("XZ-0043", "叙州区观音镇丰收农资店", Ind, 3, "滨河路6号", &["农资"], "潘丰收", Plain),
    ("XZ-0044", "叙州区观音镇老街羊肉汤锅", Ind, 3, "观音老街12号", &["餐饮"], "范老三", Scen::Y5),
    ("XZ-0045", "叙州区观音镇兴隆超市", Ind, 3, "观音正街102号", &["食品", "日用品"], "苏兴隆", Plain),
    ("XZ-0046", "叙州区观音镇唐记米粉店", Ind, 3, "新街7号", &["餐饮"], "唐小平", Scen::OldHazard),
    ("XZ-0047", "叙州区观音镇新时代手机店", Ind, 3, "观音正街66号", &["电子产品"], "卢新宇", Plain),
    ("XZ-0048", "叙州区观音镇春芳副食店", Ind, 3, "滨河路29号", &["食品", "酒类"], "蔡春芳", Scen::OldFail),
    ("XZ-0049", "叙州区观音镇绿源农药化肥经营部", Ind, 3, "滨河路51号", &["农资"], "魏绿源", Plain),
    ("XZ-0050", "叙州区观音镇佳佳化妆品店", Ind, 3, "新街25号", &["化妆品"], "吕佳佳", Plain),
    ("XZ-0051", "叙州区观音镇罗记白酒坊", Ind, 3, "观音老街30号", &["酒类"], "罗永贵", Scen::R2Severe),
    ("XZ-0052", "叙州区观音镇好邻居日用百货", Ind, 3, "观音正街8号", &["日用品"], "姚秀琴", Plain),
    // 横江镇
    ("XZ-0053", "叙州区横江镇古镇豆腐坊", Ind, 4, "横江老街15号", &["食品"], "邱大福", Plain),
    ("XZ-0054", "叙州区横江镇江鲜饭店", Ind, 4, "滨江路3号", &["餐饮"], "江海波", Scen::R3Y4),
    ("XZ-0055", "叙州区横江镇济民药店", Ind, 4, "新华街27号", &["药品"], "汪济民", Plain),
    ("XZ-0056", "叙州区横江镇农友农资店", Ind, 4, "新华街88号", &["农资"], "金友农", Plain),
    ("XZ-0057", "叙州区横江镇万家福超市", Ind, 4, "滨江路46号", &["食品", "日用品", "酒类"], "万家福", Scen::Y1Y3),
    ("XZ-0058", "叙州区横江镇黄记腊肉店", Ind, 4, "横江老街39号", &["食品"], "黄世平", Plain),
    ("XZ-0059", "叙州区横江镇老茶馆", Ind, 4, "横江老街2号", &["餐饮"], "贾茂林", Plain),
    ("XZ-0060", "叙州区横江镇华强电器行", Ind, 4, "新华街5号", &["电子产品"], "石华强", Scen::Y4Soon),
    ("XZ-0061", "叙州区横江镇梅梅美容化妆品店", Ind, 4, "滨江路21号", &["化妆品"], "夏梅梅", Scen::PublicityEnded),
    ("XZ-0062", "叙州区横江镇古镇凉糕店", Ind, 4, "横江老街56号", &["食品", "餐饮"], "方桂英", Plain),
    ("XZ-0063", "叙州区横江镇兴农兽药饲料店", Ind, 4, "新华街112号", &["农资"], "严兴农", Plain),
    ("XZ-0064", "叙州区横江镇便民日杂店", Ind, 4, "滨江路77号", &["日用品"], "薛春燕", Plain),
    // 流动摊贩（游商）
    ("XZ-0065", "王记烤红薯（流动摊贩）", Vendor, 0, "天池路夜市（流动经营）", &["食品"], "王大山", Plain),
    ("XZ-0066", "李嬢嬢凉粉（流动摊贩）", Vendor, 1, "酒都路小吃街（流动经营）", &["餐饮"], "李素芬", Scen::Y5),
    ("XZ-0067", "张师傅爆米花（流动摊贩）", VendorInd, 2, "赵场农贸市场周边（流动经营）", &["食品"], "张福贵", Plain),
    ("XZ-0068", "陈记水果摊（流动摊贩）", Vendor, 3, "观音正街集市（流动经营）", &["食品"], "陈桂兰", Scen::Y3Soon),
    ("XZ-0069", "刘大姐手工糍粑（流动摊贩）", VendorInd, 4, "横江古镇游客中心周边（流动经营）", &["食品"], "刘淑华", Plain),
    ("XZ-0070", "老周农具小五金（流动摊贩）", Vendor, 3, "观音镇逢场日集市（流动经营）", &["日用品"], "周老四", Plain),
    ("XZ-0071", "赵记冰粉（流动摊贩）", Vendor, 0, "叙州区体育公园周边（流动经营）", &["餐饮"], "赵小红", Plain),
    ("XZ-0072", "杨老汉土蜂蜜（流动摊贩）", VendorInd, 4, "横江老街集市（流动经营）", &["食品"], "杨正发", Plain),
    ("XZ-0073", "黄姐小饰品日用品（流动摊贩）", Vendor, 1, "长江大道东段步行街（流动经营）", &["日用品", "化妆品"], "黄晓琴", Plain),
    ("XZ-0074", "孙记卤鸭（流动摊贩）", Vendor, 2, "临港大道夜市（流动经营）", &["食品"], "孙建平", Plain),
];

/// The demo's merchants and records as JSONL lines (CONTRACT §3 formats), with
/// record dates relative to `as_of` so every rule fires whatever day the demo
/// is run.
pub fn sample(as_of: Date) -> Sample {
    let merchants = MERCHANTS
        .iter()
        .enumerate()
        .map(|(i, row)| merchant_json(i, row))
        .collect();
    let mut b = Builder {
        as_of,
        records: Vec::new(),
        penalties: 0,
    };
    for (i, row) in MERCHANTS.iter().enumerate() {
        baseline(&mut b, i, row);
        scenario(&mut b, row.0, row.7);
    }
    Sample {
        merchants,
        records: b.records,
    }
}

/// `(merchant id, grade, rule ids)` for every merchant designed to show a rule
/// or a credit-repair case; rule ids in CONTRACT §4 table order. Merchants not
/// listed here are green with no matching rule. Grades do not depend on
/// `as_of` because record dates are relative to it.
pub fn expected_grades(_as_of: Date) -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    MERCHANTS
        .iter()
        .filter_map(|row| row.7.expected().map(|(g, r)| (row.0, g, r)))
        .collect()
}

// ---------------------------------------------------------------- merchants

/// SplitMix64: a fixed, dependency-free hash for deterministic "random" digits.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// An 18-character credit code passing the GB 32100-2015 check: `91` company
/// or `92` 个体工商户, region `511504`, an `MA6…` organisation-code part.
fn credit_code(index: usize, company: bool) -> String {
    let mut s = String::from(if company { "91" } else { "92" });
    s.push_str(REGION);
    s.push_str("MA6");
    let mut h = mix(0x5553_4343 ^ index as u64);
    for _ in 0..6 {
        s.push(USCC_ALPHABET[(h % 31) as usize] as char);
        h /= 31;
    }
    let check = CreditCode::check_char(&s).expect("characters are from the GB 32100 alphabet");
    s.push(check);
    s
}

/// An 11-digit mobile number of the usual shape (fictitious).
fn phone(index: usize) -> String {
    const PREFIXES: [&str; 12] = [
        "138", "139", "135", "136", "158", "159", "187", "188", "150", "151", "177", "180",
    ];
    let h = mix(0x5048_4f4e ^ index as u64);
    format!(
        "{}{:08}",
        PREFIXES[(h % 12) as usize],
        (h >> 8) % 100_000_000
    )
}

/// An 18-character PRC resident ID number (GB 11643-1999 shape and ISO 7064
/// MOD 11-2 check digit) with the 叙州区 region prefix (fictitious).
fn id_number(index: usize) -> String {
    let h = mix(0x4944 ^ index as u64);
    let year = 1958 + h % 40;
    let month = 1 + (h >> 8) % 12;
    let day = 1 + (h >> 16) % 28;
    let seq = 1 + (h >> 24) % 998;
    let first17 = format!("{REGION}{year:04}{month:02}{day:02}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

fn merchant_json(i: usize, row: &Row) -> Value {
    let (id, name, reg, town, street, cats, contact, _) = *row;
    let vendor = matches!(reg, Vendor | VendorInd);
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(name));
    m.insert("kind".into(), json!(if vendor { "vendor" } else { "shop" }));
    match reg {
        Ind | VendorInd => m.insert("uscc".into(), json!(credit_code(i, false))),
        Co => m.insert("uscc".into(), json!(credit_code(i, true))),
        Vendor => None,
    };
    m.insert(
        "address".into(),
        json!(format!("四川省宜宾市叙州区{}{}", TOWNSHIPS[town], street)),
    );
    m.insert("region".into(), json!(REGION));
    m.insert("categories".into(), json!(cats));
    m.insert("contact_name".into(), json!(contact));
    m.insert("contact_phone".into(), json!(phone(i)));
    if vendor {
        m.insert("id_number".into(), json!(id_number(i)));
    }
    Value::Object(m)
}

// ------------------------------------------------------------------ records

struct Builder {
    as_of: Date,
    records: Vec<Value>,
    penalties: u32,
}

impl Builder {
    /// The date `offset` days from `as_of` (negative: in the past).
    fn day(&self, offset: i64) -> String {
        self.as_of
            .checked_add(Span::new().days(offset))
            .expect("demo dates stay within jiff's range")
            .to_string()
    }

    fn push(&mut self, merchant: &str, kind: &str, offset: i64, source: String, fields: Value) {
        let mut r = Map::new();
        r.insert(
            "id".into(),
            json!(format!("R-{:06}", self.records.len() + 1)),
        );
        r.insert("merchant".into(), json!(merchant));
        r.insert("kind".into(), json!(kind));
        r.insert("date".into(), json!(self.day(offset)));
        r.insert("source".into(), json!(source));
        if let Value::Object(f) = fields {
            r.extend(f);
        }
        self.records.push(Value::Object(r));
    }

    /// An on-site inspection; `deadline` and `rectified_on` are day offsets.
    fn inspection(
        &mut self,
        m: &str,
        offset: i64,
        office: &str,
        hazards: u32,
        deadline: Option<i64>,
        rectified_on: Option<i64>,
    ) {
        let mut f =
            json!({"hazards": hazards, "rectified": hazards == 0 || rectified_on.is_some()});
        if let Some(d) = deadline {
            f["deadline"] = json!(self.day(d));
        }
        if let Some(d) = rectified_on {
            f["rectified_on"] = json!(self.day(d));
        }
        let what = if hazards == 0 {
            "日常检查"
        } else {
            "日常检查（发现问题，责令限期整改）"
        };
        self.push(
            m,
            "inspection",
            offset,
            format!("叙州区市场监管局{office}市场监管所 {what}"),
            f,
        );
    }

    fn sampling(&mut self, m: &str, offset: i64, product: &str, standard: &str, failed: &[&str]) {
        let year = &self.day(offset)[..4];
        let source = format!("叙州区市场监管局 {year}年监督抽检");
        let mut f = json!({"product": product, "standard": standard, "passed": failed.is_empty()});
        if !failed.is_empty() {
            f["failed_items"] = json!(failed);
        }
        self.push(m, "sampling", offset, source, f);
    }

    /// A penalty decision; `publicity_until` is a day offset.
    fn penalty(
        &mut self,
        m: &str,
        offset: i64,
        severity: &str,
        fine_cny: u32,
        publicity_until: Option<i64>,
        facts: &str,
    ) {
        self.penalties += 1;
        let year = &self.day(offset)[..4];
        let mut f = json!({
            "decision_no": format!("叙市监处罚〔{year}〕{}号", 10 + self.penalties * 7),
            "severity": severity,
            "fine_cny": fine_cny,
        });
        if let Some(d) = publicity_until {
            f["publicity_until"] = json!(self.day(d));
        }
        self.push(
            m,
            "penalty",
            offset,
            format!("叙州区市场监管局 行政处罚（{facts}）"),
            f,
        );
    }

    fn complaint(&mut self, m: &str, offset: i64, substantiated: bool, summary: &str) {
        let f = json!({"substantiated": substantiated, "summary": summary});
        self.push(m, "complaint", offset, "全国12315平台 投诉举报".into(), f);
    }

    fn list(&mut self, m: &str, offset: i64, list: &str, action: &str, reason: &str) {
        let f = json!({"list": list, "action": action, "reason": reason});
        let source = "国家企业信用信息公示系统（四川）".to_string();
        self.push(m, "list", offset, source, f);
    }

    fn self_report(&mut self, m: &str, offset: i64, report_type: &str, summary: &str) {
        let f = json!({"report_type": report_type, "summary": summary});
        self.push(m, "self_report", offset, "商户自主上传".into(), f);
    }
}

/// A passing product for the merchant's main category, with its standard.
fn sample_product(category: &str, i: usize) -> Option<(&'static str, &'static str)> {
    let list: &[(&str, &str)] = match category {
        "食品" => &[
            ("大米", "GB 2762-2022"),
            ("菜籽油", "GB 2716-2018"),
            ("宜宾芽菜", "GB 2714-2015"),
            ("鲜鸡蛋", "GB 2749-2015"),
            ("挂面", "GB 2762-2022"),
            ("豆腐", "GB 2712-2014"),
            ("鲜猪肉", "GB 2707-2016"),
        ],
        "餐饮" => &[
            ("复用餐饮具", "GB 14934-2016"),
            ("自制凉面", "GB 2762-2022"),
            ("油炸花生米", "GB 2761-2017"),
            ("煎炸用油", "GB 2716-2018"),
        ],
        "药品" => &[
            ("阿莫西林胶囊", "《中华人民共和国药典》2020年版"),
            ("板蓝根颗粒", "《中华人民共和国药典》2020年版"),
            ("维生素C片", "《中华人民共和国药典》2020年版"),
        ],
        "酒类" => &[
            ("散装白酒", "GB 2757-2012"),
            ("浓香型白酒", "GB/T 10781.1-2021"),
        ],
        "农资" => &[
            ("复合肥料", "GB/T 15063-2020"),
            ("水稻种子", "GB 4404.1-2008"),
            ("草甘膦水剂", "GB 20684-2017"),
        ],
        _ => return None,
    };
    Some(list[i % list.len()])
}

/// Records every merchant has: a clean routine inspection, a passed sampling
/// test or a self-report, a commitment for vendors.
fn baseline(b: &mut Builder, i: usize, row: &Row) {
    let (id, _, reg, town, _, cats, _, _) = *row;
    let office = OFFICES[town];
    let spread = (i as i64 * 37) % 120;
    if matches!(reg, Vendor | VendorInd) {
        b.push(
            id,
            "commitment",
            -(200 + spread),
            "叙州区市场监管局 游商一码通登记".into(),
            json!({"summary": "签署《流动摊贩食品安全与商品质量承诺书》：亮码经营，不销售来源不明、过期变质及“三无”商品，接受监督检查"}),
        );
    }
    b.inspection(id, -(15 + spread), office, 0, None, None);
    match sample_product(cats[0], i) {
        Some((product, standard)) => b.sampling(id, -(30 + spread), product, standard, &[]),
        None => {
            let (t, s) = match i % 3 {
                0 => ("invoice", "上传进货发票及供货商营业执照"),
                1 => ("incoming_check", "上传进货查验记录：产品合格证明及3C认证"),
                _ => ("self_check", "上传月度自查记录：未发现过期及“三无”商品"),
            };
            b.self_report(id, -(10 + spread / 2), t, s);
        }
    }
    if i % 4 == 3 {
        b.self_report(
            id,
            -(5 + spread / 3),
            "incoming_check",
            "上传本月进货查验台账",
        );
    }
}

/// The records that make the merchant's scenario fire.
fn scenario(b: &mut Builder, id: &str, s: Scen) {
    use Scen::*;
    match s {
        Plain => {}
        R1 => b.list(
            id,
            -60,
            "serious",
            "add",
            "因销售假冒注册商标的白酒受到较重行政处罚，列入严重违法失信名单",
        ),
        R2Severe => b.penalty(
            id,
            -90,
            "severe",
            8000,
            None,
            "生产销售不符合食品安全标准的散装白酒，责令停产停业",
        ),
        R2Fine => b.penalty(
            id,
            -120,
            "general",
            12000,
            Some(-10),
            "使用超过保质期的食品原料",
        ),
        R2Y2 => b.penalty(id, -30, "severe", 50000, Some(1065), "销售劣药"),
        R3 => {
            b.sampling(
                id,
                -200,
                "卤牛肉",
                "GB 2726-2016",
                &["菌落总数", "大肠菌群"],
            );
            b.sampling(
                id,
                -45,
                "卤猪耳",
                "GB 2760-2024",
                &["苯甲酸及其钠盐(以苯甲酸计)"],
            );
        }
        R3Y4 => {
            b.sampling(id, -100, "复用餐饮具", "GB 14934-2016", &["大肠菌群"]);
            b.sampling(id, -20, "自制泡菜", "GB 2762-2022", &["铅(以Pb计)"]);
            b.inspection(id, -20, "横江", 1, Some(-5), Some(-8));
        }
        R4 => b.inspection(id, -220, "柏溪", 3, Some(-190), None),
        Y1 => b.list(id, -80, "abnormal", "add", "未按规定期限公示年度报告"),
        Y1Y3 => {
            b.list(
                id,
                -150,
                "abnormal",
                "add",
                "通过登记的住所或者经营场所无法联系",
            );
            b.sampling(id, -150, "大米", "GB 2762-2022", &["镉(以Cd计)"]);
        }
        Y2 => b.penalty(
            id,
            -50,
            "minor",
            2000,
            Some(40),
            "未按规定公示从业人员健康证明",
        ),
        Y2General => b.penalty(
            id,
            -70,
            "general",
            6000,
            Some(110),
            "销售标签不符合规定的预包装食品",
        ),
        Y3 => b.sampling(id, -100, "砂糖橘", "GB 2763-2021", &["丙溴磷"]),
        Y3Soon => b.sampling(id, -360, "葡萄", "GB 2763-2021", &["氯吡脲"]),
        Y4 => b.inspection(id, -40, "柏溪", 2, Some(-25), Some(-28)),
        Y4Pending => b.inspection(id, -10, "赵场", 1, Some(10), None),
        Y4Soon => b.inspection(id, -175, "横江", 1, Some(-160), Some(-165)),
        Y5 => {
            b.complaint(id, -150, true, "消费者反映食品中有异物，经查属实");
            b.complaint(id, -90, true, "消费者反映缺斤短两，经查属实");
            b.complaint(id, -20, true, "消费者反映未明码标价，经查属实");
        }
        Y4Y5 => {
            b.inspection(id, -60, "南岸", 1, Some(-45), Some(-50));
            b.complaint(id, -120, true, "消费者反映饮品中有异物，经查属实");
            b.complaint(id, -70, true, "消费者反映使用过期原料，经查属实");
            b.complaint(id, -15, true, "消费者反映收费与标价不符，经查属实");
        }
        Y1Removed => {
            b.list(id, -300, "abnormal", "add", "未按规定期限公示年度报告");
            b.list(
                id,
                -150,
                "abnormal",
                "remove",
                "已补报并公示年度报告，申请移出",
            );
        }
        Y5Neg => {
            b.complaint(id, -100, true, "消费者反映餐具不洁，经查属实");
            b.complaint(id, -60, false, "消费者反映分量不足，经查不属实");
            b.complaint(id, -30, true, "消费者反映未明码标价，经查属实");
        }
        OldFail => b.sampling(id, -400, "酱腌菜", "GB 2762-2022", &["铅(以Pb计)"]),
        PublicityEnded => b.penalty(id, -200, "minor", 3000, Some(-20), "销售未备案的普通化妆品"),
        OldFine => b.penalty(
            id,
            -400,
            "general",
            20000,
            Some(-35),
            "销售侵犯注册商标专用权的白酒",
        ),
        OldHazard => b.inspection(id, -200, "观音", 1, Some(-185), Some(-190)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn as_of() -> Date {
        jiff::civil::date(2026, 3, 15)
    }

    fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
        v.get(k).and_then(Value::as_str)
    }

    fn is_date(v: Option<&Value>) -> bool {
        v.and_then(Value::as_str)
            .is_some_and(|d| d.len() == 10 && d.parse::<Date>().is_ok())
    }

    #[test]
    fn merchants_are_many_varied_and_well_formed() {
        let sample = sample(as_of());
        let ms = &sample.merchants;
        assert!(ms.len() >= 60, "{}", ms.len());
        let vendors: Vec<_> = ms
            .iter()
            .filter(|m| s(m, "kind") == Some("vendor"))
            .collect();
        assert!(vendors.len() >= 8);
        assert!(vendors.iter().any(|v| v.get("uscc").is_none()));
        let mut ids = HashSet::new();
        let mut towns = HashSet::new();
        for (i, m) in ms.iter().enumerate() {
            let id = s(m, "id").unwrap();
            assert_eq!(id, format!("XZ-{:04}", i + 1));
            assert!(crate::model::MerchantId::parse(id).is_ok(), "{id}");
            assert!(ids.insert(id), "duplicate {id}");
            assert!(!s(m, "name").unwrap().is_empty());
            assert!(matches!(s(m, "kind"), Some("shop" | "vendor")));
            let shop = s(m, "kind") == Some("shop");
            match m.get("uscc") {
                Some(u) => {
                    let u = u.as_str().unwrap();
                    assert!(CreditCode::parse(u).is_ok(), "{id}: {u}");
                }
                None => assert!(!shop, "{id}: shops have a credit code"),
            }
            assert_eq!(s(m, "region"), Some(REGION));
            let addr = s(m, "address").unwrap();
            assert!(addr.starts_with("四川省宜宾市叙州区"), "{addr}");
            let town = TOWNSHIPS.iter().find(|t| addr.contains(*t)).unwrap();
            towns.insert(*town);
            let cats = m["categories"].as_array().unwrap();
            assert!(!cats.is_empty() && cats.iter().all(Value::is_string));
            assert!(!s(m, "contact_name").unwrap().is_empty());
            let phone = s(m, "contact_phone").unwrap();
            assert!(phone.len() == 11 && phone.bytes().all(|b| b.is_ascii_digit()));
            assert!(phone.starts_with('1'));
            if !shop {
                let idn = s(m, "id_number").unwrap();
                assert_eq!(idn.len(), 18);
                assert!(idn.starts_with(REGION));
                assert!(idn[..17].bytes().all(|b| b.is_ascii_digit()));
                let birth = format!("{}-{}-{}", &idn[6..10], &idn[10..12], &idn[12..14]);
                assert!(birth.parse::<Date>().is_ok(), "{idn}");
            }
        }
        assert!(towns.len() >= 4, "{towns:?}");
        let cats: HashSet<_> = ms
            .iter()
            .flat_map(|m| m["categories"].as_array().unwrap())
            .collect();
        assert!(cats.len() >= 6);
    }

    #[test]
    fn records_reference_merchants_and_have_the_fields_of_their_kind() {
        let sample = sample(as_of());
        let ids: HashSet<_> = sample
            .merchants
            .iter()
            .map(|m| s(m, "id").unwrap())
            .collect();
        let vendors: HashSet<_> = sample
            .merchants
            .iter()
            .filter(|m| s(m, "kind") == Some("vendor"))
            .map(|m| s(m, "id").unwrap())
            .collect();
        let mut record_ids = HashSet::new();
        let mut routine = HashSet::new();
        let mut evidence = HashSet::new();
        let mut committed = HashSet::new();
        for r in &sample.records {
            let id = s(r, "id").unwrap();
            assert!(id.starts_with("R-") && id.len() == 8, "{id}");
            assert!(record_ids.insert(id), "duplicate {id}");
            let m = s(r, "merchant").unwrap();
            assert!(ids.contains(m), "{id}: unknown merchant {m}");
            assert!(is_date(r.get("date")), "{r}");
            assert!(r.get("source").is_none_or(Value::is_string));
            let opt_date = |k: &str| r.get(k).is_none() || is_date(r.get(k));
            match s(r, "kind").unwrap() {
                "inspection" => {
                    assert!(r["hazards"].is_u64(), "{r}");
                    assert!(r["rectified"].is_boolean(), "{r}");
                    assert!(opt_date("deadline") && opt_date("rectified_on"), "{r}");
                    if r["hazards"] == 0 {
                        routine.insert(m);
                    }
                }
                "sampling" => {
                    assert!(r["product"].is_string() && r["passed"].is_boolean(), "{r}");
                    assert!(r.get("standard").is_none_or(Value::is_string));
                    if let Some(f) = r.get("failed_items") {
                        assert!(f.as_array().unwrap().iter().all(Value::is_string));
                    }
                    assert_eq!(r["passed"] == false, r.get("failed_items").is_some());
                    if r["passed"] == true {
                        evidence.insert(m);
                    }
                }
                "penalty" => {
                    assert!(r["decision_no"].is_string(), "{r}");
                    assert!(matches!(
                        s(r, "severity"),
                        Some("minor" | "general" | "severe")
                    ));
                    assert!(r["fine_cny"].is_number(), "{r}");
                    assert!(opt_date("publicity_until"), "{r}");
                    let year = &s(r, "date").unwrap()[..4];
                    assert!(s(r, "decision_no").unwrap().contains(year));
                }
                "complaint" => assert!(r["substantiated"].is_boolean(), "{r}"),
                "list" => {
                    assert!(matches!(s(r, "list"), Some("abnormal" | "serious")));
                    assert!(matches!(s(r, "action"), Some("add" | "remove")));
                }
                "self_report" => {
                    assert!(matches!(
                        s(r, "report_type"),
                        Some("invoice" | "incoming_check" | "self_check")
                    ));
                    evidence.insert(m);
                }
                "commitment" => {
                    committed.insert(m);
                }
                k => panic!("unknown kind {k}"),
            }
        }
        assert_eq!(
            routine, ids,
            "every merchant has a clean routine inspection"
        );
        assert_eq!(
            evidence, ids,
            "every merchant has a passed sampling or self-report"
        );
        assert_eq!(committed, vendors, "every vendor has a commitment");
    }

    /// CONTRACT §4, written independently of the scenarios, on the JSON lines.
    fn grade(records: &[&Value], as_of: Date) -> (&'static str, Vec<&'static str>) {
        let date = |r: &Value, k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .map(|d| d.parse::<Date>().unwrap())
        };
        let within = |r: &Value, n: i64| {
            let d = date(r, "date").unwrap();
            as_of.checked_sub(Span::new().days(n)).unwrap() < d && d <= as_of
        };
        let of = |k: &'static str| {
            records
                .iter()
                .copied()
                .filter(move |r| s(r, "kind") == Some(k))
        };
        let list_active = |l: &str| {
            let mut entries: Vec<_> = of("list")
                .filter(|r| s(r, "list") == Some(l) && date(r, "date").unwrap() <= as_of)
                .collect();
            entries.sort_by_key(|r| date(r, "date"));
            entries
                .last()
                .is_some_and(|r| s(r, "action") == Some("add"))
        };
        let failed = of("sampling")
            .filter(|r| r["passed"] == false && within(r, 365))
            .count();
        let mut rules = Vec::new();
        if list_active("serious") {
            rules.push("R1");
        }
        if of("penalty").any(|r| {
            within(r, 365)
                && (s(r, "severity") == Some("severe")
                    || r["fine_cny"].as_f64().unwrap() >= 10000.0)
        }) {
            rules.push("R2");
        }
        if failed >= 2 {
            rules.push("R3");
        }
        if of("inspection").any(|r| {
            r["hazards"].as_u64().unwrap() > 0
                && r["rectified"] == false
                && date(r, "deadline").is_some_and(|d| d < as_of)
                && date(r, "date").unwrap() <= as_of
        }) {
            rules.push("R4");
        }
        if list_active("abnormal") {
            rules.push("Y1");
        }
        if of("penalty").any(|r| {
            date(r, "date").unwrap() <= as_of
                && date(r, "publicity_until").is_some_and(|d| d >= as_of)
        }) {
            rules.push("Y2");
        }
        if failed == 1 {
            rules.push("Y3");
        }
        if of("inspection").any(|r| r["hazards"].as_u64().unwrap() > 0 && within(r, 180)) {
            rules.push("Y4");
        }
        if of("complaint")
            .filter(|r| r["substantiated"] == true && within(r, 180))
            .count()
            >= 3
        {
            rules.push("Y5");
        }
        let g = match rules.first() {
            Some(r) if r.starts_with('R') => "red",
            Some(_) => "yellow",
            None => "green",
        };
        (g, rules)
    }

    fn grades_at(
        sample: &Sample,
        as_of: Date,
    ) -> BTreeMap<String, (&'static str, Vec<&'static str>)> {
        sample
            .merchants
            .iter()
            .map(|m| {
                let id = s(m, "id").unwrap();
                let rs: Vec<_> = sample
                    .records
                    .iter()
                    .filter(|r| s(r, "merchant") == Some(id))
                    .collect();
                (id.to_owned(), grade(&rs, as_of))
            })
            .collect()
    }

    #[test]
    fn expected_grades_match_the_rules_on_any_day() {
        for day in [
            as_of(),
            jiff::civil::date(2024, 2, 29),
            jiff::civil::date(2031, 12, 31),
        ] {
            let sample = sample(day);
            let got = grades_at(&sample, day);
            let expected = expected_grades(day);
            let mut listed = HashSet::new();
            for (id, g, rules) in &expected {
                assert!(listed.insert(*id));
                assert_eq!(got[*id], (*g, rules.clone()), "{id} on {day}");
            }
            for (id, g) in &got {
                if !listed.contains(id.as_str()) {
                    assert_eq!(g.0, "green", "{id} is not listed as designed, so green");
                }
            }
            let count = |g: &str| got.values().filter(|v| v.0 == g).count();
            assert!(count("green") >= 40 && count("yellow") >= 10 && count("red") >= 6);
            // Every rule fires somewhere, and alone for each one.
            for rule in ["R1", "R2", "R3", "R4", "Y1", "Y2", "Y3", "Y4", "Y5"] {
                assert!(got.values().any(|(_, r)| r == &vec![rule]), "{rule} alone");
            }
        }
    }

    #[test]
    fn grades_change_by_themselves_when_windows_end() {
        let day = as_of();
        let sample = sample(day);
        let now = grades_at(&sample, day);
        let later = grades_at(&sample, day.checked_add(Span::new().days(11)).unwrap());
        // Y3Soon (failed sampling 360 days ago) and Y4Soon clear in 5 days.
        let cleared = now
            .iter()
            .filter(|(id, g)| g.0 == "yellow" && later[*id].0 == "green")
            .count();
        assert!(cleared >= 2, "{cleared}");
        // Y4Pending escalates to R4 once its deadline has passed.
        assert!(now
            .iter()
            .any(|(id, g)| g.1 == ["Y4"] && later[id].1.contains(&"R4")));
    }

    #[test]
    fn sample_is_deterministic() {
        assert_eq!(sample(as_of()), sample(as_of()));
    }
}
