//! The reverse proxy: picks the backends for a request's host from the current table, spreads
//! requests over them, and forwards with `X-Forwarded-*` and `X-Request-Id`. A backend that
//! refuses the connection is skipped at once and, when the request has no body (so nothing was
//! sent), the next backend is tried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::table::{Decision, Table};

/// What the proxy handler shares.
#[derive(Clone)]
pub(crate) struct Proxy {
    tables: watch::Receiver<Arc<Table>>,
    client: Client<HttpConnector, Body>,
    next: Arc<AtomicUsize>,
    /// The port clients reached us on (for `X-Forwarded-Port`).
    port: u16,
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    pub(crate) fn new(tables: watch::Receiver<Arc<Table>>, port: u16) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
        Proxy {
            tables,
            client: Client::builder(TokioExecutor::new()).build(connector),
            next: Arc::new(AtomicUsize::new(0)),
            port,
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The request's host, lower-case, without port.
fn host_of(request: &Request) -> String {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match raw.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        },
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn request_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Handles one request.
pub(crate) async fn handle(
    State(proxy): State<Proxy>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let table = proxy.tables.borrow().clone();
    let host = host_of(&request);
    let backends = match table.route(&host) {
        Decision::Unknown if request.uri().path() == "/health-check" => {
            return StatusCode::OK.into_response();
        }
        Decision::Unknown => return text(StatusCode::NOT_FOUND, "404 Not Found\n"),
        Decision::Backends { backends: [], .. } => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n");
        }
        Decision::Backends { backends, .. } => backends.to_vec(),
    };
    let (mut parts, body) = request.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(
        &mut parts.headers,
        "x-forwarded-for",
        client.ip().to_string(),
    );
    set(&mut parts.headers, "x-forwarded-proto", "http".into());
    set(
        &mut parts.headers,
        "x-forwarded-port",
        proxy.port.to_string(),
    );
    if !parts.headers.contains_key("x-request-id") {
        set(&mut parts.headers, "x-request-id", request_id());
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let empty_body = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .is_none_or(|l| l == "0")
        && !parts.headers.contains_key(header::TRANSFER_ENCODING);
    let start = proxy.next.fetch_add(1, Ordering::Relaxed);
    let mut body = Some(body);
    for attempt in 0..backends.len() {
        let backend = &backends[(start + attempt) % backends.len()];
        let Ok(uri) = format!("http://{backend}{path}").parse::<Uri>() else {
            continue;
        };
        let mut upstream = axum::http::Request::from_parts(parts.clone(), Body::empty());
        *upstream.uri_mut() = uri;
        *upstream.body_mut() = match (empty_body, body.take()) {
            (true, _) => Body::empty(),
            (false, Some(b)) => b,
            (false, None) => break,
        };
        match proxy.client.request(upstream).await {
            Ok(response) => {
                let (mut parts, incoming) = response.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                return Response::from_parts(parts, Body::new(incoming));
            }
            Err(e) if e.is_connect() && empty_body => {
                tracing::debug!(backend = %backend, error = %e, "Backend refused; trying the next");
                continue;
            }
            Err(e) => {
                tracing::warn!(backend = %backend, error = %e, "Backend failed");
                return text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n");
            }
        }
    }
    text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
}
