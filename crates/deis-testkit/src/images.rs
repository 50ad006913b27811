//! Images made for a test: built by the local engine from a Dockerfile on the base image (for
//! example several layers of random bytes), pushed to and pulled from a registry with
//! credentials, and removed; and `skopeo`, which copies images between the engine, OCI layouts
//! and registries.

use std::process::{Command, Output};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use crate::{TestDocker, require};

impl TestDocker {
    /// Builds `dockerfile` (with no other context) as `tag`, labelled for this test. Panics
    /// with the engine's output if the build fails.
    pub async fn build_image(&self, tag: &str, dockerfile: &str) -> String {
        let mut context = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        context
            .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .unwrap_or_else(|e| panic!("cannot make the build context: {e}"));
        let context = context
            .into_inner()
            .unwrap_or_else(|e| panic!("cannot make the build context: {e}"));
        let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
            .t(tag)
            .labels(&self.labels())
            .rm(true)
            .build();
        let steps: Vec<_> = self
            .client()
            .build_image(options, None, Some(bollard::body_full(context.into())))
            .collect()
            .await;
        let failed = steps
            .iter()
            .any(|s| s.as_ref().map_or(true, |i| i.error_detail.is_some()));
        assert!(!failed, "building {tag} failed: {steps:?}");
        tag.to_owned()
    }

    /// An image of `layers` layers of `layer_bytes` random bytes each on the base image,
    /// tagged `deis-test-random-<id>:<layers>x<layer_bytes>`.
    pub async fn random_layers_image(&self, layers: usize, layer_bytes: u64) -> String {
        let base = self.base_image().await;
        let mut dockerfile = format!("FROM {base}\n");
        for i in 0..layers {
            dockerfile.push_str(&format!(
                "RUN head -c {layer_bytes} /dev/urandom > /layer-{i}\n"
            ));
        }
        let tag = format!("deis-test-random-{}:{layers}x{layer_bytes}", self.id());
        self.build_image(&tag, &dockerfile).await
    }
}

impl TestDocker {
    /// Pulls `image` (`repository:tag`) into the engine; the engine's error as text.
    pub async fn pull(
        &self,
        image: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<(), String> {
        let (repository, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let progress = self.client().create_image(Some(options), None, credentials);
        finished(progress, |i| {
            i.error_detail.as_ref().map(|e| format!("{e:?}"))
        })
        .await
    }

    /// Pushes `repository:tag` from the engine; the engine's error as text.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<(), String> {
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let progress = self
            .client()
            .push_image(repository, Some(options), credentials);
        finished(progress, |i| {
            i.error_detail.as_ref().map(|e| format!("{e:?}"))
        })
        .await
    }

    /// Tags `image` as `repository:tag` (for a push to a registry). Panics if it cannot.
    pub async fn tag_image(&self, image: &str, repository: &str, tag: &str) {
        let options = TagImageOptionsBuilder::new()
            .repo(repository)
            .tag(tag)
            .build();
        self.client()
            .tag_image(image, Some(options))
            .await
            .unwrap_or_else(|e| panic!("tagging {image} as {repository}:{tag}: {e}"));
    }

    /// Removes `image` (a tag or an ID) from the engine, forcefully. Panics if it cannot.
    pub async fn remove_image(&self, image: &str) {
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        self.client()
            .remove_image(image, Some(options), None)
            .await
            .unwrap_or_else(|e| panic!("removing {image}: {e}"));
    }
}

/// Drains an engine progress stream: the first error, of the stream or in an item.
async fn finished<T>(
    progress: impl Stream<Item = Result<T, bollard::errors::Error>>,
    error: impl Fn(&T) -> Option<String>,
) -> Result<(), String> {
    let mut progress = std::pin::pin!(progress);
    while let Some(item) = progress.next().await {
        let item = item.map_err(|e| e.to_string())?;
        if let Some(e) = error(&item) {
            return Err(e);
        }
    }
    Ok(())
}

/// Runs `skopeo` with `args` and returns its output; panics with the command that installs
/// it when it is missing.
pub fn skopeo(args: &[&str]) -> Output {
    let bin = require("skopeo", "skopeo");
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run skopeo {args:?}: {e}"))
}
