//! The accept loops of the HTTP and HTTPS listeners: HTTP/1.1 with keep-alive and upgrades, and
//! HTTP/2 (by ALPN over TLS, or prior knowledge in clear text, h2c). On shutdown the listener
//! closes, idle connections are closed and requests in flight get the drain period to finish.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::proxy::{Conn, Proxy, handle};

/// How long a client has to finish its TLS handshake or send a request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` (with TLS when `tls` is set) until `shutdown`, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(listen.addr = %local, tls = tls.is_some(), "Listening");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            peer,
            tls: tls.is_some(),
            port: local.port(),
        };
        let proxy = proxy.clone();
        let service = service_fn(move |request| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(handle(proxy, conn, request).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_io(builder, stream, service, watcher, peer).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_io(builder, stream, service, watcher, peer).await,
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listen.addr = %local, drain.secs = drain.as_secs(), "Connections still open after the drain period; closing them");
    }
    Ok(())
}

async fn serve_io<I, S>(
    builder: auto::Builder<TokioExecutor>,
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
