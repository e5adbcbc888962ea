//! `GET /open-data/index.json` and `GET /open-data/{file}`: the open data
//! files of `crate::export`, with `ETag` and `If-None-Match`.
//!
//! The files live in one directory: `YSZ_OPEN_DATA_DIR` if set, else
//! `DIR/open-data` for an `embedded:DIR` store, else `./open-data`, as
//! `yisaozhi export --out` publishes them (`crate::export::published`: one
//! directory per export, the served one named by the symlink `current`).
//! They are published daily, as the UK rating scheme publishes its
//! ratings. No request waits for an export: when the current export was
//! made before today (Asia/Shanghai), requests are answered from it, with
//! its date (`generated_at`, `Last-Modified`), while the next is made in
//! the background (one at a time per directory, across processes); it is
//! served once complete. Before the first export of a directory, a request
//! waits for it up to [`FIRST_EXPORT_WAIT`] (a county's store is exported
//! in about a second), then gets `503` with `Retry-After` while it is made. A deployment that runs
//! `yisaozhi export` after its nightly refresh serves the new data as soon
//! as it is published. The ETag of a data file is its SHA-256 from the
//! index; of the index, the SHA-256 of its bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;
use crate::export::{self, ExportLock, Index, Published, INDEX_JSON};
use crate::store::{SharedStore, StoreSpec};

/// Bytes read from disk per chunk of a file's body.
const CHUNK: usize = 256 * 1024;

/// After a failed background export, the next is not tried for this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// How long a request waits for a directory's first export before `503`.
const FIRST_EXPORT_WAIT: Duration = Duration::from_secs(5);

/// Background exports of this process, by directory: running, or failed
/// at an instant.
static MAKING: LazyLock<Mutex<HashMap<PathBuf, Option<Instant>>>> = LazyLock::new(Default::default);

/// The directory the files are served from (see the module doc).
fn directory(state: &AppState) -> PathBuf {
    if let Some(dir) = std::env::var_os("YSZ_OPEN_DATA_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    match &state.settings.store {
        StoreSpec::Embedded(dir) => dir.join("open-data"),
        StoreSpec::Redis(_) | StoreSpec::RedisCluster(_) => "./open-data".into(),
    }
}

/// Whether an index was made today (Asia/Shanghai).
fn is_current(index: &Index) -> bool {
    index.generated_at.to_zoned(crate::clock::zone()).date() >= crate::clock::today()
}

/// The export to serve: the current one, even if made before today (then
/// the next is started in the background); `None` before the first.
fn served(state: &AppState, dir: &Path) -> Option<Published> {
    match export::current(dir) {
        Ok(Some(published)) => {
            if !is_current(&published.index) {
                make_in_background(state.store.clone(), dir);
            }
            Some(published)
        }
        Ok(None) => {
            make_in_background(state.store.clone(), dir);
            None
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "no readable open data export");
            make_in_background(state.store.clone(), dir);
            None
        }
    }
}

/// [`served`], but before a directory's first export wait for it a while.
async fn served_or_first(state: &AppState, dir: &Path) -> Option<Published> {
    if let Some(published) = served(state, dir) {
        return Some(published);
    }
    let started = Instant::now();
    while started.elapsed() < FIRST_EXPORT_WAIT {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        if let Ok(Some(published)) = export::current(dir) {
            return Some(published);
        }
        let failed = MAKING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dir)
            .is_some_and(|state| state.is_some());
        if failed {
            break;
        }
    }
    None
}

/// Starts today's export of `dir` unless one is running in this process
/// or one failed a moment ago.
fn make_in_background(store: SharedStore, dir: &Path) {
    {
        let mut making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        match making.get(dir) {
            Some(None) => return,
            Some(Some(failed)) if failed.elapsed() < RETRY_AFTER_FAILURE => return,
            _ => {}
        }
        making.insert(dir.to_owned(), None);
    }
    let dir = dir.to_owned();
    actix_web::rt::spawn(async move {
        let made = async {
            let lock = ExportLock::acquire(&dir).await?;
            // Made by another process while this one waited for the lock?
            if let Ok(Some(published)) = export::current(&dir) {
                if is_current(&published.index) {
                    return Ok(published);
                }
            }
            tracing::info!(dir = %dir.display(), "making today's open data files");
            lock.publish(&store, crate::clock::today(), false).await
        }
        .await;
        let mut making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        match made {
            Ok(published) => {
                tracing::info!(dir = %published.dir.display(), "open data files published");
                making.remove(&dir);
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = format!("{e:#}"), "open data export failed");
                making.insert(dir, Some(Instant::now()));
            }
        }
    });
}

/// `503` before a directory's first export.
fn not_yet() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "60"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "unavailable",
            "message": "the open data files are being made for the first time; try again in a minute",
        }))
}

/// `Last-Modified`: when the served export was made.
fn last_modified(index: &Index) -> (header::HeaderName, String) {
    (
        header::LAST_MODIFIED,
        index
            .generated_at
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    )
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

fn not_modified(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .finish()
}

/// `GET /open-data/index.json`.
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let dir = directory(&state);
    let Some(published) = served_or_first(&state, &dir).await else {
        return Ok(not_yet());
    };
    let body = std::fs::read(published.dir.join(INDEX_JSON))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading {INDEX_JSON}: {e}")))?;
    let etag = format!(
        "\"{}\"",
        data_encoding::HEXLOWER.encode(&Sha256::digest(&body))
    );
    if matches(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(last_modified(&published.index))
        .content_type("application/json")
        .body(body))
}

/// `GET /open-data/{file}`: one of the files the index lists.
pub async fn file(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let dir = directory(&state);
    let not_found = || {
        ApiError::NotFound(format!(
            "no open data file `{}`; see /open-data/index.json",
            crate::model::truncate(&name)
        ))
    };
    if export::path_of(&dir, &name).is_none() {
        return Err(not_found());
    }
    let Some(published) = served_or_first(&state, &dir).await else {
        return Ok(not_yet());
    };
    let path = export::path_of(&published.dir, &name).ok_or_else(not_found)?;
    let entry = published.index.file(&name).ok_or_else(not_found)?;
    let etag = format!("\"{}\"", entry.sha256);
    if matches(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening {}: {e}", path.display())))?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(last_modified(&published.index));
    if name.ends_with(".gz") {
        // Already compressed: not again by the compression middleware.
        res.content_type("application/gzip")
            .insert_header((header::CONTENT_ENCODING, "identity"));
    } else {
        res.content_type("text/csv; charset=utf-8");
    }
    let size = file.metadata().map(|m| m.len()).unwrap_or(entry.bytes);
    Ok(res.body(actix_web::body::SizedStream::new(size, chunks(file))))
}

/// The file's bytes, read a [`CHUNK`] at a time off the async threads.
fn chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0; CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((buf, file))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match read {
            Ok((buf, _)) if buf.is_empty() => None,
            Ok((buf, file)) => Some((Ok(bytes::Bytes::from(buf)), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
}
