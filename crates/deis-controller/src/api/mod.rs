//! The REST API of Deis v1 (API 1.7): routes, shared state, and the rules every handler uses
//! (who may touch which app). One module per endpoint group.

mod apps;
mod auth;
mod builds;
pub(crate) use builds::create_build_for;
pub(crate) mod error;
mod extract;
mod keys;
mod openapi;
mod page;
mod perms;
mod render;
mod routes;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::any;
use deis_store::keys::{Component, Key};
use tower::ServiceExt;

use crate::db::{App, Db, User};
use crate::mirror::Mirror;
use deis_scheduler::Scheduler;
use error::{ApiError, ApiResult};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) db: Db,
    pub(crate) mirror: Mirror,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    pub(crate) locks: Arc<AppLocks>,
    /// The platform domain when the store has none.
    pub(crate) default_domain: String,
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

/// How long a change waits for another change of the same app before giving up with 409.
const LOCK_WAIT: Duration = Duration::from_secs(60);

impl AppLocks {
    fn entry(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(app.to_owned()).or_default().clone()
    }

    pub(crate) async fn lock(&self, app: &str) -> ApiResult<tokio::sync::OwnedMutexGuard<()>> {
        let lock = self.entry(app);
        tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
            .await
            .map_err(|_| {
                ApiError::ErrorKey(
                    StatusCode::CONFLICT,
                    "Config changes already in progress.\nTimed out waiting for the app's lock"
                        .into(),
                )
            })
    }
}

impl AppLocks {
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

    /// Takes the app's lock and reads the app again under it, so that a change works on its
    /// latest state (structure, owner) and not on what it read before waiting.
    pub(crate) async fn lock_app(
        &self,
        app: &App,
    ) -> ApiResult<(tokio::sync::OwnedMutexGuard<()>, App)> {
        let guard = self.locks.lock(&app.id).await?;
        let fresh = self.db.app(&app.id).await?.ok_or(ApiError::NotFound)?;
        Ok((guard, fresh))
    }

    /// The app's current release and its config.
    pub(crate) async fn current_config(
        &self,
        app: &App,
    ) -> ApiResult<(crate::db::Release, crate::db::Config)> {
        let latest = self
            .db
            .latest_release(&app.id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let config = self
            .db
            .config(&latest.config)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok((latest, config))
    }

    /// The app, if `user` may act on it with `method` (§3): 404 when it does not exist, 403
    /// when the user is neither admin, owner nor (except for DELETE) collaborator.
    pub(crate) async fn app_for(&self, user: &User, id: &str, method: &Method) -> ApiResult<App> {
        let app = self.db.app(id).await?.ok_or(ApiError::NotFound)?;
        if user.is_superuser || app.owner == user.username {
            return Ok(app);
        }
        if method != Method::DELETE && self.db.is_collaborator(&app.id, &user.username).await? {
            return Ok(app);
        }
        Err(ApiError::Forbidden)
    }
}

/// The API's routes (from the table in `routes`), with the wire rules applied to every response.
pub(crate) fn router(state: AppState) -> Router {
    let state_for_grpc = state.clone();
    let mut api = Router::new();
    for endpoint in routes::endpoints() {
        api = api.route(endpoint.path, endpoint.handler);
    }
    let api = api
        .fallback(any(wire::not_found))
        .with_state(state)
        .layer(axum::middleware::from_fn(wire::wire));
    // Routing happens after the path is trimmed, so the trim wraps the whole router. The
    // builder's gRPC API shares the port (HTTP/2).
    crate::grpc::routes(state_for_grpc).fallback_service(api.map_request(wire::trim_trailing_slash))
}
