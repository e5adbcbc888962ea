//! The baselines for the HTTP load benchmark (`benches/load.sh`), built with
//! the same crates and settings as the service, measured in the same run:
//!
//! - `bare_server ADDR`: a bare actix-web handler returning a constant;
//! - `bare_server ADDR PATHS BYTES`: the reference design of the scan path
//!   (issue text: "returning a pre-serialized body from moka"): one bounded
//!   moka cache, keyed by the last segment of each path in the file
//!   `PATHS`, of pre-serialized bodies of `BYTES` bytes; a request is one
//!   cache read and the body, or 404;
//! - `bare_server ADDR PATHS BYTES REDIS_URL`: the reference of the cold
//!   scan (issue text: "a Redis GET through one shared connection
//!   manager"): the same bodies stored in Redis under `bare:<key>`, a
//!   request is one `GET` through one shared `ConnectionManager`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use moka::future::Cache;

/// The service's allocator, so the baseline differs from it only by the handler.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn constant() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

type Bodies = Cache<String, bytes::Bytes>;

/// The last segment of a path.
fn key(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

async fn cached(req: HttpRequest, bodies: web::Data<Bodies>) -> HttpResponse {
    match bodies.get(key(req.path())).await {
        Some(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn from_redis(
    req: HttpRequest,
    redis: web::Data<redis::aio::ConnectionManager>,
) -> HttpResponse {
    let mut conn = redis.get_ref().clone();
    let got: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
        .arg(format!("bare:{}", key(req.path())))
        .query_async(&mut conn)
        .await;
    match got {
        Ok(Some(body)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// One body per path of `paths`, each of `size` bytes (a JSON string
/// naming the key, padded).
fn bodies(paths: &str, size: usize) -> std::io::Result<Vec<(String, bytes::Bytes)>> {
    let text = std::fs::read_to_string(paths)?;
    Ok(text
        .lines()
        .map(key)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let mut body = format!("{{\"key\":\"{k}\",\"pad\":\"");
            let pad = size.saturating_sub(body.len() + 2);
            body.extend(std::iter::repeat_n('x', pad));
            body.push_str("\"}");
            (k.to_owned(), bytes::Bytes::from(body))
        })
        .collect())
}

/// The bodies in a cache that holds them all.
async fn cached_bodies(bodies: Vec<(String, bytes::Bytes)>) -> Bodies {
    let cache = Cache::builder()
        .name("bodies")
        .max_capacity(bodies.len() as u64 * 2)
        .build();
    for (k, body) in bodies {
        cache.insert(k, body).await;
    }
    cache.run_pending_tasks().await;
    cache
}

/// The bodies stored in Redis at `url` (pipelined), and one shared
/// connection manager for the requests.
async fn redis_bodies(
    url: &str,
    bodies: Vec<(String, bytes::Bytes)>,
) -> redis::RedisResult<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)?;
    let mut conn = redis::aio::ConnectionManager::new(client).await?;
    for chunk in bodies.chunks(1000) {
        let mut pipe = redis::pipe();
        for (k, body) in chunk {
            pipe.set(format!("bare:{k}"), body.as_ref()).ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    Ok(conn)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let Some(paths) = args.get(1) else {
        return HttpServer::new(|| App::new().default_service(web::to(constant)))
            .bind(listen)?
            .run()
            .await;
    };
    let size = match args.get(2).map(|s| s.parse::<usize>()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: bare_server ADDR [PATHS BYTES [REDIS_URL]]");
            std::process::exit(2);
        }
    };
    let bodies = bodies(paths, size)?;
    if let Some(url) = args.get(3) {
        let redis = redis_bodies(url, bodies).await.map_err(|e| {
            std::io::Error::other(format!("cannot store the bodies in Redis at {url}: {e}"))
        })?;
        let redis = web::Data::new(redis);
        return HttpServer::new(move || {
            App::new()
                .app_data(redis.clone())
                .default_service(web::to(from_redis))
        })
        .bind(listen)?
        .run()
        .await;
    }
    let bodies = web::Data::new(cached_bodies(bodies).await);
    HttpServer::new(move || {
        App::new()
            .app_data(bodies.clone())
            .default_service(web::to(cached))
    })
    .bind(listen)?
    .run()
    .await
}
