//! Generated merchants: shops with a valid credit code and itinerant
//! vendors (about 10 %), as JSONL or CSV.

use std::io::Write;

use anyhow::Context;
use rayon::prelude::*;

use crate::model::CreditCode;
use crate::progress::{Progress, Unit};

use super::common::{create, csv_row, json_str, Ctx, Rng};
use super::options::{GenFormat, GenOptions, GenSummary};
use super::vocabulary::{
    CATEGORIES, GIVEN, REGIONS, ROADS, SHOP_KINDS, SHOP_WORDS, SURNAMES, TOWNS, USCC_CHARS,
    VENDOR_GOODS,
};

/// Merchants per generator chunk.
const MERCHANT_CHUNK: u64 = 1 << 14;

/// One generated merchant, as field values.
pub(super) struct GenMerchant {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) vendor: bool,
    pub(super) uscc: Option<String>,
    pub(super) address: String,
    pub(super) region: &'static str,
    pub(super) categories: Vec<&'static str>,
    pub(super) contact_name: Option<String>,
    pub(super) contact_phone: Option<String>,
    pub(super) id_number: Option<String>,
}

pub(super) fn merchant(ctx: &Ctx, n: u64) -> GenMerchant {
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
pub(super) fn id_number(r: &mut Rng, region: &str) -> String {
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

/// Writes the merchants file.
pub(super) fn write_merchants(
    ctx: &Ctx,
    opts: &GenOptions,
    summary: &mut GenSummary,
) -> anyhow::Result<()> {
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
