//! The router against real upstream servers, fed by the config store: every routing rule, table
//! changes applied without a restart, and a dead backend skipped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use deis_router::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// An upstream that answers `<name> <x-forwarded-for> <x-request-id set?>`.
async fn upstream(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().fallback(move |req: Request| async move {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        format!(
            "{name} {} {} {}",
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            req.headers().contains_key("x-request-id")
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Fixture {
    addr: SocketAddr,
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn router() -> Fixture {
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    store
        .put("/deis/platform/domain", "example.com", None)
        .await
        .expect("store");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        listen: loopback,
        admin_listen: loopback,
        ..Config::default()
    };
    let listeners = Listeners::bind(&config).await.expect("bind");
    let addr = listeners.http.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(deis_router::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));
    Fixture {
        addr,
        store,
        shutdown,
    }
}

/// `GET /` with `Host: host`: the status and body.
async fn get(router: SocketAddr, host: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(router)
        .await
        .expect("connect");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn answers(router: SocketAddr, host: &str, expect: u16, needle: &str) {
    let (host, needle) = (host.to_owned(), needle.to_owned());
    eventually(
        Duration::from_secs(10),
        &format!("{host} to answer {expect} with {needle:?}"),
        || {
            let (host, needle) = (host.clone(), needle.clone());
            async move {
                let (status, body) = get(router, &host).await;
                if status == expect && body.contains(&needle) {
                    Ok(())
                } else {
                    Err(format!("{status} {body}"))
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn hosts_route_to_their_apps_and_changes_apply_at_once() {
    let r = router().await;
    let (a, b) = (upstream("a").await, upstream("b").await);
    r.store
        .put("/deis/services/go", "alice", None)
        .await
        .expect("store");
    r.store
        .put("/deis/services/go/go_v1.web.1", &a.to_string(), None)
        .await
        .expect("store");
    answers(r.addr, "go.example.com", 200, "a 127.0.0.1 http true").await;

    // A second backend: requests spread over both.
    r.store
        .put("/deis/services/go/go_v1.web.2", &b.to_string(), None)
        .await
        .expect("store");
    answers(r.addr, "go.example.com", 200, "b").await;
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        let (_, body) = get(r.addr, "go.example.com:80").await;
        *seen
            .entry(body.split(' ').next().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both backends serve: {seen:?}");

    // Any parent domain, and a custom domain.
    answers(r.addr, "go.other.net", 200, "").await;
    r.store
        .put("/deis/domains/www.go.org", "go", None)
        .await
        .expect("store");
    answers(r.addr, "WWW.go.org", 200, "").await;

    // Unknown hosts, apps without backends.
    answers(r.addr, "nope.example.com", 404, "404 Not Found").await;
    r.store
        .put("/deis/services/idle", "bob", None)
        .await
        .expect("store");
    answers(r.addr, "idle.example.com", 503, "503").await;

    // Withdrawn routes stop at once; a deleted app is unknown.
    r.store
        .delete_prefix("/deis/services/go/")
        .await
        .expect("store");
    answers(r.addr, "go.example.com", 503, "").await;
    r.store.delete("/deis/services/go").await.expect("store");
    answers(r.addr, "go.example.com", 404, "").await;
}

#[tokio::test]
async fn the_controller_answers_on_its_subdomain() {
    let r = router().await;
    let controller = upstream("controller").await;
    answers(r.addr, "deis.example.com", 503, "").await;
    r.store
        .put("/deis/controller/host", "127.0.0.1", None)
        .await
        .expect("store");
    r.store
        .put(
            "/deis/controller/port",
            &controller.port().to_string(),
            None,
        )
        .await
        .expect("store");
    answers(r.addr, "deis.example.com", 200, "controller").await;
}

#[tokio::test]
async fn a_dead_backend_is_skipped() {
    let r = router().await;
    let live = upstream("live").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    r.store
        .put("/deis/services/go", "alice", None)
        .await
        .expect("store");
    r.store
        .put("/deis/services/go/go_v1.web.1", &dead.to_string(), None)
        .await
        .expect("store");
    r.store
        .put("/deis/services/go/go_v1.web.2", &live.to_string(), None)
        .await
        .expect("store");
    answers(r.addr, "go.example.com", 200, "live").await;
    for _ in 0..10 {
        let (status, body) = get(r.addr, "go.example.com").await;
        assert_eq!(
            (status, body.split(' ').next()),
            (200, Some("live")),
            "no request fails"
        );
    }
    answers(r.addr, "unknown.example.com", 404, "").await;
    let (status, _) = get(r.addr, "localhost").await;
    assert_eq!(status, 404);
}
