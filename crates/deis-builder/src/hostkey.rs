//! The SSH host key: the same across restarts and across builders, so `git push` never warns
//! that the host changed. It lives in the config store (`/deis/builder/sshHostKey`), created by
//! the first builder to start, and in the data directory, so that a single-host platform, whose
//! store lives in memory, keeps it across restarts too.

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
    data_dir: &std::path::Path,
) -> Result<PrivateKey, HostKeyError> {
    let path = Key::setting(Component::Builder, "sshHostKey")
        .map_err(|e| HostKeyError::Store(e.to_string()))?
        .path();
    let store_error = |e: deis_store::StoreError| HostKeyError::Store(e.to_string());
    let file = data_dir.join("ssh_host_ed25519_key");
    if let Some(kv) = store.get(&path).await.map_err(store_error)? {
        let _ = write_private(&file, &kv.value);
        return PrivateKey::from_openssh(kv.value.as_bytes())
            .map_err(|e| HostKeyError::Invalid(e.to_string()));
    }
    let key = match std::fs::read_to_string(&file) {
        Ok(pem) => PrivateKey::from_openssh(pem.as_bytes())
            .map_err(|e| HostKeyError::Invalid(format!("{}: {e}", file.display())))?,
        Err(_) => PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>())),
    };
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| HostKeyError::Invalid(e.to_string()))?;
    let _ = write_private(&file, &pem);
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
    let _ = write_private(&file, &kv.value);
    PrivateKey::from_openssh(kv.value.as_bytes()).map_err(|e| HostKeyError::Invalid(e.to_string()))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
