//! Choosing a backend from configuration: the in-process store, or etcd at some endpoints,
//! over TLS with a client certificate when [`EtcdTls`] files are given.

use std::sync::Arc;

use serde::Deserialize;

use crate::{ConfigStore, EtcdStore, EtcdTls, MemoryStore, StoreError};

/// Which config store a component uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// A store inside this process (the single-host mode). Components only share it when they
    /// run in the same process.
    #[default]
    Memory,
    /// An etcd v3 cluster (the cluster mode).
    Etcd {
        /// Client URLs of the members, e.g. `http://10.0.0.1:2379`, or `https://…` with `tls`.
        endpoints: Vec<String>,
        /// Prepended to every key; empty in production, unique per test.
        #[serde(default)]
        namespace: String,
        /// The CA bundle and client certificate for an etcd that serves TLS (in a file:
        /// `[store.tls]` with `ca_file`, `cert_file`, `key_file`).
        #[serde(default)]
        tls: Option<EtcdTls>,
    },
}

impl StoreConfig {
    /// etcd when endpoints are given (as from a comma-separated `DEIS_ETCD_ENDPOINTS`), the
    /// in-process store otherwise. No TLS: set `tls` on the result for that.
    pub fn from_endpoints(endpoints: &[String]) -> StoreConfig {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            StoreConfig::Memory
        } else {
            StoreConfig::Etcd {
                endpoints,
                namespace: String::new(),
                tls: None,
            }
        }
    }
}

/// Opens the configured store. With TLS settings their files are read and checked now; see
/// [`EtcdStore::connect_with_tls`].
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn ConfigStore>, StoreError> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Etcd {
            endpoints,
            namespace,
            tls,
        } => Arc::new(EtcdStore::connect_with_tls(endpoints, namespace, tls.as_ref()).await?),
    })
}
