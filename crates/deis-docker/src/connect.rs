//! Connecting to an engine.

use bollard::Docker;

use crate::DockerError;

/// How long one call to the engine may take (seconds).
const TIMEOUT_SECS: u64 = 120;

/// Connects to the engine at `url` and agrees on an API version: the local engine (its
/// socket, or `DOCKER_HOST`) when `url` is empty, else `unix:///path` or `tcp://host:port` /
/// `http://host:port`.
pub async fn connect(url: &str) -> Result<Docker, DockerError> {
    let unreachable = |source| DockerError::Unreachable {
        url: url.to_owned(),
        source,
    };
    let docker = if url.is_empty() {
        Docker::connect_with_defaults()
    } else if let Some(path) = url.strip_prefix("unix://") {
        Docker::connect_with_socket(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_http(url, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    }
    .map_err(unreachable)?;
    docker.negotiate_version().await.map_err(unreachable)
}
