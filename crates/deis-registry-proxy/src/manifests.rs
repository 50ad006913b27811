//! `/v2/<name>/manifests/<reference>`. By digest: from the cache when the repository is known
//! to hold it, else fetched, checked against the digest and kept. By tag: always asked of the
//! registry while it answers (tags move); the cache's copy of what the tag last named is served
//! only while the registry cannot be reached. Pushes pass through and update the cache (deletes
//! are `Proxy::delete`). Manifests are at most 4 MiB, as in distribution.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use sha2::Digest as _;

use crate::cache::Manifest;
use crate::error::RegistryError;
use crate::metrics::{Kind, Source, Stage};
use crate::names::{Reference, Repository, Sha256Hex, Tag};
use crate::proxy::Proxy;
use crate::upstream::{ALL_MANIFEST_TYPES, UpstreamError};

/// The largest manifest accepted or fetched.
const MAX_MANIFEST: usize = 4 << 20;

/// `GET|HEAD` of a manifest.
pub(crate) async fn get(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    reference: &Reference,
    request: Request,
) -> Result<Response, RegistryError> {
    let head = request.method() == Method::HEAD;
    let accept = accepted_types(request.headers());
    match reference {
        Reference::Digest(digest) => match digest.sha256() {
            Some(hex) => by_digest(proxy, repository, &hex, &accept, head).await,
            None => proxy.forward(request, None).await,
        },
        Reference::Tag(tag) => by_tag(proxy, repository, tag, &accept, head).await,
    }
}

async fn by_digest(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    hex: &Sha256Hex,
    accept: &HeaderValue,
    head: bool,
) -> Result<Response, RegistryError> {
    let digest = hex.digest().to_string();
    if let Some(manifest) = proxy.cache.manifest(hex).await {
        if !proxy.confirmed(repository, "manifests", hex).await? {
            return Err(RegistryError::ManifestUnknown { reference: digest });
        }
        proxy.metrics.hit(Kind::Manifest);
        return Ok(respond(proxy, &manifest, head, Source::Cache));
    }
    proxy.metrics.miss(Kind::Manifest);
    match fetch(proxy, repository, &digest, accept).await? {
        Fetched::Answer(response) => Ok(response),
        Fetched::Manifest(manifest) if manifest.hex != *hex => {
            proxy.metrics.verification_failed(Stage::Download);
            Err(RegistryError::UpstreamMismatch { digest })
        }
        Fetched::Manifest(manifest) => {
            remember(proxy, repository, &manifest, None).await;
            Ok(respond(proxy, &manifest, head, Source::Upstream))
        }
    }
}

async fn by_tag(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    tag: &Tag,
    accept: &HeaderValue,
    head: bool,
) -> Result<Response, RegistryError> {
    match fetch(proxy, repository, tag.as_str(), accept).await {
        Ok(Fetched::Manifest(manifest)) => {
            remember(proxy, repository, &manifest, Some(tag)).await;
            Ok(respond(proxy, &manifest, head, Source::Upstream))
        }
        Ok(Fetched::Answer(response)) => {
            if response.status() == StatusCode::NOT_FOUND {
                proxy.cache.forget_tag(repository, tag).await;
            }
            Ok(response)
        }
        Err(RegistryError::Unavailable(error)) => {
            let cached = match proxy.cache.tag(repository, tag).await {
                Some(hex) => proxy.cache.manifest(&hex).await,
                None => None,
            };
            match cached.filter(|m| accepts(accept, &m.media_type)) {
                Some(manifest) => {
                    tracing::info!(error = %crate::error::Chain(&error), "The registry cannot be reached; serving the tag as last seen");
                    proxy.metrics.hit(Kind::Manifest);
                    Ok(respond(proxy, &manifest, head, Source::Cache))
                }
                None => Err(RegistryError::Unavailable(error)),
            }
        }
        Err(e) => Err(e),
    }
}

/// What the registry answered for a manifest.
enum Fetched {
    /// The manifest (its digest computed here).
    Manifest(Manifest),
    /// Anything but `200`, passed on as it is.
    Answer(Response),
}

async fn fetch(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    reference: &str,
    accept: &HeaderValue,
) -> Result<Fetched, RegistryError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, accept.clone());
    let path = format!("/v2/{repository}/manifests/{reference}");
    proxy.metrics.fetched(Kind::Manifest);
    let response = proxy
        .upstream
        .call(Method::GET, &path, &headers, Body::empty())
        .await
        .map_err(RegistryError::Unavailable)?;
    if response.status() != StatusCode::OK {
        return Ok(Fetched::Answer(proxy.upstream.relay(response)));
    }
    let media_type = media_type(response.headers()).ok_or(RegistryError::UpstreamInvalid {
        reason: "a manifest without a content type",
    })?;
    let claimed = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_bounded(response.into_body())
        .await
        .map_err(|e| match e {
            Bounded::TooLarge => RegistryError::UpstreamInvalid {
                reason: "a manifest larger than 4 MiB",
            },
            Bounded::Broken(e) => RegistryError::Unavailable(UpstreamError::Body(e)),
        })?;
    let hex = Sha256Hex::of(sha2::Sha256::new_with_prefix(&bytes));
    if claimed.is_some_and(|c| c != hex.digest().as_str()) {
        proxy.metrics.verification_failed(Stage::Download);
        return Err(RegistryError::UpstreamMismatch {
            digest: hex.digest().to_string(),
        });
    }
    Ok(Fetched::Manifest(Manifest {
        media_type,
        bytes,
        hex,
    }))
}

