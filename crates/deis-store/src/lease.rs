//! Keeping a lease alive for as long as a component runs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{ConfigStore, LeaseId, StoreError};

/// Renews `lease` three times per `ttl` until `shutdown`, then revokes it so its keys vanish at
/// once instead of at expiry. Returns [`StoreError::LeaseNotFound`] if the lease expired anyway
/// (the store was unreachable for a whole TTL): the caller grants a new one and publishes again.
/// Transient failures are retried at the next tick.
pub async fn keep_lease_alive(
    store: Arc<dyn ConfigStore>,
    lease: LeaseId,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    let period = (ttl / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                return match store.revoke_lease(lease).await {
                    Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            _ = ticker.tick() => {}
        }
        match store.keep_alive(lease).await {
            Ok(()) => {}
            Err(e @ StoreError::LeaseNotFound(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(lease.id = %lease, error = %e, "Lease renewal failed; retrying")
            }
        }
    }
}
