//! The accept loops of the HTTP and HTTPS listeners: HTTP/1.1 with keep-alive on the fast path
//! (`fast.rs`), and through hyper upgrades, HTTP/2 (by ALPN over TLS, or prior knowledge in
//! clear text, h2c) and whatever else the fast path hands over. On shutdown the listener
//! closes, idle connections are closed and requests in flight get the drain period to finish;
//! so do the rest of each worker's tasks (upgraded connections, health probes), which all
//! belong to the worker's `TaskTracker`.
//!
//! Like nginx's worker processes, each worker thread runs its connections, and its own pool of
//! backend connections, on a single-threaded runtime: a request never hops between threads,
//! which made the proxy half again as fast on this 2-core machine (see docs/benchmarks.md).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::fast;
use crate::proxy::{Conn, Proxy, handle};

/// How long a client has to finish its TLS handshake or send a request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts a connection as a non-blocking socket the runtime does not know yet: the worker
/// that gets it registers it (tokio's `accept` would register it here only to take it out again).
fn accept(listener: &std::net::TcpListener) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    let (socket, peer) =
        socket2::SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| std::io::Error::other("a connection from a peer without an IP address"))?;
    Ok((socket.into(), peer))
}

/// How long connections may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// In-flight requests' time to finish after shutdown.
    pub(crate) drain: Duration,
    /// A client's time to send a request head, idle time before it included.
    pub(crate) idle: Duration,
}

/// Serves `listener` (with TLS when `tls` is set) on `workers` threads until `shutdown`, then
/// drains. `proxy` makes each worker's proxy. This task accepts and deals connections to the
/// workers in turn, so 1000 connections spread evenly over them.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: impl Fn() -> Arc<Proxy>,
    workers: usize,
    shutdown: CancellationToken,
    timing: Timing,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    // Watched by the runtime, accepted from without it (`accept`). `with_interest` is
    // deprecated because a type could hand it a descriptor it does not own; the listener owns
    // its own, the condition `register_with_interest` asks under `unsafe`, forbidden here.
    #[allow(deprecated)]
    let listener = AsyncFd::with_interest(listener.into_std()?, Interest::READABLE)?;
    tracing::info!(listen.addr = %local, tls = tls.is_some(), workers, "Listening");
    let mut queues = Vec::new();
    let mut done = Vec::new();
    for i in 0..workers.max(1) {
        let (queue, accepted) = tokio::sync::mpsc::unbounded_channel();
        let requeue = queue.downgrade();
        let (tls, proxy) = (tls.clone(), proxy());
        let (finished, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("router-{}-{i}", local.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let outcome = runtime.map(|runtime| {
                    runtime.block_on(worker(
                        (accepted, requeue),
                        tls,
                        proxy,
                        local.port(),
                        timing,
                    ));
                });
                let _ = finished.send(outcome);
            })?;
        queues.push(queue);
        done.push(result);
    }
    let mut next = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.async_io(Interest::READABLE, accept) => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others, and give
                    // them time to close some before trying again.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if queues[next % queues.len()].send((stream, peer)).is_err() {
            break;
        }
        next = next.wrapping_add(1);
    }
    drop(listener);
    // Closing the queues tells the workers to drain.
    drop(queues);
    let mut outcome = Ok(());
    for result in done {
        if let Ok(Err(e)) = result.await {
            outcome = Err(e);
        }
    }
    outcome
}

/// One worker: serves the connections dealt to it, each as a task of the worker's tracker, until
/// the queue closes; then drains them within `drain`.
async fn worker(
    (mut accepted, requeue): (
        tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
        fast::parked::Queue,
    ),
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    port: u16,
    timing: Timing,
) {
    let Timing { drain, idle } = timing;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .writev(false);
    builder.http2().timer(TokioTimer::new());
    // Shared: each connection keeps a pointer to it, not a copy (10,000 idle connections).
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let tasks = proxy.tasks.clone();
    tasks.spawn(fast::idle::sweep(idle, proxy.shutdown.clone()));
    if tls.is_none() {
        // Idle plain connections are parked, and come back through this worker's queue.
        let gauge = proxy.metrics.parked.clone();
        tasks.spawn(fast::parked::serve(requeue, gauge, proxy.shutdown.clone()));
    }
    while let Some((stream, peer)) = accepted.recv().await {
        let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            peer,
            tls: tls.is_some(),
            port,
        };
        let handler = proxy.clone();
        let service = service_fn(move |request| {
            let proxy = handler.clone();
            async move { Ok::<_, Infallible>(handle(proxy, conn, request).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let proxy = proxy.clone();
        // Plain and TLS connections are tasks of their own kinds, each as small as its own
        // future: an idle plain connection does not carry room for a TLS handshake.
        let Some(acceptor) = tls.clone() else {
            // hyper serves what the fast path hands over; what it needs waits in a box, out of
            // the way of the many connections that never need it.
            let parts = Box::new((builder, service, watcher, peer));
            let hyper = move |io| {
                let (builder, service, watcher, peer) = *parts;
                serve_io(builder, io, service, watcher, peer)
            };
            spawn_watched(&tasks, |watch| {
                fast::Connection::new(proxy, conn, stream, watch).serve(hyper)
            });
            continue;
        };
        spawn_watched(&tasks, |watch| async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                    serve_io(builder, stream, service, watcher, peer).await;
                }
                Ok(Ok(stream)) => {
                    let hyper = |io| serve_io(builder, io, service, watcher, peer);
                    let connection = fast::Connection::new(proxy, conn, stream, watch);
                    connection.serve(hyper).await;
                }
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
            }
        });
    }
    tasks.close();
    let drained = async {
        graceful.shutdown().await;
        tasks.wait().await;
    };
    if tokio::time::timeout(drain, drained).await.is_err() {
        tracing::warn!(
            drain.secs = drain.as_secs(),
            tasks = tasks.len(),
            "Connections still open after the drain period; closing them"
        );
    }
}

/// Spawns a connection's task with its entry in the worker's table of connections, which the
/// worker's sweeper uses to close those that wait too long for a request (`fast::idle`).
fn spawn_watched<F, Fut>(tasks: &tokio_util::task::TaskTracker, task: F)
where
    F: FnOnce(fast::idle::Watch) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let watch = fast::idle::Watch::new();
    let key = watch.key();
    let spawned = tasks.spawn(task(watch));
    // The worker is single-threaded: the task has not run yet.
    fast::idle::Watch::attach(key, spawned.abort_handle());
}

/// Serves one connection (after its TLS handshake, if any) until it ends or the drain closes it.
async fn serve_io<I, S>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    io: I,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<axum::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(peer = %peer, error = %e, "Connection ended with an error");
    }
}