/// Keeps a manifest the registry holds in `repository` (under `tag`, if given).
async fn remember(proxy: &Arc<Proxy>, repository: &Repository, m: &Manifest, tag: Option<&Tag>) {
    proxy.cache.put_manifest(m).await;
    proxy.cache.link(repository, &m.hex).await;
    if let Some(tag) = tag {
        proxy.cache.set_tag(repository, tag, &m.hex).await;
    }
}

fn respond(proxy: &Proxy, manifest: &Manifest, head: bool, source: Source) -> Response {
    let digest = manifest.hex.digest().to_string();
    let size = manifest.bytes.len();
    let body = if head {
        Body::empty()
    } else {
        proxy.metrics.served(source, size as u64);
        Body::from(manifest.bytes.clone())
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, manifest.media_type.clone()),
        (header::CONTENT_LENGTH, size.to_string()),
        (header::ETAG, format!("\"{digest}\"")),
        (
            http::HeaderName::from_static("docker-content-digest"),
            digest,
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// `PUT` of a manifest: passed on; once the registry took it, kept in the cache.
pub(crate) async fn put(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    reference: &Reference,
    request: Request,
) -> Result<Response, RegistryError> {
    let (parts, body) = request.into_parts();
    let bytes = read_bounded(body).await.map_err(|e| match e {
        Bounded::TooLarge => RegistryError::TooLarge {
            limit: MAX_MANIFEST as u64,
        },
        Bounded::Broken(_) => RegistryError::ManifestInvalid,
    })?;
    let hex = Sha256Hex::of(sha2::Sha256::new_with_prefix(&bytes));
    if let Reference::Digest(digest) = reference
        && digest.sha256().is_some_and(|claimed| claimed != hex)
    {
        return Err(RegistryError::DigestInvalid);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let response = proxy
        .upstream
        .call(Method::PUT, path, &parts.headers, Body::from(bytes.clone()))
        .await
        .map_err(RegistryError::Unavailable)?;
    if response.status() == StatusCode::CREATED
        && let Some(media_type) = media_type(&parts.headers)
    {
        let tag = match reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        };
        let manifest = Manifest {
            media_type,
            bytes,
            hex,
        };
        remember(proxy, repository, &manifest, tag).await;
    }
    Ok(proxy.upstream.relay(response))
}

/// The media types a request accepts (Docker sends one `Accept` header per type); every
/// manifest type when it names none.
fn accepted_types(headers: &HeaderMap) -> HeaderValue {
    let joined: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if joined.is_empty() {
        return HeaderValue::from_static(ALL_MANIFEST_TYPES);
    }
    HeaderValue::from_str(&joined.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static(ALL_MANIFEST_TYPES))
}

/// Whether `accept` lets a client take `media_type`.
fn accepts(accept: &HeaderValue, media_type: &str) -> bool {
    accept.to_str().is_ok_and(|list| {
        list.split(',')
            .filter_map(|item| item.split(';').next())
            .map(str::trim)
            .any(|t| t == media_type || t == "*/*")
    })
}

/// A `Content-Type` usable as a stored media type (one line of text).
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    (!value.is_empty() && !value.contains('\n')).then(|| value.to_owned())
}

/// Why a body could not be read whole.
enum Bounded {
    TooLarge,
    Broken(Box<dyn std::error::Error + Send + Sync>),
}

/// The whole body, if it is at most [`MAX_MANIFEST`] bytes.
async fn read_bounded<B>(body: B) -> Result<Bytes, Bounded>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match http_body_util::Limited::new(body, MAX_MANIFEST)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Bounded::TooLarge),
        Err(e) => Err(Bounded::Broken(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_tag_is_served_only_in_a_type_the_client_takes() {
        let mut headers = HeaderMap::new();
        for t in [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json; q=0.5",
        ] {
            headers.append(header::ACCEPT, HeaderValue::from_static(t));
        }
        let accept = accepted_types(&headers);
        for (media_type, ok) in [
            ("application/vnd.oci.image.index.v1+json", true),
            ("application/vnd.docker.distribution.manifest.v2+json", true),
            ("application/vnd.oci.image.manifest.v1+json", false),
        ] {
            assert_eq!(accepts(&accept, media_type), ok, "{media_type}");
        }
        let none = accepted_types(&HeaderMap::new());
        assert!(accepts(&none, "application/vnd.oci.image.manifest.v1+json"));
    }
}
