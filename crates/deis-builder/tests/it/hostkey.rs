//! The SSH host key stays the same when the builder restarts, even on an in-memory store (the
//! single-host platform), so `git push` never warns that the host changed.

use std::net::SocketAddr;
use std::sync::Arc;

use deis_builder::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{eventually, require};
use tokio_util::sync::CancellationToken;

async fn host_key(data_dir: &std::path::Path) -> String {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        ssh_listen: loopback,
        http_listen: loopback,
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    let listeners = Listeners::bind(&config).await.expect("bind");
    let ssh = listeners.ssh.local_addr().expect("addr");
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(deis_builder::run(
        config,
        store,
        listeners,
        shutdown.clone(),
    ));
    let keyscan = require("ssh-keyscan", "openssh-client");
    let key = eventually(
        std::time::Duration::from_secs(10),
        "the host key",
        || async {
            let out = tokio::process::Command::new(&keyscan)
                .args(["-t", "ed25519", "-p", &ssh.port().to_string(), "127.0.0.1"])
                .output()
                .await
                .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            match text.split_whitespace().nth(2) {
                Some(key) => Ok(key.to_owned()),
                None => Err(text),
            }
        },
    )
    .await;
    shutdown.cancel();
    let _ = task.await;
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_key_survives_a_restart_on_a_memory_store() {
    let dir = tempfile::tempdir().expect("dir");
    let first = host_key(dir.path()).await;
    let second = host_key(dir.path()).await;
    assert_eq!(first, second);
    let other = tempfile::tempdir().expect("dir");
    assert_ne!(
        host_key(other.path()).await,
        first,
        "each platform has its own key"
    );
}
