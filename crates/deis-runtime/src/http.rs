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
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => " (another process uses this port; choose another)",
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port)"
            }
            _ => "",
        };
        BindError { addr, source, hint }
    })
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
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
            tracing::warn!(listen.addr = %addr, drain.secs = drain.as_secs(), "Connections still open after the drain period; closing them");
            Ok(())
        }
    }
}
