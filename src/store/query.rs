//! The filters and answers of regulator queries over projections: search,
//! stats, reprint list.
//!
//! Backends answer these with their own indexes (the embedded store's
//! `search_index`, Redis's `search_index`); the defaults of
//! [`RegulatorQueries`](super::RegulatorQueries) read every projection page
//! by page and are the reference the conformance tests hold the indexes to.
//! Results are in merchant-id order on every backend.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::documents::Collection;
use crate::model::{Grade, IssuedCode, MerchantId, MerchantKind, Projection};

/// Filters for `GET /api/v1/admin/merchants`; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct MerchantQuery {
    /// Part of the name, or a whole credit code or merchant id.
    pub q: Option<String>,
    pub grade: Option<Grade>,
    /// Region code prefix (e.g. a county's first 6 digits, or a province's 2).
    pub region: Option<String>,
    pub category: Option<String>,
    pub kind: Option<MerchantKind>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl MerchantQuery {
    pub fn matches(&self, p: &Projection) -> bool {
        let m = &p.merchant;
        self.q.as_deref().is_none_or(|q| {
            m.name.contains(q)
                || m.id.as_str() == q
                || m.uscc.as_ref().is_some_and(|u| u.as_str() == q)
        }) && self.grade.is_none_or(|g| p.grade == g)
            && self
                .region
                .as_deref()
                .is_none_or(|r| m.region.as_str().starts_with(r))
            && self
                .category
                .as_deref()
                .is_none_or(|c| m.categories.iter().any(|x| x == c))
            && self.kind.is_none_or(|k| m.kind == k)
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub total: u64,
    pub page: usize,
    pub per_page: usize,
    pub items: Vec<T>,
}

/// Each category once (a merchant listed under one twice counts once).
pub fn distinct(categories: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = categories.iter().map(String::as_str).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Counts by grade, overall and per region and category.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub total: u64,
    pub by_grade: BTreeMap<Grade, u64>,
    pub by_region: BTreeMap<String, BTreeMap<Grade, u64>>,
    pub by_category: BTreeMap<String, BTreeMap<Grade, u64>>,
}

impl Stats {
    pub fn add(&mut self, p: &Projection) {
        self.add_count(p.merchant.region.as_str(), p.grade, "", 1);
        for c in distinct(&p.merchant.categories) {
            self.add_count(p.merchant.region.as_str(), p.grade, c, 1);
        }
    }

    /// Adds `n` merchants of `region` and `grade`: to the totals when
    /// `category` is empty, else to that category's counts.
    pub fn add_count(&mut self, region: &str, grade: Grade, category: &str, n: u64) {
        if n == 0 {
            return;
        }
        if category.is_empty() {
            self.total += n;
            *self.by_grade.entry(grade).or_default() += n;
            *self
                .by_region
                .entry(region.to_owned())
                .or_default()
                .entry(grade)
                .or_default() += n;
        } else {
            *self
                .by_category
                .entry(category.to_owned())
                .or_default()
                .entry(grade)
                .or_default() += n;
        }
    }
}

/// A merchant whose printed code shows another grade than the live one.
#[derive(Debug, Clone, Serialize)]
pub struct ReprintItem {
    pub merchant_id: MerchantId,
    pub name: String,
    pub address: String,
    pub region: String,
    pub serial: u32,
    pub printed_grade: Grade,
    pub grade: Grade,
}

impl ReprintItem {
    pub fn new(p: &Projection, code: &IssuedCode) -> Self {
        Self {
            merchant_id: p.merchant.id.clone(),
            name: p.merchant.name.clone(),
            address: p.merchant.address.clone(),
            region: p.merchant.region.to_string(),
            serial: code.serial,
            printed_grade: code.printed_grade,
            grade: p.grade,
        }
    }
}

/// The refresh's record of each day: one document per `as_of` (key
/// `YYYY-MM-DD`, so keys sort as days do), written at the end of every
/// refresh; a 12-week trend reads at most 84 of them.
pub const DAILY_COUNTS: Collection = Collection::new("daily_counts");

/// A day's counts, per region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounts {
    pub as_of: Date,
    pub regions: BTreeMap<String, RegionDay>,
}

/// One region on one day: merchants by grade after that day's last
/// refresh, and how many of them changed grade in that day's refreshes
/// (a merchant graded for the first time is not a change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionDay {
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
    pub changed: u64,
}

impl RegionDay {
    pub fn get(&self, grade: Grade) -> u64 {
        match grade {
            Grade::Green => self.green,
            Grade::Yellow => self.yellow,
            Grade::Red => self.red,
        }
    }

    pub fn set(&mut self, grade: Grade, n: u64) {
        match grade {
            Grade::Green => self.green = n,
            Grade::Yellow => self.yellow = n,
            Grade::Red => self.red = n,
        }
    }

    /// The sum of two regions' (or days') counts.
    pub fn plus(self, o: RegionDay) -> RegionDay {
        RegionDay {
            green: self.green + o.green,
            yellow: self.yellow + o.yellow,
            red: self.red + o.red,
            changed: self.changed + o.changed,
        }
    }
}

impl DayCounts {
    /// The document key of a day.
    pub fn key(as_of: Date) -> String {
        as_of.to_string()
    }

    /// The sum over the regions starting with `prefix` (all with `None`).
    pub fn within(&self, prefix: Option<&str>) -> RegionDay {
        self.regions
            .iter()
            .filter(|(r, _)| prefix.is_none_or(|p| r.starts_with(p)))
            .fold(RegionDay::default(), |a, (_, d)| a.plus(*d))
    }
}
