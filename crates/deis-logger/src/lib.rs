//! The logger: receives every app and platform log line over gRPC (`proto/deis/logger/v1`),
//! stores them (in memory on one host, Redis in the cluster), and serves queries and live
//! follows to the controller.
//!
//! Today it is the service skeleton: configuration, listener, `/healthz`, its endpoint published
//! at `/deis/logs/{host,port}`, and a drained shutdown. It is not the shipper that reads
//! container output (that runs beside the scheduler).

mod config;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The sockets the logger serves on, bound before [`run`] so tests can use port 0.
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

/// Why the logger stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the logger until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let spec = HttpComponent {
        component: Component::Logs,
        publish: true,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    serve_component(spec, listeners.http, axum::Router::new(), store, shutdown)
        .await
        .map_err(Error::Serve)
}
