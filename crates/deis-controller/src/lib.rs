//! The controller: the platform's brain. It will serve the Deis v1 REST API (1.7) to the `deis`
//! client, the internal gRPC API to the builder, keep apps, releases and desired state in the
//! database, and drive the scheduler.
//!
//! Today it is the service skeleton: configuration, listeners, `/healthz`, its endpoint
//! published at `/deis/controller/{host,port}`, and a drained shutdown. It is not the router
//! (which forwards `deis.{domain}` here) and not the scheduler's backends.

mod config;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The sockets the controller serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// The REST API (and, later, gRPC on the same port).
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

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the controller until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let spec = HttpComponent {
        component: Component::Controller,
        publish: true,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
    };
    serve_component(spec, listeners.http, axum::Router::new(), store, shutdown)
        .await
        .map_err(Error::Serve)
}
