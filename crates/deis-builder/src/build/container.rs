//! The build container as the builder handles it: labelled so a builder that died mid-build
//! removes it when it starts again, removed when its build ends, and files in and out of it as
//! tar archives (the engine's API has no bind mounts to rely on).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::query_parameters::DownloadFromContainerOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::build::image::EngineError;

/// Why a file did not get in or out of the build container; the text is shown to the pusher.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContainerError {
    #[error("reading {path} from the build container failed: {source}")]
    Download {
        path: String,
        #[source]
        source: EngineError,
    },
    /// A file the build made (the slug, the release YAML) is past its limit.
    #[error("{what} is larger than {} MiB, the most a build may make", .max >> 20)]
    TooLarge { what: String, max: u64 },
    /// What the engine handed out is not a readable tar archive.
    #[error("{source}")]
    Unpack {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is missing from the build container")]
    Missing { path: String },
    /// An archive for the build container could not be made.
    #[error("{0}")]
    Pack(#[source] std::io::Error),
}

/// Marks build containers, so a builder that died mid-build removes them when it starts again.
pub(crate) const BUILD_LABEL: &str = deis_docker::labels::BUILD;

/// Removes build containers a previous run of the builder left behind.
pub(crate) async fn remove_leftovers(docker: &Docker, labels: &HashMap<String, String>) {
    let mut filters = vec![deis_docker::labels::filter(BUILD_LABEL, "true")];
    filters.extend(
        labels
            .iter()
            .map(|(k, v)| deis_docker::labels::filter(k, v)),
    );
    let Ok(containers) = deis_docker::list_labelled(docker, &filters, true).await else {
        return;
    };
    for c in containers {
        if let Some(id) = c.id {
            let _ = deis_docker::remove_container(docker, &id).await;
        }
    }
}

/// Force-removes a build container when dropped (however its build ends, a timeout included),
/// as a task of `tasks`, which the builder drains when it stops.
pub(crate) struct RemoveOnDrop {
    pub(crate) docker: Docker,
    pub(crate) id: String,
    pub(crate) tasks: TaskTracker,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let (docker, id) = (self.docker.clone(), std::mem::take(&mut self.id));
        let removal = async move {
            if let Err(error) = deis_docker::remove_container(&docker, &id).await {
                tracing::warn!(container = %id, %error, "Removing a build container failed");
            }
        };
        self.tasks.spawn(removal.in_current_span());
    }
}

/// The end-of-archive marker `tar::Builder` writes: two empty blocks.
pub(crate) const TAR_END: usize = 1024;

/// `stream` as the engine's build context reads it, ended with an error (and `over` set) once
/// it passed `max` bytes.
pub(crate) fn bounded(
    stream: impl futures_util::Stream<Item = Result<Bytes, bollard::errors::Error>> + Send + 'static,
    max: u64,
    over: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // The tar framing adds a little to the file itself.
    let limit = max.saturating_add(64 * 1024);
    let mut seen = 0u64;
    stream.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("the slug is too large"));
        }
        Ok(chunk)
    })
}

/// One file out of a container, of at most `max` bytes.
pub(crate) async fn download(
    docker: &Docker,
    id: &str,
    path: &str,
    max: u64,
) -> Result<Vec<u8>, ContainerError> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ContainerError::Download {
            path: path.to_owned(),
            source: e.into(),
        })?;
        // The tar framing adds a little to the file itself.
        if (tar.len() + chunk.len()) as u64 > max.saturating_add(64 * 1024) {
            return Err(ContainerError::TooLarge {
                what: path.to_owned(),
                max,
            });
        }
        tar.extend_from_slice(&chunk);
    }
    let unpack = |source| ContainerError::Unpack {
        path: path.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().map_err(unpack)? {
        let mut entry = entry.map_err(unpack)?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).map_err(unpack)?;
            return Ok(data);
        }
    }
    Err(ContainerError::Missing {
        path: path.to_owned(),
    })
}

/// A tar archive of `(path, mode, contents)`; paths ending in `/` are directories.
pub(crate) fn tar_of(files: &[(&str, u32, &[u8])]) -> Result<Vec<u8>, ContainerError> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, mode, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(*mode);
        header.set_mtime(0);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, path, std::io::empty())
                .map_err(ContainerError::Pack)?;
        } else {
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, path, *data)
                .map_err(ContainerError::Pack)?;
        }
    }
    builder.into_inner().map_err(ContainerError::Pack)
}
