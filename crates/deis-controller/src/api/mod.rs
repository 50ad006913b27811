//! The REST API of Deis v1 (API 1.7): routes, shared state, and the rules every handler uses
//! (who may touch which app). One module per endpoint group.

mod apps;
mod auth;
mod builds;
pub(crate) mod error;
mod extract;
mod keys;
mod page;
mod perms;
mod render;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{any, get, post};
use deis_store::keys::{Component, Key};
use tower::ServiceExt;

use crate::db::{App, Db, User};
use crate::mirror::Mirror;
use crate::scheduler::Scheduler;
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
    pub(crate) async fn lock(&self, app: &str) -> ApiResult<tokio::sync::OwnedMutexGuard<()>> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(app.to_owned()).or_default().clone()
        };
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

/// The API's routes, with the wire rules applied to every response.
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(|| async { "OK" }))
        .route("/v1", get(auth::root))
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/cancel", axum::routing::delete(auth::cancel))
        .route("/v1/auth/passwd", post(auth::passwd))
        .route("/v1/auth/tokens", post(auth::tokens))
        .route("/v1/users", get(auth::users))
        .route(
            "/v1/admin/perms",
            get(perms::admins).post(perms::grant_admin),
        )
        .route(
            "/v1/admin/perms/{username}",
            axum::routing::delete(perms::revoke_admin),
        )
        .route("/v1/apps", get(apps::list).post(apps::create))
        .route(
            "/v1/apps/{app}",
            get(apps::info).post(apps::update).delete(apps::destroy),
        )
        .route("/v1/apps/{app}/logs", get(apps::logs))
        .route("/v1/apps/{app}/run", post(apps::run))
        .route(
            "/v1/apps/{app}/config",
            get(builds::config).post(builds::set_config),
        )
        .route(
            "/v1/apps/{app}/builds",
            get(builds::builds).post(builds::create_build),
        )
        .route("/v1/apps/{app}/builds/{uuid}", get(builds::build))
        .route("/v1/apps/{app}/releases", get(builds::releases))
        .route("/v1/apps/{app}/releases/rollback", post(builds::rollback))
        .route("/v1/apps/{app}/releases/{version}", get(builds::release))
        .route("/v1/apps/{app}/containers", get(apps::containers))
        .route("/v1/apps/{app}/containers/restart", post(apps::restart_all))
        .route(
            "/v1/apps/{app}/containers/{ptype}",
            get(apps::containers_of_type),
        )
        .route(
            "/v1/apps/{app}/containers/{ptype}/restart",
            post(apps::restart_type),
        )
        .route(
            "/v1/apps/{app}/containers/{ptype}/{num}",
            get(apps::container),
        )
        .route(
            "/v1/apps/{app}/containers/{ptype}/{num}/restart",
            post(apps::restart_one),
        )
        .route("/v1/apps/{app}/scale", post(apps::scale))
        .route(
            "/v1/apps/{app}/domains",
            get(keys::domains).post(keys::add_domain),
        )
        .route(
            "/v1/apps/{app}/domains/{domain}",
            axum::routing::delete(keys::remove_domain),
        )
        .route(
            "/v1/apps/{app}/perms",
            get(perms::collaborators).post(perms::share),
        )
        .route(
            "/v1/apps/{app}/perms/{username}",
            axum::routing::delete(perms::unshare),
        )
        .route("/v1/keys", get(keys::keys).post(keys::add_key))
        .route("/v1/keys/{*id}", get(keys::key).delete(keys::remove_key))
        .route("/v1/certs", get(keys::certs).post(keys::add_cert))
        .route("/v1/certs/{cn}", get(keys::cert).delete(keys::remove_cert))
        .route("/v1/hooks/push", post(perms::hook_push))
        .route("/v1/hooks/build", post(perms::hook_build))
        .route("/v1/hooks/builds", post(perms::hook_build))
        .route("/v1/hooks/config", post(perms::hook_config))
        .fallback(any(wire::not_found))
        .with_state(state)
        .layer(axum::middleware::from_fn(wire::wire));
    // Routing happens after the path is trimmed, so the trim wraps the whole router.
    Router::new().fallback_service(api.map_request(wire::trim_trailing_slash))
}
