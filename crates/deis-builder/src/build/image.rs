//! Image builds through the Docker API, with the engine's output shown as it comes.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use crate::output::Output;

/// A Docker engine call that failed, shown in the engine's own words.
#[derive(Debug, thiserror::Error)]
#[error("{}", deis_docker::engine_message(.0))]
pub(crate) struct EngineError(#[from] bollard::errors::Error);

/// Why an image was not built; the text is the engine's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// A step of the build failed (a `RUN` exiting non-zero, a missing base image...).
    #[error("{message}")]
    StepFailed { image: String, message: String },
    /// The engine failed the build call itself.
    #[error("{source}")]
    Build {
        image: String,
        #[source]
        source: EngineError,
    },
}

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
) -> Result<(), ImageError> {
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
    let image = || tag.to_owned();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    out.build_output(&text).await;
                }
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(ImageError::StepFailed {
                        image: image(),
                        message,
                    });
                }
            }
            Err(e) => {
                failure = Some(ImageError::Build {
                    image: image(),
                    source: e.into(),
                })
            }
        }
    }
    out.finish_build_output().await;
    match failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_read_as_the_engine_wrote_them() {
        let check = |e: bollard::errors::Error, expect: &str| {
            assert_eq!(EngineError::from(e).to_string(), expect);
        };
        check(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: "No such image: stack:none".to_owned(),
            },
            "No such image: stack:none",
        );
        check(
            bollard::errors::Error::DockerStreamError {
                error: "unexpected EOF".to_owned(),
            },
            "unexpected EOF",
        );
    }
}
