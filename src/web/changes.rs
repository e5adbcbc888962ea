//! `GET /api/v1/changes`: the public change feed (CONTRACT §8; the paging
//! and cursors are `crate::feed`'s).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::filters::number;
use super::state::AppState;
use crate::feed::{self, Cursor, FeedError, DEFAULT_LIMIT, MAX_LIMIT};

#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    since: Option<String>,
    limit: Option<String>,
}

pub async fn changes(
    state: web::Data<AppState>,
    q: web::Query<ChangesQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = number("limit", q.limit, 1, MAX_LIMIT, DEFAULT_LIMIT)?;
    let since = match q.since.filter(|s| !s.is_empty()) {
        Some(raw) => Some(Cursor::parse(&raw).map_err(refused)?),
        None => None,
    };
    let answer = feed::page(state.store.as_ref(), since, limit as usize)
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(answer))
}

fn refused(e: FeedError) -> ApiError {
    match e {
        FeedError::BadCursor(_) => ApiError::BadRequest("bad_cursor", e.to_string()),
        FeedError::Expired => ApiError::BadRequest("cursor_expired", e.to_string()),
        FeedError::Store(e) => e.into(),
    }
}
