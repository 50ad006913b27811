//! Publishing where a component listens, under a lease, so that a dead component's endpoint
//! disappears by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, Op, StoreError, Txn, keep_lease_alive};
use tokio_util::sync::CancellationToken;

/// The address other components should use to reach this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The endpoint for a bound address: an unspecified IP (`0.0.0.0`) is advertised as
    /// `advertise_host` when given, else as the loopback address.
    pub fn for_listener(addr: SocketAddr, advertise_host: Option<&str>) -> Endpoint {
        let host = match advertise_host {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ if addr.ip().is_unspecified() => "127.0.0.1".to_owned(),
            _ => addr.ip().to_string(),
        };
        Endpoint {
            host,
            port: addr.port(),
        }
    }
}

impl Endpoint {
    /// Where `component` said it listens (`/deis/<component>/{host,port}`), if it did; a
    /// store that cannot be read counts as "not said" (for callers that try again).
    pub async fn lookup(store: &dyn ConfigStore, component: Component) -> Option<Endpoint> {
        Endpoint::find(store, component).await.ok().flatten()
    }

    /// Where `component` said it listens, if it did (a port that is not one counts as not
    /// said); the store's error when it cannot be read (for callers that must not guess).
    pub async fn find(
        store: &dyn ConfigStore,
        component: Component,
    ) -> Result<Option<Endpoint>, deis_store::StoreError> {
        let Some(host) = store.get(&Key::host(component).path()).await? else {
            return Ok(None);
        };
        let Some(port) = store.get(&Key::port(component).path()).await? else {
            return Ok(None);
        };
        Ok(port.value.parse().ok().map(|port| Endpoint {
            host: host.value,
            port,
        }))
    }

    /// `http://host:port`, as gRPC and HTTP clients want it.
    pub fn http_url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

/// How long a published endpoint outlives its component.
pub const ENDPOINT_TTL: Duration = Duration::from_secs(20);

/// Writes `/deis/<component>/host` and `/port` under a lease and keeps the lease alive until
/// `shutdown`, when the keys are removed. If the lease is lost (the store was unreachable for a
/// whole TTL) the keys are published again; transient store failures are retried.
pub async fn publish_endpoint(
    store: Arc<dyn ConfigStore>,
    component: Component,
    endpoint: Endpoint,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match publish_once(&store, component, &endpoint, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(component = component.as_str(), error = %e, "Publishing the endpoint failed; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn publish_once(
    store: &Arc<dyn ConfigStore>,
    component: Component,
    endpoint: &Endpoint,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let lease = store.grant_lease(ENDPOINT_TTL).await?;
    let put = |key: Key, value: String| Op::Put {
        key: key.path(),
        value,
        lease: Some(lease),
    };
    store
        .txn(Txn {
            compares: vec![],
            success: vec![
                put(Key::host(component), endpoint.host.clone()),
                put(Key::port(component), endpoint.port.to_string()),
            ],
            failure: vec![],
        })
        .await?;
    tracing::info!(component = component.as_str(), endpoint.host = %endpoint.host, endpoint.port = endpoint.port, "Endpoint published");
    keep_lease_alive(store.clone(), lease, ENDPOINT_TTL, shutdown.clone()).await
}
