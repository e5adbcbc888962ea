use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging() {
    let filter = EnvFilter::try_from_env("YSZ_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("YSZ_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// mimalloc instead of glibc's malloc: the refresh and the scan path
/// allocate many small strings from several threads, where it costs
/// measurably less CPU (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = yisaozhi::cli::Cli::parse();
    init_logging();
    if let Err(e) = yisaozhi::cli::run(cli).await {
        eprintln!("yisaozhi: {e:#}");
        std::process::exit(1);
    }
}
