//! The router: the platform's HTTP(S) front door. It will route `{app}.{domain}` and custom
//! domains to the healthy containers listed in the config store, updating its table by watch.
//!
//! Today it is the service skeleton: the proxy listener answers `/health-check` and 404 for
//! every host (no routes yet), the admin listener answers `/healthz`, and shutdown drains both.
//! It is not the controller and keeps no state of its own beyond what the store says.

mod config;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
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

fn proxy_router() -> Router {
    Router::new()
        .route("/health-check", get(|| async { StatusCode::OK }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 Not Found\n") })
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
    let (proxy, admin) = tokio::join!(
        serve_component(
            spec(),
            listeners.http,
            proxy_router(),
            store.clone(),
            shutdown.clone()
        ),
        serve_component(spec(), listeners.admin, Router::new(), store, shutdown),
    );
    proxy.and(admin).map_err(Error::Serve)
}
