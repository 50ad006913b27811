//! PostgreSQL, Redis, the registry and etcd come up on free ports, answer, and go away.

use std::process::Command;

use deis_testkit::{Etcd, Postgres, Redis, Registry, http_get, require};

#[tokio::test]
async fn postgres_gives_each_test_its_own_database() {
    let pg = Postgres::start().await;
    let url = pg.create_database("app_test");
    assert!(url.ends_with("/app_test"), "{url}");
    let out = Command::new(require("psql", "postgresql-client"))
        .arg(&url)
        .args(["-tAc", "SELECT current_database()"])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app_test");
}

#[tokio::test]
async fn redis_answers_and_stops_with_the_fixture() {
    let redis = Redis::start().await;
    let addr = redis.addr();
    assert!(redis.url().starts_with("redis://127.0.0.1:"));
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(redis);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the server is gone with the fixture"
    );
}

#[tokio::test]
async fn the_registry_serves_the_v2_api() {
    let registry = Registry::start().await;
    let (status, body) = http_get(registry.addr(), "/v2/_catalog").expect("catalog");
    assert_eq!(status, 200);
    assert!(body.contains("\"repositories\""), "{body}");
}

#[tokio::test]
async fn etcd_reports_healthy() {
    let etcd = Etcd::start().await;
    let addr: std::net::SocketAddr = etcd
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let (status, body) = http_get(addr, "/version").expect("version");
    assert_eq!(status, 200);
    assert!(body.contains("etcdserver"), "{body}");
}
