//! The error code table: one place that says how a failure is reported over HTTP and gRPC.
//! Each component's errors map to a [`Code`]; its REST edge takes the status from
//! [`Code::http_status`] and its gRPC edge the code from [`Code::grpc_code`].

use http::StatusCode;

/// What went wrong, independent of the transport that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The request is malformed or fails validation.
    InvalidArgument,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Valid credentials that do not allow this action.
    PermissionDenied,
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with the current state: a change of the same object is in
    /// progress, the object is still in use, or a compare-and-swap lost a race.
    Conflict,
    /// The method (or the client's API version) is not supported here.
    Unsupported,
    /// The request is larger than allowed.
    TooLarge,
    /// Too many attempts; wait before the next.
    RateLimited,
    /// A backing service (etcd, Docker, the database) is unreachable or overloaded; retrying can help.
    Unavailable,
    /// The operation did not finish within its deadline.
    DeadlineExceeded,
    /// A bug or an unexpected state; retrying will not help.
    Internal,
}

impl Code {
    /// The HTTP status that reports this code on the REST API.
    pub fn http_status(self) -> StatusCode {
        match self {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Conflict => StatusCode::CONFLICT,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The numeric gRPC status code (as in `google.rpc.Code`) that reports this code. gRPC has
    /// one code for every exhausted resource, so [`Code::TooLarge`] and [`Code::RateLimited`]
    /// share `RESOURCE_EXHAUSTED`, as gRPC itself reports an oversized message.
    pub fn grpc_code(self) -> i32 {
        match self {
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::PermissionDenied => 7,
            Code::TooLarge | Code::RateLimited => 8,
            Code::Conflict => 10,
            Code::Unsupported => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    /// Whether the same request may succeed if it is sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Code::Unavailable | Code::DeadlineExceeded | Code::RateLimited
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: Code, http: u16, grpc: i32, retryable: bool) {
        assert_eq!(code.http_status().as_u16(), http, "{code:?}");
        assert_eq!(code.grpc_code(), grpc, "{code:?}");
        assert_eq!(code.is_retryable(), retryable, "{code:?}");
    }

    #[test]
    fn the_table() {
        check(Code::InvalidArgument, 400, 3, false);
        check(Code::Unauthenticated, 401, 16, false);
        check(Code::PermissionDenied, 403, 7, false);
        check(Code::NotFound, 404, 5, false);
        check(Code::Conflict, 409, 10, false);
        check(Code::Unsupported, 405, 12, false);
        check(Code::TooLarge, 413, 8, false);
        check(Code::RateLimited, 429, 8, true);
        check(Code::Unavailable, 503, 14, true);
        check(Code::DeadlineExceeded, 504, 4, true);
        check(Code::Internal, 500, 13, false);
    }
}
