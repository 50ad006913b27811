//! Choosing a backend from configuration.

use std::sync::Arc;

use serde::Deserialize;

use crate::{ConfigStore, EtcdStore, MemoryStore, StoreError};

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
        /// Client URLs of the members, e.g. `http://10.0.0.1:2379`.
        endpoints: Vec<String>,
        /// Prepended to every key; empty in production, unique per test.
        #[serde(default)]
        namespace: String,
    },
}

impl StoreConfig {
    /// etcd when endpoints are given (as from a comma-separated `DEIS_ETCD_ENDPOINTS`), the
    /// in-process store otherwise.
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
            }
        }
    }
}

/// Opens the configured store.
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn ConfigStore>, StoreError> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Etcd {
            endpoints,
            namespace,
        } => Arc::new(EtcdStore::connect(endpoints, namespace).await?),
    })
}
