//! The fast path for plain HTTP/1.1: keep-alive both ways, pipelining, bodies of every framing,
//! backends that close or answer early, the refusals that keep request smuggling out, the Deis
//! settings, and what is handed to hyper (HTTP/1.0, upgrades after a plain request).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::{Fixture, answers, raw, router, upstream};
use crate::wire::{Backend, Conn, read_head};

/// A keep-alive backend that answers every request with its path, after reading a
/// `Content-Length` body if any; it records the heads it got.
async fn path_echo() -> (Backend, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let backend = Backend::start(move |mut stream| {
        let heads = seen.clone();
        async move {
            let mut buf = Vec::new();
            while let Some(head) = read_head(&mut stream, &mut buf).await {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < length {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..length);
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                heads.lock().expect("heads").push(head);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                    path.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (backend, heads)
}

/// A router with the app `app` on `backend`, serving it.
async fn serving(app: &str, backend: std::net::SocketAddr) -> Fixture {
    let r = router().await;
    r.app(app, &[backend]).await;
    answers(r.http, &format!("{app}.example.com"), 200, "").await;
    r
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

#[tokio::test]
async fn keep_alive_connections_are_reused_both_ways_and_heads_rewritten() {
    let (backend, heads) = path_echo().await;
    let r = serving("ka", backend.addr).await;
    let before = backend.connections();
    let mut client = Conn::open(r.http).await;
    for i in 0..10 {
        let request = format!(
            "GET /{i}?q=1 HTTP/1.1\r\nHost: ka.example.com\r\nConnection: keep-alive, X-Hop\r\n\
             X-Hop: secret\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: given-{i}\r\n\r\n"
        );
        client.send(request.as_bytes()).await;
        let response = client.response().await.expect("a response");
        assert_eq!(
            (response.status, response.text()),
            (200, format!("/{i}?q=1"))
        );
    }
    assert!(
        backend.connections() - before <= 1,
        "one backend connection for ten requests: {}",
        backend.connections() - before
    );
    let heads = heads.lock().expect("heads").clone();
    let last = heads.last().expect("a head").to_ascii_lowercase();
    for expect in [
        "get /9?q=1 http/1.1\r\n",
        "x-forwarded-for: 127.0.0.1\r\n",
        "x-forwarded-proto: http\r\n",
        &format!("x-forwarded-port: {}\r\n", r.http.port()),
        "x-forwarded-ssl: off\r\n",
        "x-request-id: given-9\r\n",
    ] {
        assert!(last.contains(expect), "{expect:?} in {last}");
    }
    assert!(
        !last.contains("x-hop") && !last.contains("connection"),
        "{last}"
    );
    assert!(
        !last.contains("6.6.6.6"),
        "an untrusted client's X-Forwarded-For is replaced"
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (backend, _) = path_echo().await;
    let r = serving("pipe", backend.addr).await;
    let mut client = Conn::open(r.http).await;
    let host = "pipe.example.com";
    let burst = format!("{}{}{}", get("/1", host), get("/2", host), get("/3", host));
    client.send(burst.as_bytes()).await;
    for path in ["/1", "/2", "/3"] {
        let response = client.response().await.expect("a response");
        assert_eq!((response.status, response.text().as_str()), (200, path));
    }
}

#[tokio::test]
async fn chunked_bodies_pass_both_ways() {
    let r = serving("up", upstream("up").await).await;
    let mut client = Conn::open(r.http).await;
    client
        .send(
            b"POST /upload HTTP/1.1\r\nHost: up.example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
    for part in [
        "5\r\nhello\r\n",
        "6;ext=1\r\n world\r\n",
        "0\r\nX-Trailer: t\r\n\r\n",
    ] {
        client.send(part.as_bytes()).await;
    }
    let response = client.response().await.expect("a response");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "11 bytes")
    );

    let chunks = Backend::start(|mut stream| async move {
        let mut buf = Vec::new();
        while read_head(&mut stream, &mut buf).await.is_some() {
            let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n";
            let _ = stream.write_all(response.as_bytes()).await;
        }
    })
    .await;
    r.app("chunks", &[chunks.addr]).await;
    answers(r.http, "chunks.example.com", 200, "abc").await;
    let mut client = Conn::open(r.http).await;
    for _ in 0..2 {
        client.send(get("/", "chunks.example.com").as_bytes()).await;
        let response = client.response().await.expect("a response");
        assert_eq!(response.field("transfer-encoding"), Some("chunked"));
        assert_eq!(response.text(), "abcdefg");
    }
}

#[tokio::test]
async fn a_large_body_streams_both_ways() {
    const SIZE: usize = 8 << 20;
    let r = serving("up", upstream("up").await).await;
    r.put("/deis/router/bodySize", "0").await;
    let mut client = Conn::open(r.http).await;
    let head =
        format!("POST /upload HTTP/1.1\r\nHost: up.example.com\r\nContent-Length: {SIZE}\r\n\r\n");
    deis_testkit::eventually(Duration::from_secs(10), "an unlimited body size", || async {
        let (status, _) = raw(r.http, &format!("POST /upload HTTP/1.1\r\nHost: up.example.com\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", 2 << 20, "x".repeat(2 << 20))).await;
        if status == 200 { Ok(()) } else { Err(status.to_string()) }
    })
    .await;
    client.send(head.as_bytes()).await;
    let block = vec![b'x'; 64 << 10];
    for _ in 0..SIZE / block.len() {
        client.send(&block).await;
    }
    let response = client.response().await.expect("a response");
    assert_eq!(
        (response.status, response.text()),
        (200, format!("{SIZE} bytes"))
    );

    let big = Backend::start(|mut stream| async move {
        let mut buf = Vec::new();
        while read_head(&mut stream, &mut buf).await.is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'y'; 64 << 10];
            for _ in 0..SIZE / block.len() {
                if stream.write_all(&block).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    r.app("big", &[big.addr]).await;
    answers(r.http, "big.example.com", 200, "yyy").await;
    client.send(get("/", "big.example.com").as_bytes()).await;
    let response = client.response().await.expect("a response");
    assert_eq!(response.body.len(), SIZE);
    assert!(response.body.iter().all(|&b| b == b'y'));
}

#[tokio::test]
async fn backends_that_close_their_connections() {
    let closing = Backend::start(|mut stream| async move {
        let mut buf = Vec::new();
        if read_head(&mut stream, &mut buf).await.is_some() {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")
                .await;
        }
    })
    .await;
    let r = serving("closing", closing.addr).await;
    let before = closing.connections();
    let mut client = Conn::open(r.http).await;
    for _ in 0..3 {
        client
            .send(get("/", "closing.example.com").as_bytes())
            .await;
        let response = client.response().await.expect("a response");
        assert_eq!((response.status, response.text().as_str()), (200, "bye"));
        assert_eq!(
            response.field("connection"),
            None,
            "the client's connection stays open"
        );
    }
    assert_eq!(
        closing.connections() - before,
        3,
        "a new backend connection each time"
    );

    // A body that ends when the backend closes: the client's connection ends with it.
    let unframed = Backend::start(|mut stream| async move {
        let mut buf = Vec::new();
        if read_head(&mut stream, &mut buf).await.is_some() {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
                .await;
        }
    })
    .await;
    r.app("unframed", &[unframed.addr]).await;
    answers(r.http, "unframed.example.com", 200, "until the end").await;
    let mut client = Conn::open(r.http).await;
    client
        .send(get("/", "unframed.example.com").as_bytes())
        .await;
    let response = client.response().await.expect("a response");
    assert_eq!(response.field("connection"), Some("close"));
    assert_eq!(response.text(), "until the end");
}

#[tokio::test]
async fn an_answer_before_the_body_is_read_is_passed_on() {
    // Requests without a body get 200; one with a body gets 403 at once, without its body read.
    let early = Backend::start(|mut stream| async move {
        let mut buf = Vec::new();
        while let Some(head) = read_head(&mut stream, &mut buf).await {
            if !head.to_ascii_lowercase().contains("content-length") {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
                .await;
            // Then it reads on, as servers that linger do, until the router gives up.
            let mut sink = [0u8; 65536];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
    })
    .await;
    let r = serving("early", early.addr).await;
    r.put("/deis/router/bodySize", "0").await;
    deis_testkit::eventually(Duration::from_secs(10), "an unlimited body size", || async {
        let request = format!(
            "PUT / HTTP/1.1\r\nHost: early.example.com\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
            2 << 20,
            "x".repeat(2 << 20)
        );
        match raw(r.http, &request).await {
            (403, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut client = Conn::open(r.http).await;
    let (mut reader, mut writer) = client.stream.split();
    let head =
        "PUT /upload HTTP/1.1\r\nHost: early.example.com\r\nContent-Length: 67108864\r\n\r\n";
    let send = async {
        let _ = writer.write_all(head.as_bytes()).await;
        let block = vec![b'x'; 64 << 10];
        for _ in 0..1024 {
            if writer.write_all(&block).await.is_err() {
                break;
            }
        }
    };
    let receive = async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !got.ends_with(b"no") {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let answered = tokio::select! {
        got = receive => got,
        () = async { send.await; std::future::pending::<()>().await } => unreachable!(),
    };
    assert!(answered.starts_with("HTTP/1.1 403"), "{answered}");
    assert!(
        answered.to_ascii_lowercase().contains("connection: close"),
        "{answered}"
    );
}

#[tokio::test]
async fn ambiguous_or_oversized_requests_are_refused_and_never_reach_a_backend() {
    let (backend, heads) = path_echo().await;
    let r = serving("smuggle", backend.addr).await;
    let seen = heads.lock().expect("heads").len();
    let host = "Host: smuggle.example.com\r\n";
    let big = "a".repeat(70 * 1024);
    for (request, expect) in [
        (
            format!(
                "POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            format!(
                "POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            format!(
                "POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
            ),
            400,
        ),
        (
            format!("POST / HTTP/1.1\r\n{host}Content-Length: 5, 6\r\n\r\nhello!"),
            400,
        ),
        (
            format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            400,
        ),
        (
            format!("GET / HTTP/1.1\r\n{host}X-Folded: a\r\n b\r\n\r\n"),
            400,
        ),
        (format!("GET / HTTP/1.1\r\n{host}Bad Name: a\r\n\r\n"), 400),
        (
            format!("GET / HTTP/1.1\r\n{host}Content-Length : 0\r\n\r\n"),
            400,
        ),
        (format!("GET / HTTP/1.1\r\n{host}{host}\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{host}X-Big: {big}\r\n\r\n"), 431),
    ] {
        let (status, text) = raw(r.http, &request).await;
        assert_eq!(status, expect, "{request:.120?} got {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    assert_eq!(
        heads.lock().expect("heads").len(),
        seen,
        "no backend saw any of them"
    );
    // A malformed chunk is found once the head has gone: the backend's connection is closed
    // on a request it cannot take for whole, and the client gets 400.
    let request = format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n");
    let (status, text) = raw(r.http, &request).await;
    assert_eq!(status, 400, "{text}");
}

#[tokio::test]
async fn deis_settings_apply_on_kept_alive_connections() {
    let r = serving("up", upstream("up").await).await;
    r.app("private", &[upstream("private").await]).await;
    r.put("/deis/config/private/deis_whitelist", "192.0.2.0/24")
        .await;
    answers(r.http, "private.example.com", 403, "").await;
    r.put("/deis/router/bodySize", "1k").await;
    deis_testkit::eventually(Duration::from_secs(10), "bodySize 1k", || async {
        let request = format!("POST /upload HTTP/1.1\r\nHost: up.example.com\r\nConnection: close\r\nContent-Length: 2048\r\n\r\n{}", "x".repeat(2048));
        match raw(r.http, &request).await {
            (413, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut client = Conn::open(r.http).await;
    // Refused without a body: the connection goes on.
    client
        .send(get("/", "private.example.com").as_bytes())
        .await;
    assert_eq!(client.response().await.expect("a response").status, 403);
    client
        .send(get("/", "nowhere.example.com").as_bytes())
        .await;
    assert_eq!(client.response().await.expect("a response").status, 404);
    client.send(get("/", "up.example.com").as_bytes()).await;
    let response = client.response().await.expect("a response");
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("up 127.0.0.1 http true"),
        "{}",
        response.text()
    );
    // A chunked body past bodySize: 413, then the connection closes.
    client
        .send(b"POST /upload HTTP/1.1\r\nHost: up.example.com\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n")
        .await;
    client.send(&[b'x'; 2048]).await;
    client.send(b"\r\n0\r\n\r\n").await;
    let response = client.response().await.expect("a response");
    assert_eq!(response.status, 413);
    assert!(client.closed().await);

    r.put("/deis/router/enforceHTTPS", "true").await;
    answers(r.http, "up.example.com", 301, "").await;
    let mut client = Conn::open(r.http).await;
    client
        .send(get("/a?b=c", "up.example.com").as_bytes())
        .await;
    let response = client.response().await.expect("a response");
    assert_eq!(response.status, 301);
    assert_eq!(
        response.field("location"),
        Some("https://up.example.com/a?b=c")
    );
}

#[tokio::test]
async fn hyper_takes_over_for_http_1_0_and_upgrades() {
    let r = serving("up", upstream("up").await).await;
    let (status, text) = raw(r.http, "GET / HTTP/1.0\r\nHost: up.example.com\r\n\r\n").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("up 127.0.0.1 http true"), "{text}");

    // A WebSocket after a plain request on the same connection.
    async fn echo(mut socket: axum::extract::ws::WebSocket) {
        while let Some(Ok(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                return;
            }
        }
    }
    let app = axum::Router::new()
        .route(
            "/socket",
            axum::routing::get(|ws: axum::extract::ws::WebSocketUpgrade| async move {
                ws.on_upgrade(echo)
            }),
        )
        .fallback(|| async { "plain" });
    let backend = crate::fixture::serve(app).await;
    r.app("ws", &[backend]).await;
    answers(r.http, "ws.example.com", 200, "plain").await;
    let mut stream = TcpStream::connect(r.http).await.expect("connect");
    stream
        .write_all(get("/", "ws.example.com").as_bytes())
        .await
        .expect("send");
    let mut got = Vec::new();
    while !got.ends_with(b"plain") {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "an answer");
        got.extend_from_slice(&chunk[..n]);
    }
    let (mut socket, response) =
        tokio_tungstenite::client_async("ws://ws.example.com/socket", stream)
            .await
            .expect("the handshake on the same connection");
    assert_eq!(response.status(), 101);
    socket
        .send(tokio_tungstenite::tungstenite::Message::text("hi"))
        .await
        .expect("send");
    let reply = socket.next().await.expect("a reply").expect("a message");
    assert_eq!(reply.into_text().expect("text").as_str(), "hi");
}
