//! The SSH host key: the same across restarts and across builders, so `git push` never warns
//! that the host changed. It lives in the config store (`/deis/builder/sshHostKey`), created by
//! the first builder to start.

use std::sync::Arc;

use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, Txn};
use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;

/// Why there is no host key.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The store could not be used.
    #[error("the SSH host key cannot be read or stored: {0}")]
    Store(String),
    /// The stored key is not an OpenSSH private key.
    #[error("/deis/builder/sshHostKey is not an OpenSSH private key: {0}")]
    Invalid(String),
}

/// The platform's host key, created on first use.
pub(crate) async fn load_or_create(
    store: &Arc<dyn ConfigStore>,
) -> Result<PrivateKey, HostKeyError> {
    let path = Key::setting(Component::Builder, "sshHostKey")
        .map_err(|e| HostKeyError::Store(e.to_string()))?
        .path();
    let store_error = |e: deis_store::StoreError| HostKeyError::Store(e.to_string());
    if let Some(kv) = store.get(&path).await.map_err(store_error)? {
        return PrivateKey::from_openssh(kv.value.as_bytes())
            .map_err(|e| HostKeyError::Invalid(e.to_string()));
    }
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()));
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| HostKeyError::Invalid(e.to_string()))?;
    let created = store
        .txn(Txn::create(path.clone(), pem.to_string()))
        .await
        .map_err(store_error)?;
    if created.succeeded {
        return Ok(key);
    }
    // Another builder created it first: use theirs.
    let kv = store
        .get(&path)
        .await
        .map_err(store_error)?
        .ok_or_else(|| HostKeyError::Store("the host key vanished".into()))?;
    PrivateKey::from_openssh(kv.value.as_bytes()).map_err(|e| HostKeyError::Invalid(e.to_string()))
}
