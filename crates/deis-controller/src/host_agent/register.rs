//! This host's key, `/deis/hosts/<address>` (its value: the host's name), under a lease kept
//! alive until shutdown, when it is revoked; put again if the lease is lost (the store was
//! unreachable for a whole TTL), with transient failures retried.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use deis_store::keys::Key;
use deis_store::{ConfigStore, StoreError, keep_lease_alive};
use tokio_util::sync::CancellationToken;

/// How long the key outlives its agent.
const TTL: Duration = deis_runtime::ENDPOINT_TTL;

/// Keeps `/deis/hosts/<address>` until `shutdown`.
pub(crate) async fn register(
    store: Arc<dyn ConfigStore>,
    address: Ipv4Addr,
    host_name: String,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match register_once(&store, address, &host_name, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(host = %address, error = %e, "Registering this host failed; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn register_once(
    store: &Arc<dyn ConfigStore>,
    address: Ipv4Addr,
    host_name: &str,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let lease = store.grant_lease(TTL).await?;
    let key = Key::Host(address.into()).path();
    store.put(&key, host_name, Some(lease)).await?;
    tracing::info!(host = %address, host.name = host_name, "This host is registered");
    keep_lease_alive(store.clone(), lease, TTL, shutdown.clone()).await
}
