//! Keeping a lease alive for as long as a component runs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{ConfigStore, LeaseId, StoreError};

/// Renews `lease` three times per `ttl` until `shutdown`, then revokes it so its keys vanish at
/// once instead of at expiry. Returns [`StoreError::LeaseNotFound`] if the lease expired anyway
/// (the store was unreachable for a whole TTL): the caller grants a new one and publishes again.
/// Transient failures, and renewals without an answer within [`ATTEMPT`], are retried after
/// [`RETRY`] (the next attempt may reach another member).
pub async fn keep_lease_alive(
    store: Arc<dyn ConfigStore>,
    lease: LeaseId,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    renew(store, lease, ttl, shutdown, Renewal::KEEP).await
}

/// [`keep_lease_alive`] for keys another holder takes over when this one stops (the routes a
/// leading controller published: the next leader puts them under its own lease): at
/// `shutdown` the lease is left to lapse after its TTL instead of revoked, so that the keys
/// never vanish between two holders.
pub async fn keep_lease_alive_for_successor(
    store: Arc<dyn ConfigStore>,
    lease: LeaseId,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    renew(
        store,
        lease,
        ttl,
        shutdown,
        Renewal {
            revoke: false,
            ..Renewal::KEEP
        },
    )
    .await
}

/// [`keep_lease_alive`] for a holder that must not believe it holds the lease longer than the
/// store would: when no renewal has succeeded for a whole `ttl`, it gives up with
/// [`StoreError::Unavailable`]. (etcd without its majority cannot let a lease lapse, so
/// [`StoreError::LeaseNotFound`] never comes; once the majority is back the lease may be gone
/// and another holder in its place.)
pub async fn hold_lease(
    store: Arc<dyn ConfigStore>,
    lease: LeaseId,
    ttl: Duration,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    renew(
        store,
        lease,
        ttl,
        shutdown,
        Renewal {
            give_up: true,
            ..Renewal::KEEP
        },
    )
    .await
}

/// How a lease is renewed.
#[derive(Clone, Copy)]
struct Renewal {
    /// Stop with an error after a TTL without a renewal.
    give_up: bool,
    /// Revoke the lease at shutdown.
    revoke: bool,
}

impl Renewal {
    const KEEP: Renewal = Renewal {
        give_up: false,
        revoke: true,
    };
}

/// How soon a failed renewal is tried again (the next may reach another member).
const RETRY: Duration = Duration::from_millis(500);

/// The longest one renewal may take before it counts as failed: one stuck on a member that went
/// away (its connection not yet known dead) must not eat the lease's TTL.
const ATTEMPT: Duration = Duration::from_secs(3);

async fn renew(
    store: Arc<dyn ConfigStore>,
    lease: LeaseId,
    ttl: Duration,
    shutdown: CancellationToken,
    how: Renewal,
) -> Result<(), StoreError> {
    let period = (ttl / 3).max(Duration::from_millis(100));
    let attempt = period.min(ATTEMPT);
    let mut renewed = tokio::time::Instant::now();
    let mut next = renewed;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                if !how.revoke {
                    return Ok(());
                }
                return match store.revoke_lease(lease).await {
                    Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        let renewal = tokio::time::timeout(attempt, store.keep_alive(lease))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable {
                    op: format!("keep lease {lease} alive"),
                    source: format!("no answer within {} ms", attempt.as_millis()).into(),
                })
            });
        match renewal {
            Ok(()) => {
                renewed = tokio::time::Instant::now();
                next = renewed + period;
            }
            Err(e @ StoreError::LeaseNotFound(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(lease.id = %lease, error = %e, "Lease renewal failed; retrying");
                next = tokio::time::Instant::now() + RETRY;
            }
        }
        if how.give_up && renewed.elapsed() >= ttl {
            return Err(StoreError::Unavailable {
                op: format!("keep lease {lease} alive"),
                source: format!("no renewal succeeded for {} s", ttl.as_secs()).into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    async fn stopped(keep_for_successor: bool) -> bool {
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let ttl = Duration::from_secs(20);
        let lease = store.grant_lease(ttl).await.expect("lease");
        store
            .put(
                "/deis/services/web/web_v1.web.1",
                "10.0.0.2:5000",
                Some(lease),
            )
            .await
            .expect("put");
        let shutdown = CancellationToken::new();
        let keeper = if keep_for_successor {
            tokio::spawn(keep_lease_alive_for_successor(
                store.clone(),
                lease,
                ttl,
                shutdown.clone(),
            ))
        } else {
            tokio::spawn(keep_lease_alive(
                store.clone(),
                lease,
                ttl,
                shutdown.clone(),
            ))
        };
        shutdown.cancel();
        keeper.await.expect("keeper").expect("stopped cleanly");
        store
            .get("/deis/services/web/web_v1.web.1")
            .await
            .expect("get")
            .is_some()
    }

    #[tokio::test]
    async fn a_stopping_holder_revokes_its_keys_unless_a_successor_takes_them_over() {
        assert!(!stopped(false).await, "revoked at shutdown");
        assert!(stopped(true).await, "left for the successor");
    }
}
