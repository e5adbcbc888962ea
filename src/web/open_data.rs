//! `GET /open-data/index.json` and `GET /open-data/{file}`: the open data
//! files of `crate::export`, with `ETag` and `If-None-Match`.
//!
//! The files live in one directory: `YSZ_OPEN_DATA_DIR` if set, else
//! `DIR/open-data` for an `embedded:DIR` store, else `./open-data`. They
//! are published daily, as the UK rating scheme publishes its ratings:
//! when the directory has no `index.json`, or one generated before today
//! (Asia/Shanghai), the first request makes them (one export at a time per
//! process; the others wait for it) and later requests serve them from
//! disk. A large deployment runs `yisaozhi export --out DIR` after its
//! nightly refresh instead, so that no request ever waits for an export.
//! The ETag of a data file is its SHA-256 from the index; of the index, the
//! SHA-256 of its bytes.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;
use crate::export::{self, Index, INDEX_JSON};
use crate::store::StoreSpec;

/// Bytes read from disk per chunk of a file's body.
const CHUNK: usize = 256 * 1024;

/// One export at a time in this process.
static EXPORTING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);

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

/// Today's index of `dir`, made now if there is none.
async fn current_index(state: &AppState, dir: &Path) -> Result<Index, ApiError> {
    if let Ok(index) = export::read_index(dir) {
        if is_current(&index) {
            return Ok(index);
        }
    }
    let _one = EXPORTING.lock().await;
    // Made by the export this request waited for?
    if let Ok(index) = export::read_index(dir) {
        if is_current(&index) {
            return Ok(index);
        }
    }
    tracing::info!(dir = %dir.display(), "making today's open data files");
    export::export(&state.store, dir, crate::clock::today(), false)
        .await
        .map_err(ApiError::from)
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
    current_index(&state, &dir).await?;
    let body = std::fs::read(dir.join(INDEX_JSON))
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
    let path = export::path_of(&dir, &name).ok_or_else(not_found)?;
    let index = current_index(&state, &dir).await?;
    let entry = index.file(&name).ok_or_else(not_found)?;
    let etag = format!("\"{}\"", entry.sha256);
    if matches(&req, &etag) {
        return Ok(not_modified(&etag));
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening {}: {e}", path.display())))?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
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
