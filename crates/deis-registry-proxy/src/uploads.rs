//! `POST /v2/<name>/blobs/uploads/`: passed through (chunked and streamed uploads, mounts),
//! except a monolithic upload (`?digest=` with the blob as body), which distribution 2.8 does
//! not take in one request: the proxy opens the upload session and finishes it with the
//! body in a `PUT`, so the client sees the spec's one-request upload.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode, header};

use crate::error::RegistryError;
use crate::names::Repository;
use crate::proxy::Proxy;

/// Starts (or, with `?digest=`, does) an upload.
pub(crate) async fn start(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    request: Request,
) -> Result<Response, RegistryError> {
    let query = request.uri().query().unwrap_or("");
    let digest = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("digest="))
        .map(str::to_owned);
    let mount = query.split('&').any(|pair| pair.starts_with("mount="));
    let limit = proxy.max_upload_bytes;
    let Some(digest) = digest.filter(|_| !mount) else {
        return proxy.forward(request, Some(limit)).await;
    };
    let (mut parts, body) = request.into_parts();
    let opened = proxy
        .upstream
        .call(
            Method::POST,
            &format!("/v2/{repository}/blobs/uploads/"),
            &http::HeaderMap::new(),
            Body::empty(),
        )
        .await
        .map_err(RegistryError::Unavailable)?;
    let location = opened
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| proxy.upstream.relative(l));
    let location = match (opened.status(), location) {
        (StatusCode::ACCEPTED, Some(location)) => location,
        _ => return Ok(proxy.upstream.relay(opened)),
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    parts.method = Method::PUT;
    parts.uri = format!("{location}{separator}digest={digest}")
        .parse()
        .map_err(|_| RegistryError::UpstreamInvalid {
            reason: "an upload location that is not a URL",
        })?;
    proxy
        .forward(Request::from_parts(parts, body), Some(limit))
        .await
}
