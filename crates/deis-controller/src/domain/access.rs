//! Who may act on which app (§3), the app's lock for a change, the app's current config, and
//! whose an SSH key is.

use deis_types::Code;
use tokio::sync::OwnedMutexGuard;

use super::DomainError;
use super::validate::key_fingerprint;
use crate::db::{App, Config, DbError, Release, SshKey, User};
use crate::state::AppState;

/// What a caller wants to do with an app (§3): collaborators may do all but delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    /// Look at it.
    Read,
    /// Change it (config, builds, scaling, ...).
    Change,
    /// Delete it or one of its parts (a custom domain): the owner and administrators only.
    Delete,
}

/// Why an app (or its user) cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessError {
    /// The app does not exist.
    #[error("no app {app}")]
    NoApp { app: String },
    /// The user does not exist.
    #[error("no user {user}")]
    NoUser { user: String },
    /// No user has registered this key.
    #[error("no user has this key")]
    NoKeyOwner { fingerprint: String },
    /// The app has no release or config (it is being destroyed).
    #[error("app {app} has no {what}")]
    Missing { app: String, what: &'static str },
    /// The user is neither an administrator, the owner nor (except to delete) a collaborator.
    #[error("{user} has no access to app {app}")]
    Forbidden { user: String, app: String },
    /// Another change of the app held its lock too long.
    #[error("Config changes already in progress.\nTimed out waiting for the app's lock")]
    Busy { app: String },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AccessError {
    pub(crate) fn code(&self) -> Code {
        match self {
            AccessError::NoApp { .. }
            | AccessError::NoUser { .. }
            | AccessError::NoKeyOwner { .. }
            | AccessError::Missing { .. } => Code::NotFound,
            AccessError::Forbidden { .. } => Code::PermissionDenied,
            AccessError::Busy { .. } => Code::Conflict,
            AccessError::Db(e) => e.code(),
        }
    }
}

type Guard = OwnedMutexGuard<()>;

impl AppState {
    /// The app, if `user` may `act` on it.
    pub(crate) async fn app_for(
        &self,
        user: &User,
        id: &str,
        act: Act,
    ) -> Result<App, AccessError> {
        let app = self
            .db
            .app(id)
            .await?
            .ok_or_else(|| AccessError::NoApp { app: id.to_owned() })?;
        if user.is_superuser || app.owner == user.username {
            return Ok(app);
        }
        if act != Act::Delete && self.db.is_collaborator(&app.id, &user.username).await? {
            return Ok(app);
        }
        Err(AccessError::Forbidden {
            user: user.username.clone(),
            app: app.id,
        })
    }

    /// The user named `username` and the app `id`, if they may `act` on it.
    pub(crate) async fn user_and_app(
        &self,
        username: &str,
        id: &str,
        act: Act,
    ) -> Result<(User, App), AccessError> {
        let user = self
            .db
            .user(username)
            .await?
            .ok_or_else(|| AccessError::NoUser {
                user: username.to_owned(),
            })?;
        let app = self.app_for(&user, id, act).await?;
        Ok((user, app))
    }

    /// The app's lock, for a change.
    pub(crate) async fn lock(&self, app: &str) -> Result<Guard, AccessError> {
        self.locks.lock(app).await.ok_or_else(|| AccessError::Busy {
            app: app.to_owned(),
        })
    }

    /// Takes the app's lock and reads the app again under it, so that a change works on its
    /// latest state (structure, owner) and not on what it read before waiting.
    pub(crate) async fn lock_app(&self, app: &App) -> Result<(Guard, App), AccessError> {
        let guard = self.lock(&app.id).await?;
        let fresh = self
            .db
            .app(&app.id)
            .await?
            .ok_or_else(|| AccessError::NoApp {
                app: app.id.clone(),
            })?;
        Ok((guard, fresh))
    }

    /// The app's current release and its config.
    pub(crate) async fn current_config(&self, app: &App) -> Result<(Release, Config), AccessError> {
        let missing = |what| AccessError::Missing {
            app: app.id.clone(),
            what,
        };
        let latest = self
            .db
            .latest_release(&app.id)
            .await?
            .ok_or_else(|| missing("release"))?;
        let config = self
            .db
            .config(&latest.config)
            .await?
            .ok_or_else(|| missing("config"))?;
        Ok((latest, config))
    }

    /// The registered key `public` (an `authorized_keys` line) and so its owner.
    pub(crate) async fn key_owner(&self, public: &str) -> Result<SshKey, DomainError> {
        let fingerprint = key_fingerprint(public)?;
        match self.db.key_by_fingerprint(&fingerprint).await? {
            Some(key) => Ok(key),
            None => Err(AccessError::NoKeyOwner { fingerprint }.into()),
        }
    }
}
