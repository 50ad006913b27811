//! The `deis-platform` binary: the whole platform in one process on embedded defaults.

use deis_testkit::{assert_stops_cleanly, free_addr, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-platform");

#[tokio::test]
async fn every_component_answers_health_and_all_stop_on_one_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ssh = free_addr();
    let (controller, router, router_admin, builder, logger, registry_proxy) = (
        free_addr(),
        free_addr(),
        free_addr(),
        free_addr(),
        free_addr(),
        free_addr(),
    );
    let env = [
        ("DEIS_CONTROLLER_LISTEN", controller.to_string()),
        ("DEIS_ROUTER_LISTEN", router.to_string()),
        ("DEIS_ROUTER_ADMIN_LISTEN", router_admin.to_string()),
        ("DEIS_ROUTER_HTTPS_LISTEN", free_addr().to_string()),
        ("DEIS_BUILDER_HTTP_LISTEN", builder.to_string()),
        ("DEIS_BUILDER_SSH_LISTEN", ssh.to_string()),
        ("DEIS_PLATFORM_DOMAIN", "example.test".to_owned()),
        ("DEIS_LOGGER_LISTEN", logger.to_string()),
        ("DEIS_LOGGER_SYSLOG_UDP", free_addr().to_string()),
        ("DEIS_LOGGER_SYSLOG_TCP", free_addr().to_string()),
        ("DEIS_REGISTRY_PROXY_LISTEN", registry_proxy.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
    ];
    let health = [
        (controller, "/healthz"),
        (router, "/health-check"),
        (router_admin, "/healthz"),
        (builder, "/healthz"),
        (logger, "/healthz"),
        (registry_proxy, "/healthz"),
    ];
    let process = start_service(BIN, &env, &health, dir.path()).await;
    // It says where everything is.
    let output = process.output();
    assert!(
        output.contains(&format!("deis register http://{controller}")),
        "{output}"
    );
    assert!(
        output.contains(&format!("ssh://git@{ssh}/<app>.git")),
        "{output}"
    );
    assert!(
        output.contains(&format!("http://<app>.example.test:{}", router.port())),
        "{output}"
    );
    assert_stops_cleanly(process);
}

#[tokio::test]
async fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("address");
    let output = std::process::Command::new(BIN)
        .env("DEIS_CONTROLLER_LISTEN", taken_addr.to_string())
        .env("DEIS_DATA_DIR", dir.path())
        .output()
        .expect("run deis-platform");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("deis-platform: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(
        line.contains(&format!("cannot listen on {taken_addr}")),
        "{line}"
    );
    assert!(line.contains("another process uses this port"), "{line}");
}
