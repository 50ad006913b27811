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
    Store(#[from] deis_store::StoreError),
    /// The key's name is not in the schema (a bug).
    #[error("the SSH host key has no key in the store: {0}")]
    Key(#[from] deis_store::keys::KeyError),
    /// Another builder's key vanished between its creation and this read.
    #[error("the SSH host key vanished from the store while it was being read; start again")]
    Vanished,
    /// The stored (or the local file's) key is not an OpenSSH private key.
    #[error("{place} is not an OpenSSH private key: {source}")]
    Invalid {
        /// The store key or file it came from.
        place: String,
        #[source]
        source: russh::keys::ssh_key::Error,
    },
}

/// The platform's host key, created on first use.
pub(crate) async fn load_or_create(
    store: &Arc<dyn ConfigStore>,
    data_dir: &std::path::Path,
) -> Result<PrivateKey, HostKeyError> {
    let path = Key::setting(Component::Builder, "sshHostKey")?.path();
    let invalid = |place: &str| {
        let place = place.to_owned();
        move |source| HostKeyError::Invalid { place, source }
    };
    let file = data_dir.join("ssh_host_ed25519_key");
    if let Some(kv) = store.get(&path).await? {
        let _ = write_private(&file, &kv.value);
        return PrivateKey::from_openssh(kv.value.as_bytes()).map_err(invalid(&path));
    }
    let key = match std::fs::read_to_string(&file) {
        Ok(pem) => PrivateKey::from_openssh(pem.as_bytes())
            .map_err(invalid(&file.display().to_string()))?,
        Err(_) => PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>())),
    };
    let pem = key.to_openssh(LineEnding::LF).map_err(invalid(&path))?;
    let _ = write_private(&file, &pem);
    let created = store
        .txn(Txn::create(path.clone(), pem.to_string()))
        .await?;
    if created.succeeded {
        return Ok(key);
    }
    // Another builder created it first: use theirs.
    let kv = store.get(&path).await?.ok_or(HostKeyError::Vanished)?;
    let _ = write_private(&file, &kv.value);
    PrivateKey::from_openssh(kv.value.as_bytes()).map_err(invalid(&path))
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
