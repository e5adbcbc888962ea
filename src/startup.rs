//! Wiring: build the shared state once, bind, and run the server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::keys::Keyring;
use crate::scan::Scanner;
use crate::settings::Settings;
use crate::store::SharedStore;
use crate::web::{routes, AppState};

/// How often a service process looks for writes made by other processes
/// (merchants' changes and consumer tips).
const CHANGE_POLL: Duration = Duration::from_millis(500);

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    base_url: String,
    server: Server,
}

impl Application {
    /// Opens the store and keys, binds the listener (port 0 picks a free
    /// port) and prepares the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Any store reply but a scan's read may take the admin budget: a
        // regulator's request to a hung Redis answers 503 after it, not
        // after the batch job's response timeout (see `store::redis`).
        let store = settings
            .store
            .open_with(crate::store::redis::RedisOptions {
                response_timeout: settings.store_admin_budget,
                ..settings.redis_options()
            })
            .await?;
        let keys = Keyring::load(&settings.key_dir)
            .with_context(|| format!("loading keys from {}", settings.key_dir.display()))?;
        if keys.infos.is_empty() {
            tracing::warn!(key_dir = %settings.key_dir.display(), "no signing keys: every scan will be reported as forged; run `yisaozhi keys generate`");
        }
        let rules = settings.load_rules()?;
        let scanner = Scanner::new(store.clone(), Arc::new(keys), settings.cache_capacity);
        // Before the listener is bound: a client that can connect finds
        // the tips loaded.
        if let Err(e) = scanner.tips().reload(&*store).await {
            // The change poll loads them once the store answers.
            tracing::warn!(error = %e, "cannot read consumer tips yet; scans show none until they are read");
        }
        if settings.cache_capacity > 0 {
            // The wording cached views share is learnt now (some tens of
            // milliseconds), not by the first scans while others wait.
            crate::scan::members_shared();
            crate::web::page_wording();
        }
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let base_url = settings
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        spawn_invalidation(store.clone(), scanner.clone());
        let state = AppState {
            store,
            scanner,
            rules: Arc::new(rules),
            settings: Arc::new(settings),
            base_url: base_url.clone().into(),
            auth_failures: crate::web::auth_failure_cache(),
            status_list: Default::default(),
            plans: Default::default(),
        };
        crate::metrics::handle();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(crate::web::MAX_BODY_BYTES))
                .default_service(web::to(crate::web::no_route))
                // Security headers and the JSON envelope for actix's own
                // errors, on every routed answer (scans carry their own).
                .wrap(actix_web::middleware::from_fn(
                    crate::web::envelope_and_headers,
                ))
                .wrap(actix_web::middleware::Compress::default())
                // Scans are answered here, before the router (see there).
                .wrap(actix_web::middleware::from_fn(
                    crate::web::serve_scans_first,
                ))
                // Request id, metrics and the request log line (DEBUG, or
                // INFO/WARN for slow and failed requests).
                .wrap(actix_web::middleware::from_fn(crate::web::track_requests))
                .configure(routes)
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port: addr.port(),
            base_url,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Drops cached views of merchants that any process changed, and reloads
/// the consumer tips when any process changed them, so every replica
/// serves a new grade or tip within about a second.
fn spawn_invalidation(store: SharedStore, scanner: Scanner) {
    tokio::spawn(async move {
        let mut cursor = 0u64;
        let mut tick = tokio::time::interval(CHANGE_POLL);
        // Logged once when reading fails and once when it works again, not
        // at every poll of an outage.
        let mut failing = false;
        loop {
            tick.tick().await;
            let polled = match store.changes_since(cursor).await {
                Ok((changed, next)) => {
                    match changed {
                        Some(ids) => {
                            for id in &ids {
                                scanner.invalidate(id).await;
                            }
                        }
                        None => scanner.invalidate_all(),
                    }
                    cursor = next;
                    // One small read unless the tips changed.
                    scanner.tips().poll(&*store).await
                }
                Err(e) => Err(e),
            };
            match polled {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("store changes and tips readable again");
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read store changes or tips; retrying quietly");
                }
                Err(e) => tracing::debug!(error = %e, "cannot read store changes or tips"),
            }
        }
    });
}
