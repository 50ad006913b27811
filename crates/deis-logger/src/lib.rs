//! The logger: receives every app and platform log line (syslog over UDP and TCP in RFC 5424,
//! RFC 3164 or Deis's format, and gRPC batches from shippers), keeps a bounded ring per app, and
//! serves queries and live follows to the controller (gRPC `proto/deis/logger/v1`) and the Deis
//! logger's HTTP API. Every line is counted (received, stored, dropped, evicted) on `/metrics`; a
//! line that cannot be parsed is stored as it came under `deis-unparsed`.
//!
//! Lines are kept in memory (single host) or in Redis (`redis_url`: several replicas, restarts
//! lose nothing). Not (yet): the shipper that follows containers' output.

mod backend;
mod config;
pub mod entry;
pub mod frames;
mod gate;
mod http;
pub mod logs;
mod metrics;
#[cfg(test)]
mod props;
mod redis_store;
mod service;
pub mod shipper;
mod syslog;

use std::sync::Arc;

use deis_proto::logger::v1::log_service_server::LogServiceServer;
use deis_runtime::{BindError, HttpComponent, bind, bind_udp, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use metrics::Metrics;

/// The sockets the logger serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// The HTTP and gRPC API.
    pub http: TcpListener,
    /// Syslog datagrams.
    pub udp: Option<UdpSocket>,
    /// Syslog over TCP.
    pub tcp: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.listen).await?,
            udp: match config.syslog_udp {
                Some(addr) => Some(bind_udp(addr).await?),
                None => None,
            },
            tcp: match config.syslog_tcp {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
        })
    }
}

/// Why the logger stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
    /// The API secret cannot be had from the config store.
    #[error(transparent)]
    Secret(#[from] deis_runtime::SecretError),
    /// Redis cannot be used.
    #[error("Redis cannot be reached ({0}); check --redis-url and that Redis runs")]
    Redis(String),
}

/// Runs the logger until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = Metrics::new();
    let limits = logs::Limits {
        lines: config.max_lines.max(1),
        bytes: config.max_bytes.max(1024),
    };
    let logs = match &config.redis_url {
        None => backend::Backend::Memory(Arc::new(logs::Logs::new(limits, metrics.clone()))),
        Some(url) => backend::Backend::Redis(
            redis_store::RedisStore::connect(url, limits.lines)
                .await
                .map_err(|e| Error::Redis(e.to_string()))?,
            metrics.clone(),
        ),
    };
    let secret =
        deis_runtime::shared_secret(store.as_ref(), &deis_store::keys::Key::logger_secret())
            .await?;
    let gate = Arc::new(gate::Gate {
        apps: gate::KnownApps::new(store.clone()),
        metrics: metrics.clone(),
        syslog_from: config.syslog_from.clone(),
    });
    let tasks = tokio_util::task::TaskTracker::new();
    if let Some(udp) = listeners.udp {
        if let Ok(addr) = udp.local_addr() {
            metrics.watch_udp(addr.port());
        }
        tasks.spawn(syslog::udp(
            udp,
            logs.clone(),
            gate.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(tcp) = listeners.tcp {
        tasks.spawn(syslog::tcp(
            tcp,
            logs.clone(),
            gate.clone(),
            shutdown.clone(),
        ));
    }
    let grpc = tonic::service::Routes::new(LogServiceServer::new(service::Service {
        logs: logs.clone(),
        gate,
    }))
    .into_axum_router();
    // Every API but the metrics needs the platform's secret (`/healthz` is added outside).
    let router = http::router(logs)
        .merge(grpc)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(secret),
            http::require_secret,
        ))
        .merge(http::metrics_router(metrics));
    let spec = HttpComponent {
        component: Component::Logs,
        publish: true,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    let served = serve_component(spec, listeners.http, router, store, shutdown.clone()).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served.map_err(Error::Serve)
}
