//! The router's own answers: short plain-text pages for what it refuses, cannot find or cannot
//! reach, the same words whichever phase gives them.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

/// An answer the router gives itself instead of a backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// No app or domain has the host.
    NotFound,
    /// The client is not on the target's allow-list.
    Forbidden,
    /// Plain HTTP where HTTPS is enforced (the caller adds `Location`).
    MovedPermanently,
    /// The body passes `bodySize`.
    PayloadTooLarge,
    /// No backend could be reached, or one failed.
    BadGateway,
    /// The target has no backends.
    ServiceUnavailable,
    /// A request the router cannot read safely (ambiguous framing, bad header syntax).
    BadRequest,
    /// A request head larger than the router reads.
    HeadersTooLarge,
    /// The backend did not answer in time.
    GatewayTimeout,
}

impl Answer {
    /// The answer as a response.
    pub(crate) fn response(self) -> Response<Body> {
        let (status, body) = self.status_and_body();
        text(status, body)
    }

    /// The status and the page's text.
    pub(crate) fn status_and_body(self) -> (StatusCode, &'static str) {
        match self {
            Answer::NotFound => (StatusCode::NOT_FOUND, "404 Not Found\n"),
            Answer::Forbidden => (StatusCode::FORBIDDEN, "403 Forbidden\n"),
            Answer::MovedPermanently => (StatusCode::MOVED_PERMANENTLY, "301 Moved Permanently\n"),
            Answer::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large\n",
            ),
            Answer::BadGateway => (StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
            Answer::ServiceUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n")
            }
            Answer::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout\n"),
            Answer::BadRequest => (StatusCode::BAD_REQUEST, "400 Bad Request\n"),
            Answer::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "431 Request Header Fields Too Large\n",
            ),
        }
    }
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
