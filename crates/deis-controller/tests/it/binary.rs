//! The `deis-controller` binary as an operator runs it.

use std::time::Duration;

use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, EtcdStore};
use deis_testkit::{Etcd, assert_stops_cleanly, eventually, free_addr, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-controller");

#[tokio::test]
async fn starts_on_defaults_answers_health_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
    ];
    let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    assert_stops_cleanly(process);
}

#[tokio::test]
async fn publishes_its_endpoint_in_etcd_and_withdraws_it_on_sigterm() {
    let etcd = Etcd::start().await;
    let namespace = format!("/{}", deis_testkit::unique_id());
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DEIS_ETCD_ENDPOINTS", etcd.endpoint()),
        ("DEIS_ETCD_NAMESPACE", namespace.clone()),
    ];
    let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    let store = EtcdStore::connect(&[etcd.endpoint()], &namespace)
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
    assert_eq!(host.value, "127.0.0.1");
    assert!(host.lease.is_some(), "the endpoint is held by a lease");

    assert_stops_cleanly(process);
    // Revoked on the way out, not left to expire 20 s later.
    assert_eq!(store.get(&port_key).await.expect("get"), None);
}

#[tokio::test]
async fn a_malformed_engine_list_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = std::process::Command::new(BIN)
        .env("DEIS_CONTROLLER_LISTEN", free_addr().to_string())
        .env("DEIS_DATA_DIR", dir.path())
        .env("DEIS_DOCKER_ENGINES", "tcp://10.0.0.5:2375")
        .output()
        .expect("run deis-controller");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("deis-controller: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(line.contains("ADVERTISE_HOST=URL"), "{line}");
}

/// A leading controller whose PostgreSQL cannot be reached (its host lost) does not exit: it
/// answers every request with a 503 that says why, `/healthz` as a stand-by, and stops cleanly.
#[tokio::test]
async fn without_its_database_the_leader_refuses_saying_why() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let nowhere = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", format!("postgres://deis@{nowhere}/deis")),
    ];
    let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    let (status, body) = deis_testkit::http_get(addr, "/v1/apps").expect("an answer");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database cannot be reached"), "{body}");
    assert_stops_cleanly(process);
}
