//! The Docker engine the controller moves images with for `deis pull` (see `domain::pull`):
//! connected on first use, so a controller that only records desired state starts without
//! one. Each call reads the engine's progress to its end without showing it, and fails with
//! the engine's own words (`DockerError`).

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use deis_docker::{Docker, DockerError};
use futures_util::{Stream, StreamExt};
use tokio::sync::OnceCell;

/// The engine and the rules of the copies made with it.
pub(crate) struct Images {
    /// The engine's URL (empty: the local engine or `DOCKER_HOST`).
    url: String,
    docker: OnceCell<Docker>,
    /// How long one `deis pull` may take.
    pub(crate) timeout: Duration,
    /// Whether the scheduler runs containers (so the engine must have the images it runs).
    pub(crate) runs_containers: bool,
}

impl Images {
    pub(crate) fn new(url: String, timeout: Duration, runs_containers: bool) -> Images {
        Images {
            url,
            docker: OnceCell::new(),
            timeout,
            runs_containers,
        }
    }

    /// The engine, connected now if it was not yet (a failed connection is tried again next
    /// time).
    async fn docker(&self) -> Result<&Docker, DockerError> {
        self.docker
            .get_or_try_init(|| deis_docker::connect(&self.url))
            .await
    }

    /// The ID (`sha256:...`) of `image` if the engine has it.
    pub(crate) async fn id(&self, image: &str) -> Result<Option<String>, DockerError> {
        match self.docker().await?.inspect_image(image).await {
            Ok(inspected) => Ok(inspected.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(DockerError::call(format!("inspecting {image}"), e)),
        }
    }

    /// Pulls `image` from its registry, anonymously.
    pub(crate) async fn pull(&self, image: &str) -> Result<(), DockerError> {
        let (repository, tag) = deis_docker::split_reference(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let progress = self.docker().await?.create_image(Some(options), None, None);
        drain(progress, || format!("pulling {image}")).await
    }

    /// Tags `image` as `target` (`repository:tag`).
    pub(crate) async fn tag(&self, image: &str, target: &str) -> Result<(), DockerError> {
        let (repository, tag) = deis_docker::split_reference(target);
        let options = TagImageOptionsBuilder::new()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker()
            .await?
            .tag_image(image, Some(options))
            .await
            .map_err(|e| DockerError::call(format!("tagging {image} as {target}"), e))
    }

    /// Pushes `image` (`registry/repository:tag`) to its registry with `credentials`.
    pub(crate) async fn push(
        &self,
        image: &str,
        credentials: DockerCredentials,
    ) -> Result<(), DockerError> {
        let (repository, tag) = deis_docker::split_reference(image);
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let progress =
            self.docker()
                .await?
                .push_image(repository, Some(options), Some(credentials));
        drain(progress, || format!("pushing {image}")).await
    }
}

/// Reads an engine's progress to its end: the first failure (bollard turns an item's
/// `errorDetail` into one) is the call's.
async fn drain<T>(
    progress: impl Stream<Item = Result<T, bollard::errors::Error>>,
    what: impl Fn() -> String,
) -> Result<(), DockerError> {
    let mut progress = std::pin::pin!(progress);
    while let Some(item) = progress.next().await {
        item.map_err(|e| DockerError::call(what(), e))?;
    }
    Ok(())
}
