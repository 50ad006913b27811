//! The errors a client of the registry API sees, in the distribution spec's shape:
//! `{"errors":[{"code","message","detail"}]}` with the code's HTTP status.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::names::RouteError;
use crate::upstream::UpstreamError;

/// `Docker-Distribution-API-Version`, on every answer.
pub(crate) const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("authentication required")]
    Unauthorized,
    #[error("requested access to the resource is denied")]
    Denied { repository: Option<String> },
    #[error("invalid repository name")]
    NameInvalid,
    #[error("manifest tag did not match URI")]
    TagInvalid,
    #[error("provided digest did not match uploaded content")]
    DigestInvalid,
    #[error("manifest invalid")]
    ManifestInvalid,
    #[error("manifest unknown")]
    ManifestUnknown { reference: String },
    #[error("blob unknown to registry")]
    BlobUnknown { digest: String },
    #[error("requested range not satisfiable")]
    RangeInvalid { size: u64 },
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the operation is unsupported")]
    Unsupported,
    #[error("page not found")]
    NotFound,
    #[error("the registry is unavailable")]
    Unavailable(#[source] UpstreamError),
    #[error("the blob's download from the registry failed: {0:?}")]
    Download(crate::cache::Failure),
    #[error("the registry's secrets cannot be read")]
    Secrets(#[source] deis_runtime::SecretError),
    #[error("the registry answered with content that does not match its digest {digest}")]
    UpstreamMismatch { digest: String },
    #[error("the registry's answer is not usable: {reason}")]
    UpstreamInvalid { reason: &'static str },
    #[error("the cache failed")]
    Cache(#[source] std::io::Error),
}

impl RegistryError {
    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        use RegistryError as E;
        match self {
            E::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", None),
            E::Denied { repository } => (StatusCode::FORBIDDEN, "DENIED", repository.clone()),
            E::NameInvalid => (StatusCode::BAD_REQUEST, "NAME_INVALID", None),
            E::TagInvalid => (StatusCode::BAD_REQUEST, "TAG_INVALID", None),
            E::DigestInvalid => (StatusCode::BAD_REQUEST, "DIGEST_INVALID", None),
            E::ManifestInvalid => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID", None),
            E::ManifestUnknown { reference } => (
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                Some(reference.clone()),
            ),
            E::BlobUnknown { digest } => {
                (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", Some(digest.clone()))
            }
            E::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID", None),
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", None),
            E::Unsupported => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", None),
            E::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", None),
            E::Unavailable(_) | E::Secrets(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
            }
            E::Download(crate::cache::Failure::Unreachable) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
            }
            E::UpstreamMismatch { .. } | E::UpstreamInvalid { .. } | E::Download(_) => {
                (StatusCode::BAD_GATEWAY, "UNKNOWN", None)
            }
            E::Cache(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", None),
        }
    }
}

impl From<RouteError> for RegistryError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => RegistryError::NotFound,
            RouteError::NameInvalid => RegistryError::NameInvalid,
            RouteError::TagInvalid => RegistryError::TagInvalid,
            RouteError::DigestInvalid => RegistryError::DigestInvalid,
        }
    }
}

/// Adds the headers every answer carries.
pub(crate) fn with_api_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    response
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code, detail) = self.parts();
        if status.is_server_error() {
            tracing::warn!(error = %Chain(&self), "Request failed");
        }
        let body = serde_json::json!({
            "errors": [{ "code": code, "message": self.to_string(), "detail": detail }]
        });
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!("Basic realm=\"{}\"", deis_runtime::REGISTRY_REALM);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let RegistryError::RangeInvalid { size } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        with_api_version(response)
    }
}

/// An error with its causes, `: `-separated, for logs.
pub(crate) struct Chain<'a>(pub(crate) &'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
