//! The registry proxy: one per host, in front of the platform's real registry (CNCF
//! distribution), and the way that host's Docker engine and the builder reach it.
//!
//! - It serves the OCI distribution API (`/v2/`): manifests, blobs with `Range`, uploads
//!   (monolithic, chunked, cross-repository mounts), tags and the catalog, passed to the
//!   registry with its URLs rewritten to come back here; errors in the spec's JSON shape.
//! - It caches blobs and manifests by digest on local disk (`cache`): bounded, least recently
//!   used first, surviving restarts, every file checked against its digest when served, one
//!   download per uncached blob however many ask. What it cached is served while the registry
//!   is down; tags are asked of the registry on every request while it answers.
//! - It lets in only credentials made by `deis_runtime`'s registry helper: the builder's may
//!   push, delete and pull anything; an app's may pull its own repository (`access`).
//! - `/metrics` counts hits, misses, bytes by source, verification failures, evictions and
//!   fetches.
//!
//! It is not the registry: image storage, garbage collection and the upload protocol's state
//! stay with the registry it fronts, and it speaks plain HTTP to it.

mod access;
mod api;
mod blobs;
mod cache;
mod config;
mod error;
mod manifests;
mod metrics;
mod names;
mod proxy;
mod uploads;
mod upstream;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use upstream::UpstreamUrlError;

/// The sockets the registry proxy serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// The registry API, `/healthz` and `/metrics`.
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
    /// The `upstream` setting is not usable.
    #[error(transparent)]
    Upstream(#[from] UpstreamUrlError),
    /// The cache directory cannot be used.
    #[error("cannot open the cache at {dir}")]
    Cache {
        /// The directory.
        dir: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Runs the registry proxy until `shutdown` is cancelled, then drains requests and downloads
/// and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = metrics::Metrics::new();
    let upstream = Arc::new(upstream::Upstream::new(&config.upstream)?);
    let cache = cache::Cache::open(
        config.cache_dir.clone(),
        config.cache_max_bytes,
        metrics.clone(),
    )
    .await
    .map_err(|source| Error::Cache {
        dir: config.cache_dir.clone(),
        source,
    })?;
    let downloads = cache::Downloads {
        upstream: upstream.clone(),
        tasks: TaskTracker::new(),
        stop: CancellationToken::new(),
    };
    let proxy = Arc::new(proxy::Proxy {
        upstream,
        cache,
        metrics,
        access: access::Access::new(store.clone()),
        downloads,
        max_upload_bytes: config.max_upload_bytes,
    });
    let spec = HttpComponent {
        component: Component::Registry,
        publish: config.publish,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    let served = serve_component(
        spec,
        listeners.http,
        api::router(proxy.clone()),
        store,
        shutdown,
    )
    .await;
    // Downloads outlive the requests that started them only until the drain is over.
    proxy.downloads.stop.cancel();
    proxy.downloads.tasks.close();
    proxy.downloads.tasks.wait().await;
    served.map_err(Error::Serve)
}
