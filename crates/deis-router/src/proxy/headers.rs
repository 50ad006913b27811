//! Header rewriting on the way in and out: hop-by-hop headers are dropped both ways; a request
//! gains `X-Forwarded-For/-Proto/-Port/-Ssl` and an `X-Request-Id` (kept when the client sent
//! one) and goes out as HTTP/1.1 with a `Host`; an HTTPS response gains HSTS when enabled.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, Version, header};
use hyper::body::Incoming;

use super::admission::Admitted;
use super::fields::Head;

/// The header carrying a request's id to the backend.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Headers that concern one connection only, never passed on (with those `Connection` names
/// and `Proxy-Connection`).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request's id: the `X-Request-Id` it came with, else a new one.
pub(crate) fn request_id(headers: &impl Head) -> String {
    match headers.first(REQUEST_ID) {
        Some(given) => String::from_utf8_lossy(given).into_owned(),
        None => new_request_id(),
    }
}

/// A request id unique across routers and restarts: this process's start time, the thread's
/// number, then the thread's own counter (a counter shared by the workers cost a contended
/// atomic on every request).
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NEXT: Cell<(usize, u64)> = Cell::new((THREADS.fetch_add(1, Ordering::Relaxed), 0));
    }
    let prefix = PREFIX.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{nanos:x}-{:x}", std::process::id())
    });
    let (thread, n) = NEXT.with(|next| {
        let (thread, n) = next.get();
        next.set((thread, n.wrapping_add(1)));
        (thread, n)
    });
    format!("{prefix}-{thread:x}-{n:x}")
}

/// Rewrites a request's head for a backend. `request_id` is set unless the client sent one.
pub(super) fn to_upstream(parts: &mut Parts, admitted: &Admitted, port: u16, request_id: &str) {
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    let scheme = admitted.scheme;
    set(headers, "x-forwarded-for", &admitted.client.to_string());
    set(headers, "x-forwarded-proto", scheme);
    set(headers, "x-forwarded-port", &port.to_string());
    let ssl = if scheme == "https" { "on" } else { "off" };
    set(headers, "x-forwarded-ssl", ssl);
    if !headers.contains_key(REQUEST_ID) {
        set(headers, REQUEST_ID, request_id);
    }
    // Upstreams speak HTTP/1.1 whatever the client used.
    parts.version = Version::HTTP_11;
    if parts.headers.get(header::HOST).is_none()
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
}

/// A backend's response as the client gets it; `hsts` is the `Strict-Transport-Security` value
/// to add (HTTPS requests with HSTS enabled).
pub(super) fn from_upstream(response: Response<Incoming>, hsts: Option<&str>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(hsts) = hsts
        && let Ok(v) = HeaderValue::from_str(hsts)
    {
        parts.headers.insert(header::STRICT_TRANSPORT_SECURITY, v);
    }
    Response::from_parts(parts, Body::new(body))
}

/// Sets `name` when `value` is a valid header value.
fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// The tokens of the `Connection` header(s), trimmed: options and header names.
pub(crate) fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Removes the hop-by-hop headers: the fixed ones and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
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

    #[test]
    fn a_request_keeps_its_id_or_gets_a_new_one() {
        let mut given = HeaderMap::new();
        given.insert(REQUEST_ID, HeaderValue::from_static("abc-1"));
        assert_eq!(request_id(&given), "abc-1");
        let (a, b) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_ne!(a, b, "each new id is unique");
    }
}
