//! The filters and answers of regulator queries over projections: search,
//! stats, reprint list.
//!
//! Backends may answer these with their own indexes; the defaults of
//! [`RegulatorQueries`](super::RegulatorQueries) read every projection page
//! by page, which is fine for a county and a province's
//! admin traffic (a few queries a minute), not for a hot path.

use std::collections::BTreeMap;

use serde::Serialize;

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
        self.total += 1;
        *self.by_grade.entry(p.grade).or_default() += 1;
        *self
            .by_region
            .entry(p.merchant.region.to_string())
            .or_default()
            .entry(p.grade)
            .or_default() += 1;
        for c in &p.merchant.categories {
            *self
                .by_category
                .entry(c.clone())
                .or_default()
                .entry(p.grade)
                .or_default() += 1;
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
