//! Sending and retrying: a request goes to its backends in order until one answers. A backend
//! that refuses the connection (or does not accept it within the connect timeout) is taken out
//! of rotation; as nginx's `proxy_next_upstream error`, a request is sent again to the next
//! backend only when it carried no body, so nothing was half sent.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, Request, Response, Uri};

use super::answer::Answer;
use super::{Proxy, headers};
use crate::settings::Timeouts;
use crate::table::Target;

/// A request ready for its backends.
pub(super) struct Outgoing<'a> {
    /// The head, already rewritten for backends.
    pub(super) parts: Parts,
    /// Path and query.
    pub(super) path: String,
    pub(super) body: Body,
    /// Whether there is no body (so the request can be sent again).
    pub(super) empty_body: bool,
    pub(super) timeouts: Timeouts,
    /// `Strict-Transport-Security` for the response, if any.
    pub(super) hsts: Option<&'a str>,
}

/// What to do after an attempt failed.
enum Failed {
    /// Try the next backend.
    Next,
    /// Give the client this answer.
    Answer(Answer),
}

/// Sends `request` to the backends of `order` in turn; returns the response and the backend
/// that gave it (empty when none did).
pub(super) async fn send(
    proxy: &Proxy,
    target: &Target<'_>,
    order: Vec<&String>,
    request: Outgoing<'_>,
) -> (Response<Body>, String) {
    let Outgoing {
        parts,
        path,
        body,
        empty_body,
        timeouts,
        hsts,
    } = request;
    let mut body = Some(body);
    for backend in order {
        let Ok(uri) = upstream_uri(backend, &path) else {
            continue;
        };
        let body = match (empty_body, body.take()) {
            (true, _) => Body::empty(),
            (false, Some(b)) => b,
            (false, None) => break,
        };
        let mut upstream = Request::from_parts(parts.clone(), body);
        *upstream.uri_mut() = uri;
        let sent = proxy
            .pools
            .request(target.controller, timeouts.connect, upstream);
        let error = match tokio::time::timeout(timeouts.read, sent).await {
            Ok(Ok(response)) => return (headers::from_upstream(response, hsts), backend.clone()),
            Ok(Err(e)) => e,
            Err(_) => {
                proxy.metrics.upstream_error(target.app, "timeout");
                return (Answer::GatewayTimeout.response(), backend.clone());
            }
        };
        let retry = empty_body && is_idempotent(&parts.method);
        match failed(proxy, target, backend, &error, empty_body, retry) {
            Failed::Next => continue,
            Failed::Answer(answer) => return (answer.response(), backend.clone()),
        }
    }
    (Answer::BadGateway.response(), String::new())
}

/// Counts a failed attempt and decides what follows. A connection that was never made is
/// always safe to try elsewhere when nothing else would be lost (`empty_body`); other failures
/// only when `retry` allows a repeat.
fn failed(
    proxy: &Proxy,
    target: &Target<'_>,
    backend: &str,
    error: &hyper_util::client::legacy::Error,
    empty_body: bool,
    retry: bool,
) -> Failed {
    if error.is_connect() {
        proxy.metrics.upstream_error(target.app, "connect");
        proxy.health.mark_down(backend, &proxy.tasks);
        return if empty_body {
            Failed::Next
        } else {
            Failed::Answer(Answer::BadGateway)
        };
    }
    proxy.metrics.upstream_error(target.app, "other");
    if body_too_large(error) {
        return Failed::Answer(Answer::PayloadTooLarge);
    }
    if retry {
        // The backend went away mid-request (a container stopping): a request that carried no
        // body is safe to repeat.
        tracing::debug!(backend, error = %error, "Backend failed; trying the next");
        return Failed::Next;
    }
    tracing::warn!(backend, error = %error, "Backend failed");
    Failed::Answer(Answer::BadGateway)
}

/// The backend's URI for `path`.
fn upstream_uri(backend: &str, path: &str) -> Result<Uri, axum::http::Error> {
    Uri::builder()
        .scheme("http")
        .authority(backend)
        .path_and_query(path)
        .build()
}

/// Methods whose repetition does no harm.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
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
