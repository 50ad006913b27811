//! The error shapes of the Deis API (§2.8), made once here.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::DbError;

/// Every way a request can fail, each rendered in the shape the Deis client expects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// `{"detail": "..."}` with a status.
    #[error("{1}")]
    Detail(StatusCode, String),
    /// Validation errors by field: `{"field": ["message"]}`, 400.
    #[error("invalid fields: {0:?}")]
    Fields(BTreeMap<String, Vec<String>>),
    /// `{"error": "..."}` with a status (config lock contention, version mismatch).
    #[error("{1}")]
    ErrorKey(StatusCode, String),
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
    /// Too many attempts: 429 with `Retry-After` (whole seconds) and a detail.
    #[error("{1}")]
    TooMany(std::time::Duration, String),
    /// A failure of ours; logged, and answered without internals.
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Detail(StatusCode::BAD_REQUEST, message.into())
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Fields(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Detail(StatusCode::SERVICE_UNAVAILABLE, message.into())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Internal(format!("{e}: {}", source_chain(&e)))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&s.to_string());
        out.push_str("; ");
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Detail(status, detail) => {
                (status, Json(json!({ "detail": detail }))).into_response()
            }
            ApiError::Fields(fields) => {
                (StatusCode::BAD_REQUEST, Json(json!(fields))).into_response()
            }
            ApiError::ErrorKey(status, error) => {
                (status, Json(json!({ "error": error }))).into_response()
            }
            ApiError::Unauthenticated => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"detail": "Authentication credentials were not provided."})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
                response
            }
            ApiError::InvalidToken => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"detail": "Invalid token"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
                response
            }
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                Json(json!({"detail": "You do not have permission to perform this action."})),
            )
                .into_response(),
            ApiError::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response()
            }
            ApiError::TooMany(wait, detail) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "detail": detail })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                response
            }
            ApiError::Internal(message) => {
                tracing::error!(error = %message, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"detail": "internal server error"})),
                )
                    .into_response()
            }
        }
    }
}
