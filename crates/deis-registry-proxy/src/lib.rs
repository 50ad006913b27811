//! The registry proxy: the platform's front of the Docker registry (CNCF distribution), which
//! will let the builder push and scheduler hosts pull app images, checking who may touch
//! which repository.
//!
//! Today it is the service skeleton: configuration, listener, `/healthz`, its endpoint published
//! at `/deis/registry/{host,port}`, and a drained shutdown. It is not the registry
//! itself: image storage stays with the real registry it fronts.

mod config;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The sockets the registry proxy serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// The HTTP and gRPC API.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.listen).await?,
        })
    }
}

/// Why the registry proxy stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the registry proxy until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let spec = HttpComponent {
        component: Component::Registry,
        publish: true,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    serve_component(spec, listeners.http, axum::Router::new(), store, shutdown)
        .await
        .map_err(Error::Serve)
}
