//! Upgraded connections (WebSocket): the handshake is forwarded on a connection of its own to
//! one backend and, once the backend answers `101 Switching Protocols`, bytes are copied both
//! ways until either side closes or the router shuts down. The tasks that do so are tracked
//! by the worker's [`TaskTracker`](tokio_util::task::TaskTracker), which drains them.

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::proxy::{Answer, Proxy, connection_tokens};
use crate::settings::Timeouts;

/// Whether the client asks to switch protocols (HTTP/1.1 `Connection: upgrade` + `Upgrade`).
pub(crate) fn requested(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|token| token.eq_ignore_ascii_case("upgrade"))
}

/// Puts back the client's `Upgrade` header (and `Connection: upgrade`) that hop-by-hop
/// stripping took out.
pub(crate) fn restore_headers(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(header::UPGRADE, upgrade);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Forwards an upgrade request to `backend` and, on `101`, joins the two connections.
pub(crate) async fn forward(
    proxy: &Proxy,
    backend: &str,
    parts: Parts,
    path: String,
    body: Body,
    client: OnUpgrade,
    timeouts: Timeouts,
) -> Response<Body> {
    match exchange(proxy, backend, parts, path, body, timeouts).await {
        Ok(mut response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let server = hyper::upgrade::on(&mut response);
            let metrics = proxy.metrics.clone();
            let shutdown = proxy.shutdown.clone();
            let join = async move {
                let (Ok(client), Ok(server)) = tokio::join!(client, server) else {
                    return;
                };
                metrics.upgraded_open.inc();
                let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = shutdown.cancelled() => {}
                }
                metrics.upgraded_open.dec();
            };
            proxy.tasks.spawn(join.in_current_span());
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!(backend, error = %e, "Upgrade request to the backend failed");
            if e.is_connect() {
                proxy.health.mark_down(backend, &proxy.tasks);
            }
            Answer::BadGateway.response()
        }
    }
}

/// Why an upgrade request got no response from the backend.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("connecting failed")]
    Connect(#[source] std::io::Error),
    #[error("no connection within {0:?}")]
    ConnectTimedOut(Duration),
    #[error("the HTTP/1.1 handshake failed")]
    Handshake(#[source] hyper::Error),
    #[error("the path is not a URI")]
    Path(#[source] axum::http::uri::InvalidUri),
    #[error("no response within {0:?}")]
    TimedOut(Duration),
    #[error("sending the request failed")]
    Send(#[source] hyper::Error),
}

impl ExchangeError {
    /// Whether the backend was never reached (it goes out of rotation).
    fn is_connect(&self) -> bool {
        matches!(
            self,
            ExchangeError::Connect(_) | ExchangeError::ConnectTimedOut(_)
        )
    }
}

/// Sends the upgrade request on a new connection, connecting within `timeouts.connect` and
/// answered within `timeouts.read`.
async fn exchange(
    proxy: &Proxy,
    backend: &str,
    parts: Parts,
    path: String,
    body: Body,
    timeouts: Timeouts,
) -> Result<Response<hyper::body::Incoming>, ExchangeError> {
    let stream = tokio::time::timeout(timeouts.connect, TcpStream::connect(backend))
        .await
        .map_err(|_| ExchangeError::ConnectTimedOut(timeouts.connect))?
        .map_err(ExchangeError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ExchangeError::Handshake)?;
    proxy
        .tasks
        .spawn(connection.with_upgrades().in_current_span());
    let mut request = Request::from_parts(parts, body);
    *request.uri_mut() = path.parse::<Uri>().map_err(ExchangeError::Path)?;
    tokio::time::timeout(timeouts.read, sender.send_request(request))
        .await
        .map_err(|_| ExchangeError::TimedOut(timeouts.read))?
        .map_err(ExchangeError::Send)
}
