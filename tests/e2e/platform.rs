//! The platform hosted in one process, as the single-host mode runs it: every component up on
//! one shared in-process store, and all of them drained by one shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_platform::{Config, Listeners};
use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{eventually, http_get};
use tokio_util::sync::CancellationToken;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_hosts_every_component_on_one_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = Config::default();
    config.controller.listen = loopback();
    config.controller.data_dir = dir.path().to_owned();
    config.builder.data_dir = dir.path().join("builder");
    config.builder.http_listen = loopback();
    config.builder.ssh_listen = loopback();
    config.router.listen = loopback();
    config.router.admin_listen = loopback();
    config.router.https_listen = Some(loopback());
    config.logger.listen = loopback();
    config.logger.syslog_udp = Some(loopback());
    config.logger.syslog_tcp = Some(loopback());
    config.registry_proxy.listen = loopback();
    let listeners = Listeners::bind(&config).await.expect("bind");
    let addr = |l: &tokio::net::TcpListener| l.local_addr().expect("address");
    let health = [
        (addr(&listeners.controller.http), "/healthz"),
        (addr(&listeners.builder.http), "/healthz"),
        (addr(&listeners.router.http), "/health-check"),
        (addr(&listeners.router.admin), "/healthz"),
        (addr(&listeners.logger.http), "/healthz"),
        (addr(&listeners.registry_proxy.http), "/healthz"),
    ];
    let controller_port = health[0].0.port();

    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let shutdown = CancellationToken::new();
    let platform = tokio::spawn(deis_platform::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));

    for (addr, path) in health {
        eventually(
            Duration::from_secs(10),
            &format!("{path} on {addr}"),
            || async move {
                match tokio::task::spawn_blocking(move || http_get(addr, path)).await {
                    Ok(Ok((200, _))) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    // The components share the store: what the controller publishes, everyone can read.
    eventually(
        Duration::from_secs(10),
        "the endpoints in the shared store",
        || {
            let store = store.clone();
            async move {
                let controller = store.get(&Key::port(Component::Controller).path()).await;
                let logs = store.get(&Key::host(Component::Logs).path()).await;
                let registry = store.get(&Key::host(Component::Registry).path()).await;
                match (controller, logs, registry) {
                    (Ok(Some(c)), Ok(Some(_)), Ok(Some(_)))
                        if c.value == controller_port.to_string() =>
                    {
                        Ok(())
                    }
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), platform)
        .await
        .expect("the platform stops within the drain period")
        .expect("the platform task");
    stopped.expect("a clean stop");
    let left: Vec<String> = store
        .list("/deis/")
        .await
        .expect("list")
        .kvs
        .into_iter()
        .filter(|kv| kv.lease.is_some())
        .map(|kv| kv.key)
        .collect();
    assert!(
        left.is_empty(),
        "endpoints still published after shutdown: {left:?}"
    );
}
