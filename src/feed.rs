//! The public change feed (`GET /api/v1/changes`, CONTRACT §8): pages of
//! the store's public changes ([`ScanRead::feed`]) behind opaque cursors.
//!
//! A cursor is the position of the last change a client has seen, in the
//! store's one order (see [`crate::store::changes`]), written as unpadded
//! base64url of its eight bytes: the same on every replica of the service,
//! since the position is the store's. A cursor from before what the store
//! still keeps is refused ([`FeedError::Expired`]), never silently moved
//! forward: a client that reads page after page sees every change once.

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;

use crate::model::{Grade, MerchantId};
use crate::store::{ChangeKind, ScanRead, StoreError};

/// Changes per page when the client names no limit, and the most it may.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// A position in the store's change log, as a client holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u64);

impl Cursor {
    pub fn position(self) -> u64 {
        self.0
    }

    /// Reads a cursor this service handed out.
    pub fn parse(raw: &str) -> Result<Cursor, FeedError> {
        let bad = || FeedError::BadCursor(crate::model::truncate(raw));
        if raw.len() != 11 {
            return Err(bad());
        }
        let bytes = BASE64URL_NOPAD.decode(raw.as_bytes()).map_err(|_| bad())?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| bad())?;
        Ok(Cursor(u64::from_be_bytes(bytes)))
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&BASE64URL_NOPAD.encode(&self.0.to_be_bytes()))
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a page cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("query parameter `since`: `{0}` is not a cursor of this feed; start without `since` or use a `next` it returned")]
    BadCursor(String),
    #[error("query parameter `since`: the changes after this cursor are older than the feed keeps ({days} days); start again without `since`", days = crate::store::changes::FEED_KEPT_DAYS)]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One change as the feed shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedItem {
    pub cursor: Cursor,
    pub at: jiff::Timestamp,
    pub merchant_id: MerchantId,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
}

/// A page: the changes and the cursor to ask for the next one with (the
/// same as `since` when nothing is new).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedAnswer {
    pub changes: Vec<FeedItem>,
    pub next: Cursor,
}

/// Up to `limit` changes after `since` (`None`: from the oldest kept).
pub async fn page(
    store: &dyn ScanRead,
    since: Option<Cursor>,
    limit: usize,
) -> Result<FeedAnswer, FeedError> {
    let page = store.feed(since.map(Cursor::position), limit).await?;
    if let Some(c) = since {
        if c.0 < page.kept_after {
            return Err(FeedError::Expired);
        }
        if c.0 > page.last {
            return Err(FeedError::BadCursor(c.to_string()));
        }
    }
    let start = since.unwrap_or(Cursor(page.kept_after));
    let changes: Vec<FeedItem> = page
        .changes
        .into_iter()
        .map(|c| FeedItem {
            cursor: Cursor(c.position),
            at: c.at,
            merchant_id: c.merchant,
            kind: c.kind,
            grade: c.grade,
            serial: c.serial,
        })
        .collect();
    let next = changes.last().map_or(start, |c| c.cursor);
    Ok(FeedAnswer { changes, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        for p in [0, 1, 255, 1 << 40, u64::MAX] {
            let text = Cursor(p).to_string();
            assert_eq!(text.len(), 11, "{text}");
            assert_eq!(Cursor::parse(&text).unwrap(), Cursor(p));
        }
    }

    #[test]
    fn junk_is_not_a_cursor() {
        for junk in [
            "",
            "0",
            "AAAAAAAAAAA=",
            "AAAAAAAAAA!",
            "AAAAAAAAAAAA",
            "我AAAAAAAA",
        ] {
            assert!(
                matches!(Cursor::parse(junk), Err(FeedError::BadCursor(_))),
                "{junk}"
            );
        }
    }
}
