//! What can go wrong talking to the engine, and whether trying again can help.

/// A failed call to a Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine could not be reached or did not answer the version handshake.
    #[error(
        "cannot reach the Docker engine{}: {}",
        at(url),
        engine_message(source)
    )]
    Unreachable {
        /// The engine's URL (empty: the local engine).
        url: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A call the engine refused or failed.
    #[error("{what}: {}", engine_message(source))]
    Call {
        /// What was being done (`listing the containers of shop`).
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
}

fn at(url: &str) -> String {
    if url.is_empty() {
        String::new()
    } else {
        format!(" {url}")
    }
}

impl DockerError {
    /// `source` as the failure of `what`.
    pub fn call(what: impl Into<String>, source: bollard::errors::Error) -> DockerError {
        DockerError::Call {
            what: what.into(),
            source,
        }
    }

    /// Whether the same call may succeed later: the engine was unreachable, or answered with a
    /// server error; not when it refused the request (a 4xx: missing image, name in use).
    pub fn is_retryable(&self) -> bool {
        match self {
            DockerError::Unreachable { .. } => true,
            DockerError::Call { source, .. } => match source {
                bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
                    *status_code >= 500
                }
                bollard::errors::Error::DockerContainerWaitError { .. } => false,
                _ => true,
            },
        }
    }

    /// The HTTP status the engine answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DockerError::Call {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }
}

/// The engine's own words for a failed call (its message, without bollard's wrapping).
pub fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status_code: u16) -> DockerError {
        DockerError::call(
            "creating shop_v2.web.1",
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: "No such image: shop:git-1".to_owned(),
            },
        )
    }

    #[test]
    fn refusals_are_final_and_server_errors_retryable() {
        assert!(!refused(404).is_retryable());
        assert!(refused(500).is_retryable());
        assert_eq!(refused(409).status(), Some(409));
        assert_eq!(
            refused(404).to_string(),
            "creating shop_v2.web.1: No such image: shop:git-1"
        );
    }
}
