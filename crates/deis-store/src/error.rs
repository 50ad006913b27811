//! Errors of the config store.

use crate::model::{LeaseId, Revision};

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer; the same call may succeed later.
    #[error("config store unavailable during {op}: {source}")]
    Unavailable {
        /// The operation that failed (`get /deis/platform/domain`).
        op: String,
        /// What the client library said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A watch asked for history that the store no longer keeps; relist and watch again from the
    /// listing's revision.
    #[error("revision {requested} was compacted; the oldest revision kept is {compacted}")]
    Compacted {
        /// The revision the watch asked for.
        requested: Revision,
        /// The store's compaction point.
        compacted: Revision,
    },
    /// The lease expired or was revoked.
    #[error("lease {0} does not exist (expired or revoked)")]
    LeaseNotFound(LeaseId),
    /// A stored value is not UTF-8 text.
    #[error("the value of {key} is not UTF-8 text")]
    InvalidValue {
        /// The key whose value was rejected.
        key: String,
    },
    /// The request itself is wrong (an empty key, a TTL of zero).
    #[error("invalid store request: {0}")]
    InvalidRequest(String),
    /// The TLS settings for etcd cannot be used: a file is missing, unreadable or holds the
    /// wrong thing, a setting lacks its partner, or the endpoints' scheme does not match them.
    /// A handshake that etcd refuses is [`StoreError::Unavailable`], with a source that says so.
    #[error("etcd TLS: {0}")]
    Tls(String),
}

impl StoreError {
    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
