//! What every handler shares: the registry, the cache, the access check and the metrics; and
//! the two things handlers do with the registry besides caching: ask whether it holds a digest
//! in a repository, and pass a request through unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{StatusCode, header};

use crate::access::Access;
use crate::cache::{Cache, Downloads};
use crate::error::RegistryError;
use crate::metrics::Metrics;
use crate::names::{Repository, Sha256Hex};
use crate::upstream::Upstream;

/// The registry proxy's state.
pub(crate) struct Proxy {
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) cache: Arc<Cache>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) access: Access,
    pub(crate) downloads: Downloads,
    pub(crate) max_upload_bytes: u64,
}

impl Proxy {
    /// Whether `repository` holds `hex` (`kind`: `blobs` or `manifests`): known from an
    /// earlier answer of the registry, else asked of it (and remembered).
    pub(crate) async fn confirmed(
        &self,
        repository: &Repository,
        kind: &str,
        hex: &Sha256Hex,
    ) -> Result<bool, RegistryError> {
        if self.cache.linked(repository, hex).await {
            return Ok(true);
        }
        let digest = hex.digest();
        match self
            .upstream
            .has(repository.as_str(), kind, digest.as_str())
            .await
        {
            Ok(Some(true)) => {
                self.cache.link(repository, hex).await;
                Ok(true)
            }
            Ok(Some(false)) => Ok(false),
            Ok(None) => Err(RegistryError::UpstreamInvalid {
                reason: "an unexpected status for a HEAD request",
            }),
            Err(e) => Err(RegistryError::Unavailable(e)),
        }
    }

    /// Passes a `DELETE` of `hex` on; once the registry deleted it, the cache forgets that
    /// `repository` holds it (and the tags that named it).
    pub(crate) async fn delete(
        &self,
        request: Request,
        repository: &Repository,
        hex: Option<Sha256Hex>,
    ) -> Result<Response, RegistryError> {
        let response = self.forward(request, None).await?;
        if response.status() == StatusCode::ACCEPTED
            && let Some(hex) = hex
        {
            self.cache.unlink(repository, &hex).await;
        }
        Ok(response)
    }

    /// Passes `request` to the registry and its answer back. `body_limit`: `None` sends no
    /// body; else the client's, cut off past that many bytes.
    pub(crate) async fn forward(
        &self,
        request: Request,
        body_limit: Option<u64>,
    ) -> Result<Response, RegistryError> {
        let (parts, body) = request.into_parts();
        let body = match body_limit {
            None => Body::empty(),
            Some(limit) => {
                let declared = parts
                    .headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                if declared.is_some_and(|n| n > limit) {
                    return Err(RegistryError::TooLarge { limit });
                }
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                Body::new(http_body_util::Limited::new(body, limit))
            }
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let response = self
            .upstream
            .call(parts.method, path, &parts.headers, body)
            .await
            .map_err(RegistryError::Unavailable)?;
        Ok(self.upstream.relay(response))
    }
}
