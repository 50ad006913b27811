//! Upgraded connections (WebSocket): the handshake is forwarded on a connection of its own to
//! one backend and, once the backend answers `101 Switching Protocols`, bytes are copied both
//! ways until either side closes or the router shuts down.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, Response, StatusCode, Uri, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::{CONNECT_TIMEOUT, Proxy, text};

/// Whether the client asks to switch protocols (HTTP/1.1 `Connection: upgrade` + `Upgrade`).
pub(crate) fn requested(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Forwards an upgrade request to `backend` and, on `101`, joins the two connections.
pub(crate) async fn forward(
    proxy: &Proxy,
    backend: &str,
    parts: Parts,
    path: String,
    body: Body,
    client: OnUpgrade,
    timeout: std::time::Duration,
) -> Response<Body> {
    match exchange(backend, parts, path, body, timeout).await {
        Ok(mut response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let server = hyper::upgrade::on(&mut response);
            let metrics = proxy.metrics.clone();
            let shutdown = proxy.shutdown.clone();
            tokio::spawn(async move {
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
            });
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!(backend, error = %e, "Upgrade request to the backend failed");
            if e.connect {
                proxy.health.mark_down(backend);
            }
            text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ExchangeError {
    message: String,
    connect: bool,
}

async fn exchange(
    backend: &str,
    parts: Parts,
    path: String,
    body: Body,
    timeout: std::time::Duration,
) -> Result<Response<hyper::body::Incoming>, ExchangeError> {
    let failed = |connect: bool| {
        move |e: &dyn std::fmt::Display| ExchangeError {
            message: e.to_string(),
            connect,
        }
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend))
        .await
        .map_err(|e| failed(true)(&e))?
        .map_err(|e| failed(true)(&e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(false)(&e))?;
    tokio::spawn(connection.with_upgrades());
    let mut request = Request::from_parts(parts, body);
    *request.uri_mut() = path.parse::<Uri>().map_err(|e| failed(false)(&e))?;
    tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|e| failed(false)(&e))?
        .map_err(|e| failed(false)(&e))
}
