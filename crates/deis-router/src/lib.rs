//! The router: the platform's HTTP(S) front door. It routes `{app}.{domain}` (any parent domain,
//! as Deis did), custom domains and the controller's `deis.{domain}` to the backends listed in
//! the config store, whose watch replaces its routing table the moment anything changes: no
//! reload, no restart, no dropped request. HTTP/1.1 with keep-alive and WebSocket upgrades,
//! HTTP/2 (ALPN and h2c), TLS with SNI from the store's certificates, the router settings of
//! Deis (§13.2: body size, timeouts, HTTPS enforcement, HSTS, allow-lists, affinity), passive
//! health for refusing backends, an access log line per request (each request's lines in a
//! span with its `X-Request-Id`, host and app) and Prometheus metrics on the admin listener
//! (`/metrics`, `/healthz`, `/health-check`).
//!
//! In a cluster it also relays `git push`: with `builder_listen` set (2222 there, where the
//! builder listens on 2223 as in Deis v1) each TCP connection is passed byte for byte to the
//! builder that `/deis/builder/{host,port}` names at that moment (`passthrough.rs`: bounded in
//! number, connect and idle time, half-closes passed on, drained on shutdown).
//!
//! It is not the controller and keeps no state of its own beyond what the store says. Not
//! (yet): gzip, PROXY protocol.

mod config;
mod fast;
mod health;
mod metrics;
mod passthrough;
#[cfg(test)]
mod props;
mod proxy;
mod serve;
mod settings;
mod table;
mod tls;
mod upgrade;
mod watcher;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, DEFAULT_BUILDER_MAX_CONNECTIONS};

/// The sockets the router serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// App and controller traffic (port 80).
    pub http: TcpListener,
    /// HTTPS traffic (port 443), if configured.
    pub https: Option<TcpListener>,
    /// Health and metrics (port 9090).
    pub admin: TcpListener,
    /// `git push` traffic relayed to the builder (port 2222 in a cluster), if configured.
    pub builder: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.listen).await?,
            https: match config.https_listen {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
            admin: bind(config.admin_listen).await?,
            builder: match config.builder_listen {
                Some(addr) => Some(bind(addr).await?),
                None => None,
            },
        })
    }

    /// Binds the addresses of `config` so that other routers on this host may bind them too
    /// (`SO_REUSEPORT`; `deisctl scale router=N` on one host).
    pub fn bind_shared(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: deis_runtime::bind_shared(config.listen)?,
            https: config
                .https_listen
                .map(deis_runtime::bind_shared)
                .transpose()?,
            admin: deis_runtime::bind_shared(config.admin_listen)?,
            builder: config
                .builder_listen
                .map(deis_runtime::bind_shared)
                .transpose()?,
        })
    }
}

/// Why the router stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving a listener failed.
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
    /// The HTTPS listener's TLS configuration could not be made.
    #[error("configuring TLS for the HTTPS listener failed")]
    Tls(#[source] rustls::Error),
}

/// Runs the router until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (tables, table) = tokio::sync::watch::channel(Arc::new(table::Table::default()));
    let metrics = metrics::Metrics::new();
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(watcher::follow(
        store.clone(),
        config.platform_domain.clone(),
        tables,
        metrics.clone(),
        shutdown.clone(),
    ));
    // Nothing is served before the first routing table is in: a router restarted next to
    // others on shared ports would otherwise answer 404 for every app until then. Connections
    // arriving meanwhile wait in the listen queue.
    let mut first = table.clone();
    tokio::select! {
        _ = first.changed() => {}
        () = shutdown.cancelled() => {}
    }
    let health = health::Health::new(table.clone(), metrics.clone(), shutdown.clone());
    let proxy = || {
        proxy::Proxy::new(
            table.clone(),
            health.clone(),
            metrics.clone(),
            shutdown.child_token(),
        )
    };
    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let timing = serve::Timing {
        drain: config.drain,
        idle: config.idle_timeout,
    };
    let https = async {
        let Some(listener) = listeners.https else {
            return Ok(());
        };
        let tls = tls::server_config(table.clone()).map_err(Error::Tls)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        serve::serve(
            listener,
            Some(acceptor),
            proxy,
            workers,
            shutdown.clone(),
            timing,
        )
        .await
        .map_err(Error::Serve)
    };
    let builder = async {
        let Some(listener) = listeners.builder else {
            return Ok(());
        };
        passthrough::serve(
            listener,
            table.clone(),
            metrics.clone(),
            config.builder_max_connections,
            shutdown.clone(),
            config.drain,
        )
        .await
        .map_err(Error::Serve)
    };
    let admin = Router::new()
        .route("/health-check", get(|| async { "" }))
        .merge(metrics::router(metrics.clone()));
    let spec = HttpComponent {
        component: Component::Router,
        publish: false,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    let (http, https, builder, admin) = tokio::join!(
        async {
            serve::serve(
                listeners.http,
                None,
                proxy,
                workers,
                shutdown.clone(),
                timing,
            )
            .await
            .map_err(Error::Serve)
        },
        https,
        builder,
        async {
            serve_component(spec, listeners.admin, admin, store, shutdown.clone())
                .await
                .map_err(Error::Serve)
        },
    );
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    http.and(https).and(builder).and(admin)
}
