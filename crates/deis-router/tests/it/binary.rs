//! The `deis-router` binary as an operator runs it.

use deis_testkit::{assert_stops_cleanly, free_addr, http_get, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-router");

#[tokio::test]
async fn starts_on_defaults_answers_health_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (proxy, https, admin, builder) = (free_addr(), free_addr(), free_addr(), free_addr());
    let env = [
        ("DEIS_ROUTER_LISTEN", proxy.to_string()),
        ("DEIS_ROUTER_HTTPS_LISTEN", https.to_string()),
        ("DEIS_ROUTER_ADMIN_LISTEN", admin.to_string()),
        ("DEIS_ROUTER_BUILDER_LISTEN", builder.to_string()),
    ];
    let health = [(admin, "/healthz"), (proxy, "/health-check")];
    let process = start_service(BIN, &env, &health, dir.path()).await;
    let (status, body) = http_get(proxy, "/").expect("the proxy answers");
    assert_eq!(status, 404, "no app is routed yet");
    assert!(body.contains("404 Not Found"), "{body}");
    // `git push` is taken on the builder port and, with no builder registered, closed at once.
    let mut push = std::net::TcpStream::connect(builder).expect("the builder port listens");
    push.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .expect("timeout");
    let read = std::io::Read::read(&mut push, &mut [0; 16]);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "closed at once, not {read:?}"
    );
    assert_stops_cleanly(process);
}
