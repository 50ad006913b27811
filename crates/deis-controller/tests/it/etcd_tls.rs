//! The `deis-controller` binary against an etcd that serves TLS and requires client
//! certificates, configured only through the environment a Swarm service gets: the endpoint,
//! the CA bundle, its own certificate and key, and `DEIS_ADVERTISE_HOST=auto`.

use std::time::Duration;

use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, EtcdStore, EtcdTls};
use deis_testkit::{Etcd, assert_stops_cleanly, eventually, free_addr, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-controller");

#[tokio::test]
async fn publishes_its_endpoint_in_a_tls_etcd_at_the_address_it_finds_itself() {
    let etcd = Etcd::start_tls().await;
    let namespace = format!("/{}", deis_testkit::unique_id());
    let dir = tempfile::tempdir().expect("temporary directory");
    let cert = etcd.client_cert("controller");
    // Listening on every address, so that the advertised host is the one `auto` finds.
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], free_addr().port()));
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DEIS_ETCD_ENDPOINTS", etcd.endpoint()),
        ("DEIS_ETCD_NAMESPACE", namespace.clone()),
        ("DEIS_ETCD_CA_FILE", etcd.ca_file().display().to_string()),
        ("DEIS_ETCD_CERT_FILE", cert.cert_file.display().to_string()),
        ("DEIS_ETCD_KEY_FILE", cert.key_file.display().to_string()),
        ("DEIS_ADVERTISE_HOST", "auto".to_owned()),
    ];
    let health = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let process = start_service(BIN, &env, &[(health, "/healthz")], dir.path()).await;

    let reader = etcd.client_cert("test");
    let tls = EtcdTls {
        ca_file: Some(etcd.ca_file()),
        cert_file: Some(reader.cert_file),
        key_file: Some(reader.key_file),
    };
    let store = EtcdStore::connect_with_tls(&[etcd.endpoint()], &namespace, Some(&tls))
        .await
        .expect("connect to etcd");
    let port_key = Key::port(Component::Controller).path();
    eventually(
        Duration::from_secs(10),
        "the controller's port in etcd",
        || async {
            match store.get(&port_key).await {
                Ok(Some(kv)) if kv.value == addr.port().to_string() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let host = store
        .get(&Key::host(Component::Controller).path())
        .await
        .expect("get")
        .expect("the host is published with the port");
    // The address this host uses towards etcd, here on loopback.
    assert_eq!(host.value, "127.0.0.1");

    assert_stops_cleanly(process);
    assert_eq!(store.get(&port_key).await.expect("get"), None);
}

#[tokio::test]
async fn without_its_certificate_it_says_etcd_wants_one() {
    let etcd = Etcd::start_tls().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DEIS_ETCD_ENDPOINTS", etcd.endpoint()),
        ("DEIS_ETCD_CA_FILE", etcd.ca_file().display().to_string()),
    ];
    let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    eventually(
        Duration::from_secs(10),
        "the controller to log why etcd refused it",
        || {
            let output = process.output();
            async move {
                if output.contains("requires a client certificate") {
                    Ok(())
                } else {
                    Err(output)
                }
            }
        },
    )
    .await;
    assert_stops_cleanly(process);
}
