//! The builder: an SSH server that accepts `git push`, builds the pushed commit into an image
//! (Dockerfile or buildpack) and asks the controller to release it.
//!
//! Today it is the service skeleton: configuration, its HTTP health listener, and a drained
//! shutdown. The SSH server, builds and the controller client come with the builder issue; it
//! does not publish `/deis/builder/{host,port}` until it has an SSH port to publish. It is not a
//! registry and does not run app containers.

mod config;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The sockets the builder serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// Health (and, later, metrics).
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.http_listen).await?,
        })
    }
}

/// Why the builder stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving the health endpoint failed.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the builder until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let spec = HttpComponent {
        component: Component::Builder,
        publish: false,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    serve_component(spec, listeners.http, axum::Router::new(), store, shutdown)
        .await
        .map_err(Error::Serve)
}
