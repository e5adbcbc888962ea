//! The regulator's query parameters (search and audit filters), read and
//! checked once for the JSON API, the workbench's pages and the ledger:
//! every parameter is an optional string checked here into the store's
//! query types, or 400 naming the parameter.

use actix_web::{web, HttpRequest};
use serde::Deserialize;

use super::actions::bad;
use super::error::ApiError;
use crate::clock;
use crate::model::{parse_grade, MerchantKind};
use crate::store::query::MerchantQuery;
use crate::store::AuditFilter;

/// Most audit entries in one answer.
pub const MAX_AUDIT_LIMIT: u64 = 1000;
/// Most merchants on one page of a search.
pub const MAX_PER_PAGE: u64 = 500;
/// Highest page number of a search (far past any real result set; it keeps
/// the offset computed from it small).
pub const MAX_PAGE: u64 = 1_000_000;
/// Longest text filter (`q`, `category`, `target`, `actor`), in characters.
const MAX_FILTER_CHARS: usize = 200;

/// Reads the query string into `T` (whose fields are all optional strings,
/// checked by the caller), answering 400 in the envelope if it does not
/// parse (e.g. a repeated parameter).
pub fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad(format!("query string: {e}")))
}

/// A parameter's value, trimmed; `None` when absent or blank.
pub fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A whole number parameter in `min..=max`, or 400 naming the bounds.
pub fn number(
    name: &str,
    raw: Option<String>,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, ApiError> {
    let Some(raw) = non_empty(raw) else {
        return Ok(default);
    };
    raw.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            bad(format!(
                "query parameter `{name}`: expected a whole number from {min} to {max}, got `{}`",
                crate::model::truncate(&raw)
            ))
        })
}

/// A text filter of at most [`MAX_FILTER_CHARS`] characters.
pub fn text_filter(name: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    let v = non_empty(raw);
    if v.as_ref()
        .is_some_and(|s| s.chars().count() > MAX_FILTER_CHARS)
    {
        return Err(bad(format!(
            "query parameter `{name}`: expected at most {MAX_FILTER_CHARS} characters"
        )));
    }
    Ok(v)
}

/// A region code prefix: 1-6 digits.
pub fn region_filter(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let region = non_empty(raw);
    if let Some(r) = &region {
        if r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                "query parameter `region`: expected a region code or its prefix (1-6 digits), got `{}`",
                crate::model::truncate(r)
            )));
        }
    }
    Ok(region)
}

/// The region prefix a search looks in, given the one asked for and the
/// one the caller sees (`""`: every region): the narrower of the two, or
/// `None` when they do not overlap (the search finds nothing).
pub fn region_within(asked: Option<&str>, visible: &str) -> Option<String> {
    match asked {
        None => Some(visible.to_owned()),
        Some(a) if a.starts_with(visible) => Some(a.to_owned()),
        Some(a) if visible.starts_with(a) => Some(visible.to_owned()),
        Some(_) => None,
    }
}

/// The search parameters of `GET /api/v1/admin/merchants` and the
/// workbench's `/admin/merchants` (and the ledger's).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub grade: Option<String>,
    pub region: Option<String>,
    pub category: Option<String>,
    pub kind: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

impl SearchQuery {
    /// The store's query, checked; `per_page` defaults to `default_per_page`.
    pub fn parse(self, default_per_page: u64) -> Result<MerchantQuery, ApiError> {
        let grade = non_empty(self.grade)
            .map(|g| parse_grade(&g).map_err(|e| bad(e.to_string())))
            .transpose()?;
        let kind = non_empty(self.kind)
            .map(|k| {
                MerchantKind::from_name(&k).ok_or_else(|| {
                    bad(format!(
                        "query parameter `kind`: expected shop or vendor, got `{}`",
                        crate::model::truncate(&k)
                    ))
                })
            })
            .transpose()?;
        Ok(MerchantQuery {
            q: non_empty(self.q).map(|s| s.chars().take(100).collect()),
            grade,
            region: region_filter(self.region)?,
            category: text_filter("category", self.category)?,
            kind,
            page: number("page", self.page, 1, MAX_PAGE, 1)? as usize,
            per_page: number("per_page", self.per_page, 1, MAX_PER_PAGE, default_per_page)?
                as usize,
        })
    }
}

/// The parameters of `GET /api/v1/admin/audit` and the workbench's
/// `/admin/audit`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct AuditQuery {
    pub target: Option<String>,
    pub actor: Option<String>,
    pub since: Option<String>,
    pub limit: Option<String>,
}

impl AuditQuery {
    /// The store's filter, checked; `since` is a date (Asia/Shanghai
    /// midnight) or an RFC 3339 time.
    pub fn parse(self, default_limit: u64) -> Result<AuditFilter, ApiError> {
        let since = non_empty(self.since)
            .map(|s| {
                s.parse::<jiff::Timestamp>()
                    .or_else(|_| {
                        s.parse::<jiff::civil::Date>()
                            .and_then(|d| d.to_zoned(clock::zone()).map(|z| z.timestamp()))
                    })
                    .map_err(|_| {
                        bad(format!(
                            "query parameter `since`: expected YYYY-MM-DD or an RFC 3339 time, got `{}`",
                            crate::model::truncate(&s)
                        ))
                    })
            })
            .transpose()?;
        let limit = number("limit", self.limit, 1, MAX_AUDIT_LIMIT, default_limit)?;
        Ok(AuditFilter {
            target: text_filter("target", self.target)?,
            actor: text_filter("actor", self.actor)?,
            since,
            limit: limit as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_looks_only_where_the_caller_sees() {
        let cases = [
            (None, "", Some("")),
            (None, "5115", Some("5115")),
            (Some("51"), "", Some("51")),
            (Some("51"), "5115", Some("5115")),
            (Some("511504"), "5115", Some("511504")),
            (Some("5116"), "5115", None),
        ];
        for (asked, visible, want) in cases {
            assert_eq!(
                region_within(asked, visible).as_deref(),
                want,
                "{asked:?} {visible}"
            );
        }
    }
}
