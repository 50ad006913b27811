//! The reverse proxy: picks the target for a request's host from the current table, applies the
//! router settings (allow-lists, HTTPS enforcement, HSTS, body size, timeouts), spreads requests
//! over the target's backends and forwards with `X-Forwarded-*` and `X-Request-Id`. A backend that
//! refuses the connection is taken out of rotation ([`Health`]) and, when the request has no body
//! (so nothing was sent), the next backend is tried. Upgrades (WebSocket) go to [`upgrade`].

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::{Metrics, RequestCache};
use crate::settings::Settings;
use crate::table::{Decision, Table, Target};
use crate::upgrade;

/// How long to wait for a TCP connection to a backend.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request handler shares.
pub(crate) struct Proxy {
    pub(crate) tables: watch::Receiver<Arc<Table>>,
    client: Client<HttpConnector, Body>,
    next: AtomicUsize,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Arc<Metrics>,
    request_cache: RequestCache,
    pub(crate) shutdown: CancellationToken,
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// The port the client connected to (for `X-Forwarded-Port`).
    pub(crate) port: u16,
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
    /// A proxy with its own connection pool; `health` and `metrics` are shared by all.
    pub(crate) fn new(
        tables: watch::Receiver<Arc<Table>>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Arc::new(Proxy {
            tables,
            client: Client::builder(TokioExecutor::new())
                .http1_writev(false)
                .build(connector),
            next: AtomicUsize::new(0),
            health,
            metrics,
            request_cache: RequestCache::default(),
            shutdown,
        })
    }
}

/// Removes the hop-by-hop headers: the fixed ones and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
}

/// A plain-text answer of the router itself.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The request's host, lower-case, without port.
fn host_of(request: &Request<Incoming>) -> String {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    normalize_host(raw)
}

