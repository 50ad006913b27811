//! The router against real upstream servers, fed by the config store: every routing rule, table
//! changes applied without a restart, and a dead backend skipped.

use std::collections::BTreeMap;

use crate::fixture::{answers, get, router, upstream};

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
    answers(r.http, "go.example.com", 200, "a 127.0.0.1 http true").await;

    // A second backend: requests spread over both.
    r.store
        .put("/deis/services/go/go_v1.web.2", &b.to_string(), None)
        .await
        .expect("store");
    answers(r.http, "go.example.com", 200, "b").await;
    let mut seen = BTreeMap::new();
    for _ in 0..10 {
        let (_, body) = get(r.http, "go.example.com:80").await;
        *seen
            .entry(body.split(' ').next().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both backends serve: {seen:?}");

    // Any parent domain, and a custom domain.
    answers(r.http, "go.other.net", 200, "").await;
    r.store
        .put("/deis/domains/www.go.org", "go", None)
        .await
        .expect("store");
    answers(r.http, "WWW.go.org", 200, "").await;

    // Unknown hosts, apps without backends.
    answers(r.http, "nope.example.com", 404, "404 Not Found").await;
    r.store
        .put("/deis/services/idle", "bob", None)
        .await
        .expect("store");
    answers(r.http, "idle.example.com", 503, "503").await;

    // Withdrawn routes stop at once; a deleted app is unknown.
    r.store
        .delete_prefix("/deis/services/go/")
        .await
        .expect("store");
    answers(r.http, "go.example.com", 503, "").await;
    r.store.delete("/deis/services/go").await.expect("store");
    answers(r.http, "go.example.com", 404, "").await;
}

#[tokio::test]
async fn the_controller_answers_on_its_subdomain() {
    let r = router().await;
    let controller = upstream("controller").await;
    answers(r.http, "deis.example.com", 503, "").await;
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
    answers(r.http, "deis.example.com", 200, "controller").await;
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
    answers(r.http, "go.example.com", 200, "live").await;
    for _ in 0..10 {
        let (status, body) = get(r.http, "go.example.com").await;
        assert_eq!(
            (status, body.split(' ').next()),
            (200, Some("live")),
            "no request fails"
        );
    }
    answers(r.http, "unknown.example.com", 404, "").await;
    let (status, _) = get(r.http, "localhost").await;
    assert_eq!(status, 404);
}
