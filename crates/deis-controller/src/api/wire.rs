//! What every response carries and every request is checked for, whatever the route: the
//! version headers (§2.5), upper-case reason phrases (§2.6), CORS (§2.7), the error body of a
//! wrong method, and trailing-slash tolerance (§2.2).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use deis_types::Code;

use super::error::ApiError;

/// The API version this controller speaks.
pub(crate) const API_VERSION: &str = "1.7";
/// The Deis platform version reported to clients.
pub(crate) const PLATFORM_VERSION: &str = "1.13.4";

const VERSION_HEADERS: [(&str, &str); 4] = [
    ("deis_api_version", API_VERSION),
    ("x_deis_api_version", API_VERSION),
    ("deis_platform_version", PLATFORM_VERSION),
    ("x_deis_platform_version", PLATFORM_VERSION),
];

const CORS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-headers",
        "content-type, accept, origin, Authorization, Host",
    ),
    (
        "access-control-expose-headers",
        "X_DEIS_API_VERSION, X_DEIS_PLATFORM_VERSION, X-Deis-Release, DEIS_API_VERSION, DEIS_PLATFORM_VERSION, Deis-Release",
    ),
];

/// The reason phrase Django 1.6 sends for a status.
fn reason(status: StatusCode) -> Option<&'static [u8]> {
    Some(match status.as_u16() {
        200 => b"OK",
        201 => b"CREATED",
        204 => b"NO CONTENT",
        400 => b"BAD REQUEST",
        401 => b"UNAUTHORIZED",
        403 => b"FORBIDDEN",
        404 => b"NOT FOUND",
        405 => b"METHOD NOT ALLOWED",
        409 => b"CONFLICT",
        413 => b"REQUEST ENTITY TOO LARGE",
        429 => b"TOO MANY REQUESTS",
        500 => b"INTERNAL SERVER ERROR",
        503 => b"SERVICE UNAVAILABLE",
        504 => b"GATEWAY TIMEOUT",
        _ => return None,
    })
}

/// Removes one trailing slash from the path (`/v1/apps/` routes as `/v1/apps`).
pub(crate) fn trim_trailing_slash(mut request: Request) -> Request {
    let uri = request.uri();
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match uri.query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(new) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = new;
        }
    }
    request
}

/// The middleware: version negotiation before, headers and phrases after.
pub(crate) async fn wire(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let sent = request
        .headers()
        .get("deis_version")
        .or_else(|| request.headers().get("deis-version"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // No name, key or value holds a NUL (PostgreSQL text cannot, and no Deis name does).
    let nul_in_uri = request
        .uri()
        .path_and_query()
        .is_some_and(|p| p.as_str().to_ascii_lowercase().contains("%00"));
    let mut response = match sent {
        _ if nul_in_uri => {
            ApiError::bad_request("The URL may not contain NUL characters (%00)").into_response()
        }
        Some(v) if v != "1" => ApiError::ErrorKey(
            Code::Unsupported,
            format!(
                "Client and server versions do not match. Client version: {v} Server version: 1"
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    };
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get("content-type").is_none()
    {
        let allow = response.headers().get("allow").cloned();
        response = ApiError::Detail(
            Code::Unsupported,
            format!("Method \"{method}\" not allowed."),
        )
        .into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert("allow", allow);
        }
    }
    let headers = response.headers_mut();
    for (name, value) in VERSION_HEADERS.iter().chain(CORS.iter()) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Some(phrase) = reason(response.status()) {
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(phrase));
    }
    response
}

/// Answers a path no route matches.
pub(crate) async fn not_found() -> Response {
    let mut response = ApiError::NotFound.into_response();
    *response.body_mut() = Body::from("{\"detail\":\"Not found.\"}");
    response
}
