//! Image builds and pushes through the Docker API, with the engine's output shown as it comes.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::StreamExt;

use crate::output::Output;

/// What a build's steps are held to.
pub(crate) struct Limits<'a> {
    /// Memory, in bytes.
    pub(crate) memory: i64,
    /// The network the steps run on.
    pub(crate) network: Option<&'a str>,
}

/// Builds `context` (a tar archive with a `Dockerfile`, streamed) as `tag`; the engine's error
/// on failure.
pub(crate) async fn build(
    docker: &Docker,
    context: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
    tag: &str,
    labels: &HashMap<String, String>,
    limits: Limits<'_>,
    out: &mut Output,
) -> Result<(), String> {
    // The engine takes a build's memory as a 32-bit number of bytes.
    let memory = i32::try_from(limits.memory).unwrap_or(i32::MAX);
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .memory(memory)
        .memswap(memory)
        .networkmode(limits.network.unwrap_or("default"))
        .rm(true)
        .forcerm(true)
        .labels(labels)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(context)));
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    out.build_output(&text).await;
                }
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(detail);
                }
            }
            Err(e) => failure = Some(engine_error(e)),
        }
    }
    out.finish_build_output().await;
    match failure {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Pushes `image` (`registry/name:tag`) to its registry.
pub(crate) async fn push(docker: &Docker, image: &str) -> Result<(), String> {
    let (name, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(name, Some(options), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    return Err(message);
                }
            }
            Err(e) => return Err(engine_error(e)),
        }
    }
    Ok(())
}

/// The engine's own words for a failed call.
pub(crate) fn engine_error(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}
