//! Routes in the config store: `/deis/services/<app>/<container>` = `host:port`, all attached to
//! one lease that this scheduler keeps alive, so that a dead controller's routes expire (a
//! stopping one leaves them for its successor to take over rather than revoking them). If the
//! lease is lost anyway (the store was unreachable for a whole TTL), a new one is granted and
//! every route put back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deis_store::keys::{Key, prefix};
use deis_store::{ConfigStore, LeaseId, StoreError, keep_lease_alive_for_successor};
use deis_types::{AppName, ContainerName};
use tokio_util::sync::CancellationToken;

use crate::spec::SchedulerError;

/// The lifetime of routes whose scheduler stopped renewing them: longer than a new leader takes
/// to take them over (the last one's lead lapses, the new one reaches the Swarm, which may be
/// electing a manager after a host's loss), since routes that lapse before take every app
/// offline. The routes of containers that died meanwhile are stepped over by the routers'
/// health marks.
pub(crate) const ROUTE_TTL: Duration = Duration::from_secs(60);

pub(crate) struct Routes {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
    tasks: crate::tasks::Tasks,
    lease: tokio::sync::Mutex<Option<LeaseId>>,
    published: Mutex<BTreeMap<String, String>>,
}

fn store_error(e: StoreError) -> SchedulerError {
    SchedulerError::Routes(e)
}

impl Routes {
    pub(crate) fn new(store: Arc<dyn ConfigStore>, tasks: crate::tasks::Tasks) -> Self {
        Routes {
            inner: Arc::new(Inner {
                store,
                shutdown: tasks.shutdown.clone(),
                tasks,
                lease: tokio::sync::Mutex::new(None),
                published: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    async fn lease(&self) -> Result<LeaseId, SchedulerError> {
        let mut slot = self.inner.lease.lock().await;
        if let Some(lease) = *slot {
            return Ok(lease);
        }
        let lease = self
            .inner
            .store
            .grant_lease(ROUTE_TTL)
            .await
            .map_err(store_error)?;
        *slot = Some(lease);
        self.inner.tasks.spawn(keep(self.inner.clone(), lease));
        Ok(lease)
    }

    /// Publishes (or moves) a container's route.
    pub(crate) async fn publish(
        &self,
        name: &ContainerName,
        target: &str,
    ) -> Result<(), SchedulerError> {
        let lease = self.lease().await?;
        let key = Key::Route(name.clone()).path();
        self.inner
            .store
            .put(&key, target, Some(lease))
            .await
            .map_err(store_error)?;
        let before = self
            .inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, target.to_owned());
        if before.as_deref() != Some(target) {
            tracing::info!(container = %name, route = target, before = before.as_deref().unwrap_or("-"), "Route published");
        }
        Ok(())
    }

    /// A container's route as last published (or taken over).
    pub(crate) fn current(&self, name: &ContainerName) -> Option<String> {
        let key = Key::Route(name.clone()).path();
        self.inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    /// Takes over the routes in the store: a previous scheduler's (a controller that died or
    /// lost the lead), under a lease that will lapse. Each is put again under this one's lease,
    /// so that the apps keep their routes until convergence confirms or replaces them (the
    /// routers' health marks step over the dead ones meanwhile). Only the leading controller's
    /// scheduler writes routes: the number taken over.
    pub(crate) async fn adopt(&self) -> Result<usize, SchedulerError> {
        let listing = self
            .inner
            .store
            .list(prefix::SERVICES)
            .await
            .map_err(store_error)?;
        // Routes are `<app>/<container>` under the prefix; `<app>` alone is the app's own key
        // (the controller's, under no lease).
        let routes: Vec<_> = listing
            .kvs
            .iter()
            .filter(|kv| {
                kv.key
                    .strip_prefix(prefix::SERVICES)
                    .is_some_and(|rest| rest.contains('/'))
            })
            .collect();
        if routes.is_empty() {
            return Ok(0);
        }
        let lease = self.lease().await?;
        for kv in &routes {
            self.inner
                .store
                .put(&kv.key, &kv.value, Some(lease))
                .await
                .map_err(store_error)?;
            self.inner
                .published
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(kv.key.clone(), kv.value.clone());
        }
        Ok(routes.len())
    }

    /// Withdraws a container's route.
    pub(crate) async fn withdraw(&self, name: &ContainerName) -> Result<(), SchedulerError> {
        let key = Key::Route(name.clone()).path();
        self.inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        self.inner.store.delete(&key).await.map_err(store_error)?;
        Ok(())
    }

    /// Withdraws every route of an app.
    pub(crate) async fn withdraw_app(&self, app: &AppName) -> Result<(), SchedulerError> {
        let prefix = prefix::app_routes(app);
        self.inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
        self.inner
            .store
            .delete_prefix(&prefix)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Keeps the routes' lease alive until shutdown; on loss, re-grants and republishes.
async fn keep(inner: Arc<Inner>, mut lease: LeaseId) {
    loop {
        // Not revoked when this scheduler stops: the next leader takes the routes over (its
        // `adopt`), and until then they stay for the routers.
        match keep_lease_alive_for_successor(
            inner.store.clone(),
            lease,
            ROUTE_TTL,
            inner.shutdown.clone(),
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "The routes' lease was lost; publishing them again")
            }
        }
        let fresh = loop {
            if inner.shutdown.is_cancelled() {
                return;
            }
            match inner.store.grant_lease(ROUTE_TTL).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(error = %e, "Granting a lease for routes failed; retrying");
                    tokio::select! {
                        _ = inner.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        *inner.lease.lock().await = Some(fresh);
        lease = fresh;
        let routes: Vec<(String, String)> = inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, target) in routes {
            if let Err(e) = inner.store.put(&key, &target, Some(lease)).await {
                tracing::warn!(route = %key, error = %e, "Republishing a route failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_store::MemoryStore;

    #[tokio::test]
    async fn a_new_scheduler_takes_over_the_routes_of_one_whose_lease_lapses() {
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let dead = store.grant_lease(ROUTE_TTL).await.expect("lease");
        let route = "/deis/services/web/web_v2.web.1";
        store
            .put(route, "10.0.0.2:32768", Some(dead))
            .await
            .expect("put");
        let shutdown = CancellationToken::new();
        // The app's own key is not a route: it is not put under the routes' lease.
        store
            .put("/deis/services/web", "owner", None)
            .await
            .expect("put");
        let routes = Routes::new(store.clone(), crate::tasks::Tasks::new(shutdown.clone()));
        assert_eq!(routes.adopt().await.expect("adopt"), 1);
        let app = store.get("/deis/services/web").await.expect("get");
        assert_eq!(
            app.and_then(|kv| kv.lease),
            None,
            "the app's key under no lease"
        );
        // The dead scheduler's lease lapses: the route stays, now under the new one's lease.
        store.revoke_lease(dead).await.expect("revoke");
        let kept = store.get(route).await.expect("get").expect("the route");
        assert_eq!(kept.value, "10.0.0.2:32768");
        assert!(kept.lease.is_some() && kept.lease != Some(dead), "{kept:?}");
        shutdown.cancel();
    }
}
