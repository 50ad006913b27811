//! Client connections waiting for a request: idle keep-alive connections are parked and still
//! answer their next request; they and heads that never end are closed after the idle timeout,
//! idle ones at once when the router shuts down, while a request in flight is answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::fixture::{Fixture, answers, raw, router_with, upstream};
use crate::wire::{Backend, Conn, read_head};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: idle.example.com\r\n\r\n";

/// A backend that answers each request once `go` is notified (`notify_one` per request), and
/// counts the requests it got.
async fn held_backend(go: Arc<Notify>) -> (Backend, Arc<AtomicUsize>) {
    let heads = Arc::new(AtomicUsize::new(0));
    let counted = heads.clone();
    let backend = Backend::start(move |mut stream| {
        let (go, heads) = (go.clone(), counted.clone());
        async move {
            let mut buf = Vec::new();
            while read_head(&mut stream, &mut buf).await.is_some() {
                heads.fetch_add(1, Ordering::SeqCst);
                go.notified().await;
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (backend, heads)
}

/// A router with this idle timeout serving the app `idle` on a [`held_backend`]; the backend's
/// `go` and count of requests.
async fn held_router(idle_timeout: Duration) -> (Fixture, Arc<Notify>, Arc<AtomicUsize>) {
    let go = Arc::new(Notify::new());
    let (backend, heads) = held_backend(go.clone()).await;
    let r = router_with(|c| c.idle_timeout = idle_timeout).await;
    r.app("idle", &[backend.addr]).await;
    go.notify_one();
    answers(r.http, "idle.example.com", 200, "ok").await;
    (r, go, heads)
}

/// Sends a request on `conn` and lets the held backend answer it: 200.
async fn answered(conn: &mut Conn, go: &Notify) {
    conn.send(GET).await;
    go.notify_one();
    assert_eq!(conn.response().await.map(|w| w.status), Some(200));
}

/// The router's gauge of parked connections.
async fn parked(r: &Fixture) -> Option<u64> {
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (_, text) = raw(r.admin, request).await;
    text.lines()
        .find_map(|l| l.strip_prefix("deis_router_parked_connections "))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until `count` connections are parked.
async fn parked_are(r: &Fixture, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = parked(r).await;
        if now == Some(count) {
            return;
        }
        assert!(Instant::now() < deadline, "{now:?} parked, not {count}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_are_parked_answer_again_and_expire() {
    let r = router_with(|c| c.idle_timeout = Duration::from_secs(5)).await;
    r.app("idle", &[upstream("a").await]).await;
    answers(r.http, "idle.example.com", 200, "a").await;
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut conn = Conn::open(r.http).await;
        conn.send(GET).await;
        assert_eq!(conn.response().await.map(|w| w.status), Some(200));
        conns.push(conn);
    }
    // Idle for a second: parked, every one of them.
    parked_are(&r, 20).await;
    // Each answers its next request on the same connection, then is parked again.
    for conn in &mut conns {
        conn.send(GET).await;
        let answer = conn.response().await.expect("a parked connection answers");
        assert_eq!(
            (answer.status, answer.text().starts_with("a ")),
            (200, true)
        );
    }
    parked_are(&r, 20).await;
    // A client closing a parked connection: gone from the set.
    drop(conns.pop());
    parked_are(&r, 19).await;
    // Past the idle timeout, closed by the router.
    for conn in &mut conns {
        assert!(conn.closed().await, "a parked connection expires");
    }
    parked_are(&r, 0).await;
}

#[tokio::test]
async fn idle_connections_and_endless_heads_are_closed_after_the_idle_timeout() {
    let (r, go, _) = held_router(Duration::from_secs(1)).await;

    // Kept alive after its answer, then left idle: closed by the router.
    let mut idle = Conn::open(r.http).await;
    answered(&mut idle, &go).await;
    let waited = Instant::now();
    assert!(idle.closed().await, "an idle connection is closed");
    assert!(
        waited.elapsed() >= Duration::from_millis(900),
        "not before its time"
    );

    // A head that trickles in a byte at a time never ends: cut after the timeout counted from
    // its first byte, however often bytes come.
    let mut slow = Conn::open(r.http).await;
    let started = Instant::now();
    let mut cut = false;
    for byte in GET.iter().cycle().take(200) {
        if slow.stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    assert!(cut || slow.closed().await, "a head that never ends is cut");

    // A request that takes longer than the idle timeout is answered.
    let mut busy = Conn::open(r.http).await;
    busy.send(GET).await;
    // Twice the timeout (and two sweeps) pass while the backend holds the answer.
    tokio::time::sleep(Duration::from_secs(2)).await;
    go.notify_one();
    assert_eq!(busy.response().await.map(|w| w.status), Some(200));
}

#[tokio::test]
async fn at_shutdown_idle_connections_close_and_a_request_in_flight_is_answered() {
    let (r, go, heads) = held_router(Duration::from_secs(600)).await;

    // One idle connection parked, one idle but not yet.
    let mut parked_one = Conn::open(r.http).await;
    answered(&mut parked_one, &go).await;
    parked_are(&r, 1).await;
    let mut idle = Conn::open(r.http).await;
    answered(&mut idle, &go).await;
    let mut busy = Conn::open(r.http).await;
    busy.send(GET).await;
    // The request is at the backend (held there) before the router shuts down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while heads.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "the request reached the backend");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    r.shutdown.cancel();
    assert!(idle.closed().await, "an idle connection closes at shutdown");
    assert!(parked_one.closed().await, "so does a parked one");
    go.notify_one();
    let answer = busy
        .response()
        .await
        .expect("the request in flight is answered");
    assert_eq!((answer.status, answer.text().as_str()), (200, "ok"));
    assert!(busy.closed().await, "and its connection closed after it");
}
