//! The error code table: one place that says how a failure is reported over HTTP and gRPC.

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
    /// The object exists already or a compare-and-swap lost a race.
    Conflict,
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
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The numeric gRPC status code (as in `google.rpc.Code`) that reports this code.
    pub fn grpc_code(self) -> i32 {
        match self {
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::Conflict => 6,
            Code::PermissionDenied => 7,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    /// Whether the same request may succeed if it is sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Code::Unavailable | Code::DeadlineExceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_distinct_status() {
        let all = [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Conflict,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
        ];
        let mut http: Vec<u16> = all.iter().map(|c| c.http_status().as_u16()).collect();
        let mut grpc: Vec<i32> = all.iter().map(|c| c.grpc_code()).collect();
        http.sort_unstable();
        http.dedup();
        grpc.sort_unstable();
        grpc.dedup();
        assert_eq!(http.len(), all.len());
        assert_eq!(grpc.len(), all.len());
        assert!(Code::Unavailable.is_retryable());
        assert!(!Code::NotFound.is_retryable());
    }
}