/// A `Host` header's host: lower-case, without port or trailing dot, brackets off IPv6.
pub(crate) fn normalize_host(raw: &str) -> String {
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match raw.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        },
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A request id unique across routers and restarts: this process's start time, then a counter.
fn request_id() -> String {
    use std::sync::OnceLock;
    use std::time::{SystemTime, UNIX_EPOCH};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{nanos:x}-{:x}", std::process::id())
    });
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The client's address: the peer's, or the last `X-Forwarded-For` entry when the peer is a
/// trusted proxy (`proxyRealIpCidr`).
fn client_ip(conn: &Conn, headers: &HeaderMap, settings: &Settings) -> IpAddr {
    let peer = conn.peer.ip();
    if !settings.real_ip_from.allows(peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .next_back()
        .unwrap_or(peer)
}

/// `https` on TLS; otherwise the last `X-Forwarded-Proto` entry when the peer is a trusted
/// proxy (`proxyRealIpCidr`: a TLS-terminating balancer in front), else `http`. A client cannot
/// claim HTTPS for itself.
fn scheme(conn: &Conn, headers: &HeaderMap, settings: &Settings) -> &'static str {
    if conn.tls {
        return "https";
    }
    if !settings.real_ip_from.allows(conn.peer.ip()) {
        return "http";
    }
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim);
    match forwarded {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// Handles one request and logs it.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Conn,
    request: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let table = proxy.tables.borrow().clone();
    let host = host_of(&request);
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let (app, response, upstream) = match table.route(&host) {
        Decision::Unknown if path == "/health-check" => {
            // Load balancers ask this constantly; it is not logged (as in Deis).
            return text(StatusCode::OK, "");
        }
        Decision::Unknown => (
            "-",
            text(StatusCode::NOT_FOUND, "404 Not Found\n"),
            String::new(),
        ),
        Decision::Backends(target) => {
            let (response, upstream) = forward(&proxy, &table, &target, conn, &host, request).await;
            (target.app, response, upstream)
        }
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    proxy
        .metrics
        .request(&proxy.request_cache, app, status, elapsed);
    if table.settings.access_log {
        tracing::info!(
            target: "deis_router::access",
            app,
            host,
            method = %method,
            path,
            status,
            upstream,
            client = %conn.peer.ip(),
            tls = conn.tls,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "access"
        );
    }
    response
}

/// Applies the target's rules and forwards; returns the response and the backend used.
async fn forward(
    proxy: &Proxy,
    table: &Table,
    target: &Target<'_>,
    conn: Conn,
    host: &str,
    mut request: Request<Incoming>,
) -> (Response<Body>, String) {
    let settings = &table.settings;
    let client = client_ip(&conn, request.headers(), settings);
    let allowed = match target.whitelist {
        Some(list) => list.allows(client),
        None => target.controller || !settings.enforce_whitelist,
    };
    if !allowed {
        return (
            text(StatusCode::FORBIDDEN, "403 Forbidden\n"),
            String::new(),
        );
    }
    let scheme = scheme(&conn, request.headers(), settings);
    if settings.enforce_https && scheme != "https" {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut response = text(StatusCode::MOVED_PERMANENTLY, "301 Moved Permanently\n");
        if let Ok(location) = HeaderValue::from_str(&format!("https://{host}{path}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return (response, String::new());
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(limit), Some(length)) = (settings.body_size, length)
        && length > limit
    {
        return (
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large\n",
            ),
            String::new(),
        );
    }
    if target.backends.is_empty() {
        return (
            text(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n"),
            String::new(),
        );
    }
    let wants_upgrade = upgrade::requested(request.headers());
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(&mut parts.headers, "x-forwarded-for", &client.to_string());
    set(&mut parts.headers, "x-forwarded-proto", scheme);
    set(
        &mut parts.headers,
        "x-forwarded-port",
        &conn.port.to_string(),
    );
    set(
        &mut parts.headers,
        "x-forwarded-ssl",
        if scheme == "https" { "on" } else { "off" },
    );
    if !parts.headers.contains_key("x-request-id") {
        set(&mut parts.headers, "x-request-id", &request_id());
    }
    // Upstreams speak HTTP/1.1 whatever the client used.
    parts.version = axum::http::Version::HTTP_11;
    if parts.headers.get(header::HOST).is_none()
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let empty_body = length.is_none_or(|l| l == 0) && !has_chunked_body(&parts.headers, &body);
    let timeout = if target.controller {
        settings.controller_timeout
    } else {
        settings.app_timeout
    };
    let order = backend_order(proxy, settings, target.backends, parts.uri.query());
    let body = match settings.body_size {
        Some(limit) => Body::new(http_body_util::Limited::new(body, limit as usize)),
        None => Body::new(body),
    };
    if let (Some(client_upgrade), Some(value)) = (client_upgrade, upgrade_value) {
        let backend = order[0];
        parts.headers.insert(header::UPGRADE, value);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let response =
            upgrade::forward(proxy, backend, parts, path, body, client_upgrade, timeout).await;
        return (response, backend.clone());
    }
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    let mut body = Some(body);
    for backend in order {
        let uri = Uri::builder()
            .scheme("http")
            .authority(backend.as_str())
            .path_and_query(path.as_str())
            .build();
        let Ok(uri) = uri else {
            continue;
        };
        let mut upstream = Request::from_parts(parts.clone(), Body::empty());
        *upstream.uri_mut() = uri;
        *upstream.body_mut() = match (empty_body, body.take()) {
            (true, _) => Body::empty(),
            (false, Some(b)) => b,
            (false, None) => break,
        };
        let result = tokio::time::timeout(timeout, proxy.client.request(upstream)).await;
        match result {
            Ok(Ok(response)) => {
                let (mut parts, incoming) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if scheme == "https"
                    && let Some(hsts) = &settings.hsts
                    && let Ok(v) = HeaderValue::from_str(hsts)
                {
                    parts.headers.insert(header::STRICT_TRANSPORT_SECURITY, v);
                }
                return (
                    Response::from_parts(parts, Body::new(incoming)),
                    backend.clone(),
                );
            }
            Ok(Err(e)) if e.is_connect() => {
                proxy.metrics.upstream_error(target.app, "connect");
                proxy.health.mark_down(backend);
                if empty_body {
                    continue;
                }
                return (
                    text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
                    backend.clone(),
                );
            }
            Ok(Err(e)) if empty_body && idempotent && !body_too_large(&e) => {
                // The backend went away mid-request (a container stopping): as nginx's
                // `proxy_next_upstream error`, a request that carried no body is safe to repeat.
                proxy.metrics.upstream_error(target.app, "other");
                tracing::debug!(backend = %backend, error = %e, "Backend failed; trying the next");
                continue;
            }
            Ok(Err(e)) => {
                proxy.metrics.upstream_error(target.app, "other");
                if body_too_large(&e) {
                    return (
                        text(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "413 Request Entity Too Large\n",
                        ),
                        backend.clone(),
                    );
                }
                tracing::warn!(backend = %backend, error = %e, "Backend failed");
                return (
                    text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
                    backend.clone(),
                );
            }
            Err(_) => {
                proxy.metrics.upstream_error(target.app, "timeout");
                return (
                    text(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout\n"),
                    backend.clone(),
                );
            }
        }
    }
    (
        text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
        String::new(),
    )
}

/// Whether a failed request failed because its body passed `bodySize`.
fn body_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A body without `Content-Length` may still have data (chunked, or HTTP/2 frames).
fn has_chunked_body(headers: &HeaderMap, body: &Incoming) -> bool {
    use hyper::body::Body as _;
    headers.contains_key(header::TRANSFER_ENCODING) || !body.is_end_stream()
}

/// The order to try backends in: round-robin (or by the affinity argument's hash), backends
/// in rotation before those marked down.
fn backend_order<'a>(
    proxy: &Proxy,
    settings: &Settings,
    backends: &'a [String],
    query: Option<&str>,
) -> Vec<&'a String> {
    let affinity = settings.affinity_arg.as_deref().and_then(|arg| {
        query?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == arg && !value.is_empty()).then_some(value)
        })
    });
    let mut order: Vec<&String> = match affinity {
        // Rendezvous hashing: a value keeps its backend while others come and go.
        Some(value) => {
            let mut ranked: Vec<(u64, &String)> = backends
                .iter()
                .map(|b| {
                    let mut h = DefaultHasher::new();
                    (value, b).hash(&mut h);
                    (h.finish(), b)
                })
                .collect();
            ranked.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
            ranked.into_iter().map(|(_, b)| b).collect()
        }
        None => {
            let start = proxy.next.fetch_add(1, Ordering::Relaxed);
            (0..backends.len())
                .map(|i| &backends[(start + i) % backends.len()])
                .collect()
        }
    };
    if proxy.health.any_down() {
        order.sort_by_key(|b| proxy.health.is_down(b));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_named_by_connection_are_hop_by_hop_too() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert("x-kept", HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }
}
