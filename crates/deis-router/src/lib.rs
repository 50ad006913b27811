//! The router: the platform's HTTP front door. It routes `{app}.{domain}` (any parent domain,
//! as Deis did), custom domains and the controller's `deis.{domain}` to the backends listed in
//! the config store, whose watch replaces its routing table the moment anything changes: no
//! reload, no restart. Unknown hosts get 404, apps without backends 503; `/health-check` on an
//! unknown host answers 200, and the admin listener answers `/healthz`.
//!
//! Not yet: TLS (SNI, certificates), WebSocket upgrades, router settings (§13.2), metrics.
//! It is not the controller and keeps no state of its own beyond what the store says.

mod config;
mod proxy;
mod table;
mod watcher;

use std::sync::Arc;

use axum::Router;
use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The sockets the router serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// App and controller traffic (port 80).
    pub http: TcpListener,
    /// Health and metrics (port 9090).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.listen).await?,
            admin: bind(config.admin_listen).await?,
        })
    }
}

/// Why the router stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving a listener failed.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the router until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let spec = || HttpComponent {
        component: Component::Router,
        publish: false,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    let (tables, table) = tokio::sync::watch::channel(Arc::new(table::Table::default()));
    let port = listeners.http.local_addr().map_err(Error::Serve)?.port();
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(watcher::follow(
        store.clone(),
        config.platform_domain.clone(),
        tables,
        shutdown.clone(),
    ));
    let proxy_router = Router::new()
        .fallback(proxy::handle)
        .with_state(proxy::Proxy::new(table, port));
    let (proxy, admin) = tokio::join!(
        serve_component(
            spec(),
            listeners.http,
            proxy_router,
            store.clone(),
            shutdown.clone()
        ),
        serve_component(
            spec(),
            listeners.admin,
            Router::new(),
            store,
            shutdown.clone()
        ),
    );
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    proxy.and(admin).map_err(Error::Serve)
}
