//! Listening and serving HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A listener that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{hint}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the operating system said.
    #[source]
    pub source: std::io::Error,
    hint: &'static str,
}

/// Binds a TCP listener, with an error that says what to change.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| bind_error(addr, source))
}

/// Binds a TCP listener that other processes may bind too (`SO_REUSEPORT`): the kernel spreads
/// connections over them, so several routers on one host share its ports.
pub fn bind_shared(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })
        .map_err(|source| bind_error(addr, source))
}

/// Binds a UDP socket, with an error that says what to change.
pub async fn bind_udp(addr: SocketAddr) -> Result<tokio::net::UdpSocket, BindError> {
    tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|source| bind_error(addr, source))
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> BindError {
    let hint = match source.kind() {
        std::io::ErrorKind::AddrInUse => " (another process uses this port; choose another)",
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port)"
        }
        _ => "",
    };
    BindError { addr, source, hint }
}

/// `GET|HEAD /healthz` answering 200 `OK`, to merge into a component's router.
pub fn health_router() -> Router {
    Router::new().route("/healthz", get(|| async { "OK" }))
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish for at
/// most `drain` before returning.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    // Handlers may ask for the client's address (`ConnectInfo<SocketAddr>`).
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server =
        axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(drain, &mut server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(listen.addr = %addr, drain.secs = drain.as_secs(), "Connections still open after the drain period; closing them");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, mpsc};

    use super::*;

    /// A server whose `/slow` handler reports that it started, then waits for `release`.
    async fn slow_server(
        drain: Duration,
    ) -> (
        SocketAddr,
        CancellationToken,
        mpsc::Receiver<()>,
        Arc<Notify>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let (started_tx, started_rx) = mpsc::channel(1);
        let release = Arc::new(Notify::new());
        let gate = release.clone();
        let router = health_router().route(
            "/slow",
            get(move || {
                let (started, gate) = (started_tx.clone(), gate.clone());
                async move {
                    let _ = started.send(()).await;
                    gate.notified().await;
                    "done"
                }
            }),
        );
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_http(listener, router, shutdown.clone(), drain));
        (addr, shutdown, started_rx, release, server)
    }

    async fn send_slow(addr: SocketAddr) -> tokio::net::TcpStream {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        stream
    }

    #[tokio::test]
    async fn a_request_in_flight_at_shutdown_still_gets_its_answer() {
        let (addr, shutdown, mut started, release, server) =
            slow_server(Duration::from_secs(30)).await;
        let mut stream = send_slow(addr).await;
        started.recv().await.expect("the handler started");
        shutdown.cancel();
        // New connections are refused once draining began.
        wait_until_refused(addr).await;
        assert!(
            !server.is_finished(),
            "the server waits for the request in flight"
        );
        release.notify_one();
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read the answer");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("done"), "{response}");
        server
            .await
            .expect("server task")
            .expect("a clean stop after the drain");
    }

    #[tokio::test]
    async fn a_request_that_never_ends_is_cut_at_the_drain_deadline() {
        let (addr, shutdown, mut started, _release, server) =
            slow_server(Duration::from_millis(200)).await;
        let _stream = send_slow(addr).await;
        started.recv().await.expect("the handler started");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve_http returns once the drain period is over")
            .expect("server task")
            .expect("the cut is not an error");
    }

    async fn wait_until_refused(addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still accepting connections"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_taken_port_says_so() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("address");
        let err = bind(addr).await.expect_err("the port is taken");
        assert!(
            err.to_string().contains("another process uses this port"),
            "{err}"
        );
    }
}
