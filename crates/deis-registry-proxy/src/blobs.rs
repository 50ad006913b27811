//! `GET|HEAD /v2/<name>/blobs/<digest>`: from the cache when it holds the blob for that
//! repository (checked against its digest first), else from one shared download; `Range`
//! requests get `206` with the part asked for.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};

use crate::cache::{Failure, FileBody, Flight, Joined, Progress};
use crate::error::RegistryError;
use crate::metrics::{Kind, Source};
use crate::names::{Digest, Repository, Sha256Hex};
use crate::proxy::Proxy;

/// Serves a blob.
pub(crate) async fn get(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    digest: &Digest,
    request: Request,
) -> Result<Response, RegistryError> {
    let Some(hex) = digest.sha256() else {
        return proxy.forward(request, None).await;
    };
    let head = request.method() == Method::HEAD;
    let range = request.headers().get(header::RANGE).cloned();
    // A second look at the cache when a download finished just as this request joined it.
    for _ in 0..2 {
        if let Some(response) = cached(proxy, repository, &hex, head, range.as_ref()).await? {
            return Ok(response);
        }
        if head {
            return proxy.forward(request, None).await;
        }
        proxy.metrics.miss(Kind::Blob);
        let joined = proxy
            .cache
            .join(repository, &hex, &proxy.downloads)
            .map_err(RegistryError::Cache)?;
        if let Joined::Flight(flight) = joined {
            return from_download(proxy, flight, &hex, range.as_ref()).await;
        }
    }
    Err(RegistryError::Cache(std::io::Error::other(
        "the blob left the cache as it was filed",
    )))
}

/// The blob from the cache, if it holds a verified copy the repository may see.
async fn cached(
    proxy: &Arc<Proxy>,
    repository: &Repository,
    hex: &Sha256Hex,
    head: bool,
    range: Option<&HeaderValue>,
) -> Result<Option<Response>, RegistryError> {
    if !proxy.cache.has_blob(hex) {
        return Ok(None);
    }
    if !proxy.confirmed(repository, "blobs", hex).await? {
        return Err(RegistryError::BlobUnknown {
            digest: hex.digest().to_string(),
        });
    }
    if head {
        return Ok(proxy.cache.blob_size(hex).map(|size| {
            proxy.metrics.hit(Kind::Blob);
            respond(hex, size, 0..size, Body::empty())
        }));
    }
    let Some((file, size)) = proxy
        .cache
        .open_blob(hex)
        .await
        .map_err(RegistryError::Cache)?
    else {
        return Ok(None);
    };
    proxy.metrics.hit(Kind::Blob);
    let part = byte_range(range, size)?;
    let body = FileBody::new(
        Arc::new(file),
        part.clone(),
        proxy.metrics.clone(),
        Source::Cache,
    );
    Ok(Some(respond(hex, size, part, body.into_body())))
}

/// The blob as a download brings it.
async fn from_download(
    proxy: &Arc<Proxy>,
    flight: Flight,
    hex: &Sha256Hex,
    range: Option<&HeaderValue>,
) -> Result<Response, RegistryError> {
    let mut progress = flight.progress.clone();
    // A part is sent only from a verified blob, so a range waits for the end.
    let whole = range.is_none();
    let now = *progress
        .wait_for(|p| match p {
            Progress::Connecting => false,
            Progress::Receiving { .. } => whole,
            Progress::Done { .. } | Progress::Failed(_) => true,
        })
        .await
        .map_err(|_| RegistryError::Download(Failure::Broken))?;
    let (size, follow) = match now {
        Progress::Failed(Failure::NotFound) => {
            return Err(RegistryError::BlobUnknown {
                digest: hex.digest().to_string(),
            });
        }
        Progress::Failed(failure) => return Err(RegistryError::Download(failure)),
        Progress::Receiving { total, .. } => (total, true),
        Progress::Done { size } => (Some(size), false),
        Progress::Connecting => return Err(RegistryError::Download(Failure::Broken)),
    };
    let Some(size) = size else {
        // The registry did not say how big: stream without a length.
        let body = FileBody::following(flight, 0..u64::MAX, proxy.metrics.clone());
        let mut response = respond(hex, 0, 0..0, body.into_body());
        response.headers_mut().remove(header::CONTENT_LENGTH);
        return Ok(response);
    };
    let part = byte_range(range, size)?;
    let body = if follow {
        FileBody::following(flight, part.clone(), proxy.metrics.clone())
    } else {
        FileBody::new(
            flight.file,
            part.clone(),
            proxy.metrics.clone(),
            Source::Upstream,
        )
    };
    Ok(respond(hex, size, part, body.into_body()))
}

/// `200` (or `206` for a part) with the blob's headers.
fn respond(hex: &Sha256Hex, size: u64, part: Range<u64>, body: Body) -> Response {
    let digest = hex.digest().to_string();
    let partial = part.start > 0 || part.end < size;
    let mut response = Response::new(body);
    *response.status_mut() = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_LENGTH, (part.end - part.start).to_string());
    set(header::CONTENT_TYPE, "application/octet-stream".to_owned());
    set(header::ACCEPT_RANGES, "bytes".to_owned());
    set(header::ETAG, format!("\"{digest}\""));
    set(header::CACHE_CONTROL, "max-age=31536000".to_owned());
    if partial {
        set(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", part.start, part.end.saturating_sub(1)),
        );
    }
    set(
        http::HeaderName::from_static("docker-content-digest"),
        digest,
    );
    response
}

/// The bytes a `Range` header asks for (one range; anything else gets the whole blob, as
/// RFC 9110 lets a server do).
fn byte_range(header: Option<&HeaderValue>, size: u64) -> Result<Range<u64>, RegistryError> {
    let whole = 0..size;
    let Some(spec) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return Ok(whole);
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(whole);
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let part = match (first.trim().is_empty(), number(first), number(last)) {
        (true, _, Some(suffix)) if suffix > 0 => size.saturating_sub(suffix)..size,
        (false, Some(start), None) if last.trim().is_empty() => start..size,
        (false, Some(start), Some(end)) if end >= start => start..end.saturating_add(1).min(size),
        _ => return Ok(whole),
    };
    if part.start >= size {
        return Err(RegistryError::RangeInvalid { size });
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, size: u64, expect: Option<Range<u64>>) {
        let value = header.map(|h| HeaderValue::from_str(h).expect("header"));
        let got = byte_range(value.as_ref(), size).ok();
        assert_eq!(got, expect, "{header:?} of {size}");
    }

    #[test]
    fn reads_single_byte_ranges() {
        check(None, 100, Some(0..100));
        check(Some("bytes=10-19"), 100, Some(10..20));
        check(Some("bytes=10-"), 100, Some(10..100));
        check(Some("bytes=-10"), 100, Some(90..100));
        check(Some("bytes=-1000"), 100, Some(0..100));
        check(Some("bytes=90-1000"), 100, Some(90..100));
        check(Some("bytes=100-"), 100, None);
        check(Some("bytes=0-1,5-6"), 100, Some(0..100));
        check(Some("bytes=9-3"), 100, Some(0..100));
        check(Some("items=1-2"), 100, Some(0..100));
        check(Some("bytes=-0"), 100, Some(0..100));
    }
}
