//! The baselines for the HTTP load benchmark (`benches/load.sh`), built with
//! the same crates and settings as the service, measured in the same run:
//!
//! - `bare_server ADDR`: a bare actix-web handler returning a constant;
//! - `bare_server ADDR PATHS BYTES`: the reference design of the scan path
//!   (issue text: "returning a pre-serialized body from moka"): one bounded
//!   moka cache, keyed by the last segment of each path in the file
//!   `PATHS`, of pre-serialized bodies of `BYTES` bytes; a request is one
//!   cache read and the body, or 404.

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

/// One body per path of `paths`, each of `size` bytes (a JSON string
/// naming the key, padded), in a cache that holds them all.
async fn bodies(paths: &str, size: usize) -> std::io::Result<Bodies> {
    let text = std::fs::read_to_string(paths)?;
    let keys: Vec<&str> = text.lines().map(key).filter(|k| !k.is_empty()).collect();
    let cache = Cache::builder()
        .name("bodies")
        .max_capacity(keys.len() as u64 * 2)
        .build();
    for k in keys {
        let mut body = format!("{{\"key\":\"{k}\",\"pad\":\"");
        let pad = size.saturating_sub(body.len() + 2);
        body.extend(std::iter::repeat_n('x', pad));
        body.push_str("\"}");
        cache.insert(k.to_owned(), bytes::Bytes::from(body)).await;
    }
    cache.run_pending_tasks().await;
    Ok(cache)
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
            eprintln!("usage: bare_server ADDR [PATHS BYTES]");
            std::process::exit(2);
        }
    };
    let bodies = web::Data::new(bodies(paths, size).await?);
    HttpServer::new(move || {
        App::new()
            .app_data(bodies.clone())
            .default_service(web::to(cached))
    })
    .bind(listen)?
    .run()
    .await
}
