//! The baseline for the HTTP load benchmark (`benches/load.sh`): a bare
//! actix-web handler returning a constant, built with the same crates and
//! settings as the service, measured in the same run.

use actix_web::{web, App, HttpResponse, HttpServer};

/// The service's allocator, so the baseline differs from it only by the handler.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn constant() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    HttpServer::new(|| App::new().default_service(web::to(constant)))
        .bind(listen)?
        .run()
        .await
}
