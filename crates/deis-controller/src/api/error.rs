//! The REST edge of every failure: the error shapes of the Deis API (§2.8), made once here.
//! The status always comes from the failure's [`Code`] through [`Code::http_status`]; the rules'
//! errors ([`DomainError`]) arrive with their own code, and internal failures are logged here,
//! once, with their causes, while the client gets a clean message.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use deis_types::Code;
use serde_json::json;

use crate::domain::DomainError;
use crate::domain::access::AccessError;
use crate::report::Report;

/// A cause of an internal failure.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every way a request can fail, each rendered in the shape the Deis client expects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// `{"detail": "..."}`.
    #[error("{1}")]
    Detail(Code, String),
    /// Validation errors by field: `{"field": ["message"]}`, 400.
    #[error("invalid fields: {0:?}")]
    Fields(BTreeMap<String, Vec<String>>),
    /// `{"error": "..."}` (config lock contention, version mismatch).
    #[error("{1}")]
    ErrorKey(Code, String),
    /// No credentials were sent.
    #[error("authentication required")]
    Unauthenticated,
    /// The token is not valid.
    #[error("invalid token")]
    InvalidToken,
    /// Authenticated but not allowed.
    #[error("permission denied")]
    Forbidden,
    /// The object does not exist.
    #[error("not found")]
    NotFound,
    /// Too many attempts: `Retry-After` (whole seconds) and a detail.
    #[error("{1}")]
    TooMany(Duration, String),
    /// A failure of the rules (or of the database under them), with its own code.
    #[error(transparent)]
    Domain(DomainError),
    /// A failure of ours outside the rules; logged, and answered without internals.
    #[error("internal error")]
    Internal(#[source] Cause),
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Anything the rules fail with (each module's error, the database's) answers as a
/// [`DomainError`].
impl<E: Into<DomainError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::Domain(e.into())
    }
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Detail(Code::InvalidArgument, message.into())
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Fields(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    pub(crate) fn internal(cause: impl Into<Cause>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// How the failure is reported.
    pub(crate) fn code(&self) -> Code {
        match self {
            ApiError::Detail(code, _) | ApiError::ErrorKey(code, _) => *code,
            ApiError::Fields(_) => Code::InvalidArgument,
            ApiError::Unauthenticated | ApiError::InvalidToken => Code::Unauthenticated,
            ApiError::Forbidden => Code::PermissionDenied,
            ApiError::NotFound => Code::NotFound,
            ApiError::TooMany(..) => Code::RateLimited,
            ApiError::Domain(e) => e.code(),
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// A failure of the rules in the Deis shape for its kind.
    fn from_domain(e: DomainError) -> ApiError {
        let code = e.code();
        if code == Code::Internal {
            return ApiError::Internal(Box::new(e));
        }
        if let Some(field) = e.field() {
            return ApiError::field(field, e.to_string());
        }
        match e {
            DomainError::Access(AccessError::Forbidden { .. }) => ApiError::Forbidden,
            DomainError::Access(busy @ AccessError::Busy { .. }) => {
                ApiError::ErrorKey(code, busy.to_string())
            }
            _ if code == Code::NotFound => ApiError::NotFound,
            other => ApiError::Detail(code, other.to_string()),
        }
    }
}

/// `{"detail": ...}` with the status of `code`.
fn detail(code: Code, detail: &str) -> Response {
    (code.http_status(), Json(json!({ "detail": detail }))).into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: HeaderValue) -> Response {
    response.headers_mut().insert(name, value);
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.http_status();
        match self {
            ApiError::Domain(e) => ApiError::from_domain(e).into_response(),
            ApiError::Detail(_, message) => detail(code, &message),
            ApiError::Fields(fields) => (status, Json(json!(fields))).into_response(),
            ApiError::ErrorKey(_, error) => {
                (status, Json(json!({ "error": error }))).into_response()
            }
            ApiError::Unauthenticated => with_header(
                detail(code, "Authentication credentials were not provided."),
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Token"),
            ),
            ApiError::InvalidToken => with_header(
                detail(code, "Invalid token"),
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Token"),
            ),
            ApiError::Forbidden => {
                detail(code, "You do not have permission to perform this action.")
            }
            ApiError::NotFound => detail(code, "Not found."),
            ApiError::TooMany(wait, message) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                with_header(
                    detail(code, &message),
                    header::RETRY_AFTER,
                    HeaderValue::from(seconds.max(1)),
                )
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %Report(cause.as_ref()), "Request failed");
                detail(code, "internal server error")
            }
        }
    }
}
