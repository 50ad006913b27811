//! The `deis-registry-proxy` binary as an operator runs it.

use deis_testkit::{assert_stops_cleanly, free_addr, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-registry-proxy");

#[tokio::test]
async fn starts_on_defaults_answers_health_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let process = start_service(
        BIN,
        &[
            ("DEIS_REGISTRY_PROXY_LISTEN", addr.to_string()),
            (
                "DEIS_REGISTRY_PROXY_CACHE_DIR",
                dir.path().join("cache").display().to_string(),
            ),
        ],
        &[(addr, "/healthz")],
        dir.path(),
    )
    .await;
    assert_stops_cleanly(process);
}
