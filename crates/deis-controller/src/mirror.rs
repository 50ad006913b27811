//! The config store as a derived copy of the database (§7.8): what the router and builder must
//! see is written there after each change, and all of it again at start-up. A store failure is
//! logged, never fails the request: the database stays the source of truth.

use std::sync::Arc;

use deis_store::keys::{CertPart, Key, Segment, prefix};
use deis_store::{ConfigStore, StoreError};
use deis_types::AppName;

use crate::db::{Db, DbResult};

/// Writes to the store on behalf of the API.
#[derive(Clone)]
pub(crate) struct Mirror {
    store: Arc<dyn ConfigStore>,
}

fn seg(s: &str) -> Option<Segment> {
    s.parse().ok()
}

fn logged(what: &str, result: Result<(), StoreError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, change = what, "Mirroring to the config store failed");
    }
}

impl Mirror {
    pub(crate) fn new(store: Arc<dyn ConfigStore>) -> Self {
        Mirror { store }
    }

    pub(crate) fn store(&self) -> &Arc<dyn ConfigStore> {
        &self.store
    }

    pub(crate) async fn app_saved(&self, app: &AppName, owner: &str) {
        let r = self
            .store
            .put(&Key::App(app.clone()).path(), owner, None)
            .await;
        logged("app", r.map(|_| ()));
    }

    pub(crate) async fn app_deleted(&self, app: &AppName, domains: &[String]) {
        let s = &self.store;
        let r = async {
            s.delete_prefix(&prefix::app_routes(app)).await?;
            s.delete(&Key::App(app.clone()).path()).await?;
            s.delete_prefix(&prefix::app_config(app)).await?;
            for d in domains.iter().filter_map(|d| seg(d)) {
                s.delete(&Key::Domain(d).path()).await?;
            }
            Ok(())
        }
        .await;
        logged("app deleted", r);
    }

    pub(crate) async fn config_saved(&self, app: &AppName, values: &[(String, String)]) {
        let s = &self.store;
        let r = async {
            s.delete_prefix(&prefix::app_config(app)).await?;
            for (k, v) in values {
                if let Some(key) = seg(&k.to_lowercase()) {
                    let path = Key::AppConfig {
                        app: app.clone(),
                        key,
                    }
                    .path();
                    s.put(&path, v, None).await?;
                }
            }
            Ok(())
        }
        .await;
        logged("config", r);
    }

    pub(crate) async fn domain_saved(&self, domain: &str, app: &str) {
        if let Some(d) = seg(domain) {
            let r = self.store.put(&Key::Domain(d).path(), app, None).await;
            logged("domain", r.map(|_| ()));
        }
    }

    pub(crate) async fn domain_deleted(&self, domain: &str) {
        if let Some(d) = seg(domain) {
            let r = self.store.delete(&Key::Domain(d).path()).await;
            logged("domain deleted", r.map(|_| ()));
        }
    }

    pub(crate) async fn cert_saved(&self, cn: &str, cert: &str, key: &str) {
        if let Some(cn) = seg(cn) {
            let s = &self.store;
            let r = async {
                let path = |part| {
                    Key::Cert {
                        common_name: cn.clone(),
                        part,
                    }
                    .path()
                };
                s.put(&path(CertPart::Cert), cert, None).await?;
                s.put(&path(CertPart::Key), key, None).await?;
                Ok(())
            }
            .await;
            logged("cert", r);
        }
    }

    pub(crate) async fn cert_deleted(&self, cn: &str) {
        if seg(cn).is_some() {
            let r = self
                .store
                .delete_prefix(&format!("{}{cn}/", prefix::CERTS))
                .await;
            logged("cert deleted", r.map(|_| ()));
        }
    }

    pub(crate) async fn key_saved(&self, user: &str, fingerprint: &str, public: &str) {
        if let (Some(user), Some(fingerprint)) = (seg(user), seg(fingerprint)) {
            let r = self
                .store
                .put(&Key::UserKey { user, fingerprint }.path(), public, None)
                .await;
            logged("key", r.map(|_| ()));
        }
    }

    pub(crate) async fn key_deleted(&self, user: &str, fingerprint: &str) {
        if let (Some(user), Some(fingerprint)) = (seg(user), seg(fingerprint)) {
            let r = self
                .store
                .delete(&Key::UserKey { user, fingerprint }.path())
                .await;
            logged("key deleted", r.map(|_| ()));
        }
    }

    pub(crate) async fn user_deleted(&self, user: &str) {
        if seg(user).is_some() {
            let r = self.store.delete_prefix(&prefix::user_keys(user)).await;
            logged("user deleted", r.map(|_| ()));
        }
    }

    /// Writes everything the store should hold, from the database (at start-up).
    pub(crate) async fn republish(&self, db: &Db) -> DbResult<()> {
        let (apps, _) = db.apps_visible("", true, i64::MAX, 0).await?;
        for app in apps {
            let Ok(name) = app.id.parse::<AppName>() else {
                continue;
            };
            self.app_saved(&name, &app.owner).await;
            if let Some(release) = db.latest_release(&app.id).await?
                && let Some(config) = db.config(&release.config).await?
            {
                let values = crate::domain::config::string_pairs(&config.config_values)?;
                self.config_saved(&name, &values).await;
            }
            let (domains, _) = db.domains(&app.id, i64::MAX, 0).await?;
            for d in domains {
                self.domain_saved(&d.domain, &d.app).await;
            }
        }
        for user in db.all_usernames().await? {
            let (keys, _) = db.keys(&user, i64::MAX, 0).await?;
            for k in keys {
                self.key_saved(&k.owner, &k.fingerprint, &k.public).await;
            }
            let (certs, _) = db.certs(&user, i64::MAX, 0).await?;
            for c in certs {
                self.cert_saved(&c.common_name, &c.certificate, &c.cert_key)
                    .await;
            }
        }
        Ok(())
    }
}
