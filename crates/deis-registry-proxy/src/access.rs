//! Who may do what: every request but `/healthz` and `/metrics` presents a Basic credential
//! made by `deis_runtime`'s registry helper; the builder's may push, delete and list the
//! catalog; an app's may only read its own repository.

use std::sync::Arc;

use deis_runtime::{RegistryPrincipal, RegistrySecrets};
use deis_store::ConfigStore;
use http::{HeaderMap, Method, header};
use tokio::sync::OnceCell;

use crate::error::RegistryError;
use crate::names::Route;

/// The access check, with the secrets read from the store on first use.
pub(crate) struct Access {
    store: Arc<dyn ConfigStore>,
    secrets: OnceCell<RegistrySecrets>,
}

impl Access {
    pub(crate) fn new(store: Arc<dyn ConfigStore>) -> Access {
        Access {
            store,
            secrets: OnceCell::new(),
        }
    }

    /// The caller, if it may do `method` on `route`: else 401 (no or an unknown credential) or
    /// 403 (a valid credential without the right).
    pub(crate) async fn check(
        &self,
        headers: &HeaderMap,
        route: &Route,
        method: &Method,
    ) -> Result<RegistryPrincipal, RegistryError> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(RegistryError::Unauthorized)?;
        let secrets = self
            .secrets
            .get_or_try_init(|| RegistrySecrets::load(self.store.as_ref()))
            .await
            .map_err(RegistryError::Secrets)?;
        let principal = secrets
            .verify(authorization)
            .ok_or(RegistryError::Unauthorized)?;
        let reads = matches!(*method, Method::GET | Method::HEAD);
        let allowed = match route {
            Route::Base => true,
            Route::Catalog => principal.may_list_catalog(),
            Route::Tags(r) | Route::Manifest(r, _) | Route::Blob(r, _) if reads => {
                principal.may_pull(r.as_str())
            }
            other => other
                .repository()
                .is_some_and(|r| principal.may_push(r.as_str())),
        };
        if allowed {
            Ok(principal)
        } else {
            Err(RegistryError::Denied {
                repository: route.repository().map(|r| r.to_string()),
            })
        }
    }
}
