//! The config store: the one place where the platform's components publish and discover shared
//! state (routes, domains, certificates, settings, endpoints of each component).
//!
//! [`ConfigStore`] has the semantics of etcd v3 (revisions, prefix watches that resume from a
//! revision, leases, compare-and-swap transactions) and two backends: [`EtcdStore`] for the
//! cluster mode and [`MemoryStore`] for the single-host mode, held to the same contract by one
//! test suite. etcd is reached in plain HTTP/2 or over TLS with a client certificate
//! ([`EtcdTls`], rustls on ring), with errors that name a missing file or a refused handshake.
//! [`keys`] gives every key of the namespace a type; the schema itself is documented once, in
//! `ARCHITECTURE.md` ("The key schema"). [`Follower`] is the one way to keep a copy of a prefix:
//! list, watch from the listing, list again after a compaction or failure.
//!
//! This crate is not the database: the controller's database is the source of truth and the
//! store holds what other components must see or watch. Values are UTF-8 text.

mod config;
mod error;
mod etcd;
mod follow;
pub mod keys;
mod lease;
mod memory;
mod model;
mod tls;

use std::time::Duration;

pub use config::{StoreConfig, connect};
pub use error::StoreError;
pub use etcd::{EtcdMember, EtcdStore};
pub use follow::{Follower, Update};
pub use lease::{hold_lease, keep_lease_alive, keep_lease_alive_for_successor};
pub use memory::MemoryStore;
pub use model::{
    Compare, Event, EventKind, KeyValue, LeaseId, Listing, Op, Revision, Txn, TxnOutcome,
    WatchStream,
};
pub use tls::EtcdTls;

/// The operations every backend offers, with etcd v3 semantics.
#[async_trait::async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// The key's current value, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Every key starting with `prefix`, in key order, and the revision they were read at.
    async fn list(&self, prefix: &str) -> Result<Listing, StoreError>;

    /// Sets a key, attached to `lease` if given. Returns the new revision.
    async fn put(
        &self,
        key: &str,
        value: &str,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError>;

    /// Deletes a key. Returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Deletes every key starting with `prefix`, in one revision. Returns how many there were.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError>;

    /// Applies a compare-and-swap transaction atomically.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;

    /// Creates a lease that expires `ttl` after its last keep-alive (whole seconds, at least 1).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Renews a lease for its full TTL; fails with [`StoreError::LeaseNotFound`] once it expired.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Ends a lease now, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Every change under `prefix` from revision `from` on (`0`: from the next change), in
    /// revision order, each exactly once, for as long as the stream is held. The stream
    /// reconnects by itself after connection failures.
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError>;
}

pub(crate) fn ttl_seconds(ttl: Duration) -> Result<i64, StoreError> {
    let secs = ttl.as_secs_f64().ceil();
    if secs < 1.0 || secs > i64::MAX as f64 {
        return Err(StoreError::InvalidRequest(format!(
            "a lease TTL must be at least one second, got {ttl:?}"
        )));
    }
    Ok(secs as i64)
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidRequest("the key is empty".into()));
    }
    Ok(())
}
