//! A backend that never accepts the connection: the router gives up after the configured
//! connect timeout (`controller/timeout/connect`), for requests and WebSocket upgrades alike,
//! and answers 502 long before its default of 10 s would.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::fixture::{raw, router};
use deis_testkit::eventually;

/// The listen backlog of the address that never answers.
const BACKLOG: u32 = 1;

/// A loopback address whose listen queue is full and never accepted from: the kernel drops
/// further SYNs, so connecting to it neither succeeds nor fails until the caller gives up.
struct Unanswered {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

async fn unanswered() -> Unanswered {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let listener = socket.listen(BACKLOG).expect("listen");
    let addr = listener.local_addr().expect("addr");
    // Linux queues backlog + 1 connections; each connect here finds the queue not yet full.
    let mut queued = Vec::new();
    for _ in 0..=BACKLOG {
        queued.push(TcpStream::connect(addr).await.expect("a queued connection"));
    }
    eventually(
        Duration::from_secs(10),
        "the listen queue to fill",
        || async {
            match queued_on(addr)? {
                n if n > BACKLOG => Ok(()),
                n => Err(format!("{n} queued")),
            }
        },
    )
    .await;
    Unanswered {
        addr,
        _listener: listener,
        _queued: queued,
    }
}

/// How many connections wait to be accepted by the listener on `addr` (IPv4 loopback): the
/// `rx_queue` of its `LISTEN` line in `/proc/net/tcp`.
fn queued_on(addr: SocketAddr) -> Result<u32, String> {
    let table = std::fs::read_to_string("/proc/net/tcp").map_err(|e| e.to_string())?;
    let local = format!("0100007F:{:04X}", addr.port());
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
            let (_, rx) = fields.get(4)?.split_once(':')?;
            listening
                .then(|| u32::from_str_radix(rx, 16).ok())
                .flatten()
        })
        .next()
        .ok_or_else(|| format!("no listening socket {local} in /proc/net/tcp"))
}

/// How long the router may take to answer: half its default connect timeout (10 s).
const DEADLINE: Duration = Duration::from_secs(5);

/// Sends `request` until the router answers 502, every attempt within [`DEADLINE`].
async fn bad_gateway_in_time(router: SocketAddr, request: &str) {
    let polled = eventually(DEADLINE, "the router's 502", || async {
        match raw(router, request).await {
            (502, text) if text.contains("502 Bad Gateway") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    if tokio::time::timeout(DEADLINE, polled).await.is_err() {
        panic!("no 502 within {DEADLINE:?}: the configured connect timeout was not applied");
    }
}

#[tokio::test]
async fn the_configured_connect_timeout_bounds_the_wait_for_a_backend() {
    let r = router().await;
    let backend = unanswered().await;
    // The setting goes in first, so every table that has the controller's address has it too.
    r.put("/deis/router/controller/timeout/connect", "100ms")
        .await;
    r.put("/deis/controller/host", "127.0.0.1").await;
    r.put("/deis/controller/port", &backend.addr.port().to_string())
        .await;
    // 503 until the controller is in the table, then 502 once the connect gives up.
    let plain = "GET / HTTP/1.1\r\nHost: deis.example.com\r\nConnection: close\r\n\r\n";
    bad_gateway_in_time(r.http, plain).await;
    let upgrade = "GET /socket HTTP/1.1\r\nHost: deis.example.com\r\n\
        Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    bad_gateway_in_time(r.http, upgrade).await;
}
