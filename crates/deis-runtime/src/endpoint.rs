//! Publishing where a component listens, under a lease, so that a dead component's endpoint
//! disappears by itself; and `DEIS_ADVERTISE_HOST=auto`, the address this host uses to reach
//! etcd, so that every task of a Swarm service (all given the same environment) advertises its
//! own host.

use std::net::{IpAddr, SocketAddr};
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
    /// `advertise_host` when given, else as the loopback address. `advertise_host` is taken as
    /// is: resolve `auto` first ([`resolve_advertise_host`]).
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

/// The `DEIS_ADVERTISE_HOST` value that asks for [`resolve_advertise_host`].
pub const ADVERTISE_AUTO: &str = "auto";

/// Why `DEIS_ADVERTISE_HOST=auto` found no address.
#[derive(Debug, thiserror::Error)]
pub enum AdvertiseError {
    /// No etcd endpoint to find the way to.
    #[error(
        "DEIS_ADVERTISE_HOST=auto takes this host's address towards the first etcd endpoint, and DEIS_ETCD_ENDPOINTS is empty"
    )]
    NoEndpoint,
    /// The endpoint has no host and port to find.
    #[error("DEIS_ADVERTISE_HOST=auto: the etcd endpoint {0:?} has no host[:port]")]
    BadEndpoint(String),
    /// The endpoint's host name does not resolve.
    #[error("DEIS_ADVERTISE_HOST=auto: cannot resolve the etcd endpoint {endpoint}: {source}")]
    Resolve {
        /// The endpoint.
        endpoint: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// This host has no route to the endpoint.
    #[error(
        "DEIS_ADVERTISE_HOST=auto: this host has no route to the etcd endpoint {endpoint}: {source}"
    )]
    NoRoute {
        /// The endpoint.
        endpoint: String,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
}

/// `given` with [`ADVERTISE_AUTO`] replaced by [`local_ip_towards`] the first of
/// `etcd_endpoints`; any other value (or none) as is.
pub async fn resolve_advertise_host(
    given: Option<String>,
    etcd_endpoints: &[String],
) -> Result<Option<String>, AdvertiseError> {
    match given {
        Some(host) if host.trim() == ADVERTISE_AUTO => {
            let endpoint = etcd_endpoints.first().ok_or(AdvertiseError::NoEndpoint)?;
            let ip = local_ip_towards(endpoint).await?;
            tracing::info!(etcd.endpoint = %endpoint, advertise.host = %ip, "Advertising this host's address towards etcd");
            Ok(Some(ip.to_string()))
        }
        other => Ok(other),
    }
}

/// The local IP address this host uses to reach `endpoint` (`https://10.0.0.1:2379`,
/// `[fd00::1]:2379`, `etcd:2379`; port 2379 when absent): a UDP socket connected there, whose
/// local address the kernel picks by its routes. No packet is sent.
pub async fn local_ip_towards(endpoint: &str) -> Result<IpAddr, AdvertiseError> {
    let (host, port) =
        host_port(endpoint).ok_or_else(|| AdvertiseError::BadEndpoint(endpoint.to_owned()))?;
    let resolve = |source| AdvertiseError::Resolve {
        endpoint: endpoint.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(resolve)?
        .collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the name resolved to no address",
    );
    if addrs.is_empty() {
        return Err(resolve(last));
    }
    for addr in addrs {
        let local: SocketAddr = if addr.is_ipv4() {
            (IpAddr::from([0, 0, 0, 0]), 0).into()
        } else {
            (IpAddr::from([0u16; 8]), 0).into()
        };
        let attempt = async {
            let socket = tokio::net::UdpSocket::bind(local).await?;
            socket.connect(addr).await?;
            socket.local_addr()
        };
        match attempt.await {
            Ok(found) if !found.ip().is_unspecified() => return Ok(found.ip()),
            Ok(_) => {
                last = std::io::Error::other("the kernel chose no source address");
            }
            Err(e) => last = e,
        }
    }
    Err(AdvertiseError::NoRoute {
        endpoint: endpoint.to_owned(),
        source: last,
    })
}

/// The host and port of an endpoint URL or `host:port` (port 2379 when absent).
fn host_port(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (host, port.parse().ok()?),
            None if after.is_empty() => (host, 2379),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (authority, 2379),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_give_their_host_and_port() {
        assert_eq!(host_port("https://10.0.0.1:2379"), Some(("10.0.0.1", 2379)));
        assert_eq!(host_port("http://etcd.local/"), Some(("etcd.local", 2379)));
        assert_eq!(host_port("[fd00::1]:23"), Some(("fd00::1", 23)));
        assert_eq!(host_port("etcd:2380"), Some(("etcd", 2380)));
        assert_eq!(host_port("http://:2379"), None);
        assert_eq!(host_port("http://etcd:port"), None);
    }

    #[tokio::test]
    async fn auto_is_the_address_towards_a_loopback_endpoint() {
        let endpoints = vec!["https://127.0.0.1:2379".to_owned()];
        let host = resolve_advertise_host(Some("auto".into()), &endpoints)
            .await
            .expect("resolves");
        assert_eq!(host.as_deref(), Some("127.0.0.1"));
        let v6 = local_ip_towards("http://[::1]:2379").await;
        // A host without IPv6 has no route there; one with it answers ::1.
        if let Ok(ip) = v6 {
            assert_eq!(ip, IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]));
        }
    }

    #[tokio::test]
    async fn auto_towards_another_address_is_a_local_one() {
        // No packet is sent, so any routable address does; the answer is one of this host's.
        let Ok(ip) = local_ip_towards("http://192.0.2.1:2379").await else {
            return; // no default route on this host
        };
        assert!(!ip.is_unspecified());
        assert!(
            std::net::UdpSocket::bind((ip, 0)).is_ok(),
            "{ip} is an address of this host"
        );
    }

    #[tokio::test]
    async fn other_values_are_kept() {
        let endpoints = vec!["http://127.0.0.1:2379".to_owned()];
        for given in [None, Some("10.0.0.5".to_owned()), Some("node-1".to_owned())] {
            let host = resolve_advertise_host(given.clone(), &endpoints)
                .await
                .expect("kept");
            assert_eq!(host, given);
        }
    }

    #[tokio::test]
    async fn an_unresolvable_or_missing_endpoint_is_a_clear_error() {
        let err = resolve_advertise_host(
            Some("auto".into()),
            &["https://etcd.nonexistent.invalid:2379".to_owned()],
        )
        .await
        .expect_err("no such host");
        assert!(matches!(err, AdvertiseError::Resolve { .. }), "{err:?}");
        let line = err.to_string();
        assert!(line.contains("DEIS_ADVERTISE_HOST=auto"), "{line}");
        assert!(line.contains("etcd.nonexistent.invalid"), "{line}");

        let err = resolve_advertise_host(Some("auto".into()), &[])
            .await
            .expect_err("no endpoint");
        assert!(err.to_string().contains("DEIS_ETCD_ENDPOINTS"), "{err}");

        let err = resolve_advertise_host(Some("auto".into()), &["http://:2379".to_owned()])
            .await
            .expect_err("no host");
        assert!(matches!(err, AdvertiseError::BadEndpoint(_)), "{err:?}");
    }
}
