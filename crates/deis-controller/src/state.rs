//! What the REST API, the builder's gRPC API, the rules in `domain` and the reconciler share:
//! the database, the config store mirror, the scheduler, the engine images are copied with,
//! the per-app locks and the operator's limits. Plain state and settings look-ups; the rules live in `domain`, HTTP in `api`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deis_scheduler::Scheduler;
use deis_store::keys::{Component, Key};

use crate::db::Db;
use crate::mirror::Mirror;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) db: Db,
    pub(crate) mirror: Mirror,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    pub(crate) locks: Arc<AppLocks>,
    /// The platform domain when the store has none.
    pub(crate) default_domain: String,
    /// The Docker engine `deis pull` copies images with, and how long a copy may take.
    pub(crate) images: Arc<crate::images::Images>,
    /// App events, shipped to the logger.
    pub(crate) events: crate::events::Events,
    /// What apps may ask for.
    pub(crate) limits: crate::config::AppLimits,
    /// Recent failed logins.
    pub(crate) login_limits: Arc<crate::login_limit::LoginLimits>,
}

/// One lock per app, so that changes to one app (config, builds, rollbacks, scaling) happen
/// one at a time and each gets the next release number.
#[derive(Default)]
pub(crate) struct AppLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How long a change waits for another change of the same app before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(60);

impl AppLocks {
    fn entry(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(app.to_owned()).or_default().clone()
    }

    /// The app's lock, waiting for it at most [`LOCK_WAIT`]; `None` when the wait ran out.
    pub(crate) async fn lock(&self, app: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let lock = self.entry(app);
        tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
            .await
            .ok()
    }

    /// The app's lock if it is free now.
    pub(crate) fn try_lock(&self, app: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.entry(app).try_lock_owned().ok()
    }
}

impl AppState {
    /// The platform domain: `/deis/platform/domain`, else the configured default.
    pub(crate) async fn domain(&self) -> String {
        match self
            .mirror
            .store()
            .get(&Key::platform_domain().path())
            .await
        {
            Ok(Some(kv)) if !kv.value.is_empty() => kv.value,
            _ => self.default_domain.clone(),
        }
    }

    /// A controller setting from the store, if set.
    pub(crate) async fn setting(&self, name: &str) -> Option<String> {
        let key = Key::setting(Component::Controller, name).ok()?;
        match self.mirror.store().get(&key.path()).await {
            Ok(Some(kv)) => Some(kv.value),
            _ => None,
        }
    }

    /// The key the builder authenticates its hooks with (`/deis/controller/builderKey`).
    pub(crate) async fn builder_key(&self) -> Option<String> {
        self.setting("builderKey").await.filter(|k| !k.is_empty())
    }
}
