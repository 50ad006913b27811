//! The platform hosted in one process, as the single-host mode runs it: every component up
//! (each answers its health check, which every start of [`SingleHost`] waits for) on one shared
//! store, here etcd so that the test can read it: what one component publishes, the others can
//! read; one SIGTERM drains them all, and nothing they published under a lease is left.

use std::time::Duration;

use deis_store::StoreConfig;
use deis_store::keys::{Component, Key};
use deis_testkit::eventually;

use crate::setup::{Options, SingleHost};

#[tokio::test(flavor = "multi_thread")]
async fn one_process_hosts_every_component_on_one_store() {
    let etcd = deis_testkit::Etcd::start().await;
    let mut host = SingleHost::start_with(Options {
        etcd: Some(etcd.endpoint()),
        ..Options::default()
    })
    .await;
    let store = deis_store::connect(&StoreConfig::Etcd {
        endpoints: vec![etcd.endpoint()],
        namespace: String::new(),
        tls: None,
    })
    .await
    .expect("etcd");
    let controller_port = host.controller.port().to_string();
    eventually(
        Duration::from_secs(10),
        "the endpoints in the shared store",
        || async {
            let controller = store.get(&Key::port(Component::Controller).path()).await;
            let logs = store.get(&Key::host(Component::Logs).path()).await;
            let registry = store.get(&Key::host(Component::Registry).path()).await;
            match (controller, logs, registry) {
                // Published under a lease, so revoked at the stop; no registry behind this
                // host's proxy, so it is not published as the platform's registry.
                (Ok(Some(c)), Ok(Some(_)), Ok(None))
                    if c.value == controller_port && c.lease.is_some() =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    SingleHost::stop(host.process.take().expect("running"));
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
