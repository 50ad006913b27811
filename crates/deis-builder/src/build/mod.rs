//! One build: the pushed commit becomes an image (its Dockerfile, or a buildpack), which is
//! pushed to the registry when there is one, then the controller creates the build and release
//! and deploys it before answering, so "deployed" is printed only once the release serves.

mod buildpack;
mod container;
mod fetch;
mod image;
pub(crate) mod procfile;
mod publish;

/// The Docker volume an app's buildpack cache lives in.
pub(crate) fn cache_volume(app: &str) -> String {
    format!("deis-cache-{app}")
}

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use deis_store::ConfigStore;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::Config;
use crate::controller::{Controller, ControllerError, NewBuild};
use crate::output::Output;
use crate::repo::{GitError, Quarantine, Repo};

pub(crate) use buildpack::BuildpackError;
pub(crate) use fetch::FetchError;
pub(crate) use image::ImageError;
pub(crate) use publish::PublishError;

/// Why a push was not built and released; the text follows "Push rejected: " in the pusher's
/// output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("the app's config could not be read: {source}")]
    Config {
        app: String,
        #[source]
        source: ControllerError,
    },
    /// The commit's tree could not be read.
    #[error(transparent)]
    Source(#[from] GitError),
    #[error("the Dockerfile cannot be built: {source}")]
    Dockerfile {
        app: String,
        #[source]
        source: deis_types::image::Refused,
    },
    #[error("cannot prepare the build: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Buildpack(#[from] BuildpackError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the release could not be deployed: {source}")]
    Deploy {
        app: String,
        image: String,
        #[source]
        source: ControllerError,
    },
    #[error("the build took longer than {} s and was stopped", .after.as_secs())]
    TimedOut { app: String, after: Duration },
}

/// How long a push waits for a controller to answer its deploy again after the one it asked
/// went away (a leader's lease lasts 10 s).
const DEPLOY_RETRIES: Duration = Duration::from_secs(30);

/// Everything builds share.
pub(crate) struct Builds {
    pub(crate) config: Arc<Config>,
    pub(crate) docker: Docker,
    /// The config store: the registry's credential.
    pub(crate) store: Arc<dyn ConfigStore>,
    pub(crate) controller: Controller,
    /// The tasks of pushes (SSH sessions, git's pipes, the pre-receive hook, build container
    /// removals), drained when the builder stops.
    pub(crate) tasks: TaskTracker,
}

/// The commit to build and who pushed it.
pub(crate) struct Job<'a> {
    pub(crate) username: &'a str,
    pub(crate) app: &'a str,
    pub(crate) repo: &'a Repo,
    pub(crate) quarantine: &'a Quarantine,
    pub(crate) sha: &'a str,
}

impl Builds {
    /// Removes what a previous run of the builder left behind.
    pub(crate) async fn clean_up(&self) {
        container::remove_leftovers(&self.docker, &self.config.labels).await;
    }

    /// Builds and releases `job` within the build timeout, telling `out` how it goes.
    pub(crate) async fn run(&self, job: Job<'_>, out: &mut Output) -> Result<(), BuildError> {
        let (app, after) = (job.app, self.config.build_timeout);
        match tokio::time::timeout(after, self.build_and_release(job, out)).await {
            Ok(result) => result,
            Err(_) => Err(BuildError::TimedOut {
                app: app.to_owned(),
                after,
            }),
        }
    }

    async fn build_and_release(&self, job: Job<'_>, out: &mut Output) -> Result<(), BuildError> {
        let started = std::time::Instant::now();
        let config = self
            .controller
            .app_config(job.username, job.app)
            .await
            .map_err(|source| BuildError::Config {
                app: job.app.to_owned(),
                source,
            })?;
        let short = &job.sha[..job.sha.len().min(7)];
        let image = match &self.config.registry {
            Some(registry) => format!("{registry}/{}:git-{short}", job.app),
            None => format!("{}:git-{short}", job.app),
        };
        let mut procfile = match job.repo.file(job.sha, "Procfile", job.quarantine).await {
            Some(text) => procfile::parse_procfile(&String::from_utf8_lossy(&text)),
            None => HashMap::new(),
        };
        let source = job
            .repo
            .archive(job.sha, job.quarantine, self.config.max_push_bytes)
            .await?;
        let dockerfile_text = job.repo.file(job.sha, "Dockerfile", job.quarantine).await;
        let dockerfile = dockerfile_text.is_some();
        let span = tracing::info_span!("build", %image, dockerfile);
        async {
            tracing::info!("Building");
            match dockerfile_text {
                Some(text) => {
                    self.with_dockerfile(&job, &text, source, &image, out)
                        .await?
                }
                None => {
                    self.with_buildpack(&job, &config, source, &image, &mut procfile, out)
                        .await?
                }
            }
            if let Some(registry) = &self.config.registry {
                out.step(&format!("Pushing image to {registry}")).await;
                publish::push(&self.docker, self.store.as_ref(), registry, &image, out).await?;
            }
            Ok::<_, BuildError>(())
        }
        .instrument(span)
        .await?;
        let built = started.elapsed();
        out.step("Launching...").await;
        let new = NewBuild {
            username: job.username.to_owned(),
            app: job.app.to_owned(),
            image: image.clone(),
            sha: job.sha[..job.sha.len().min(8)].to_owned(),
            procfile,
            dockerfile,
        };
        // A controller lost while it deploys (another takes the lead within its lease) is
        // asked again: the release it made is deployed, not made twice.
        let deadline = tokio::time::Instant::now() + DEPLOY_RETRIES;
        let (version, domains) = loop {
            match self.controller.create_build(new.clone()).await {
                Ok(made) => break made,
                Err(e) if e.went_away() && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "The controller went away while deploying; asking again");
                    out.raw("       the controller went away; asking again\n")
                        .await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(source) => {
                    return Err(BuildError::Deploy {
                        app: job.app.to_owned(),
                        image,
                        source,
                    });
                }
            }
        };
        tracing::info!(
            version,
            build_secs = built.as_secs_f64(),
            deploy_secs = (started.elapsed() - built).as_secs_f64(),
            "Push built and deployed"
        );
        let url = domains
            .first()
            .map(|d| format!("\n       http://{d}\n"))
            .unwrap_or_default();
        out.raw(&format!(
            "       done, {}:v{version} deployed to Deis\n{url}\n       To learn more, use `deis help`\n\n",
            job.app
        ))
        .await;
        Ok(())
    }

    /// Builds the commit's `Dockerfile` (`text`) as `image`.
    async fn with_dockerfile(
        &self,
        job: &Job<'_>,
        text: &[u8],
        source: Vec<u8>,
        image: &str,
        out: &mut Output,
    ) -> Result<(), BuildError> {
        // The build runs on the shared engine: it may build on nothing the app could not
        // deploy (another app's build, a platform image, an image ID).
        deis_types::image::check_dockerfile(&String::from_utf8_lossy(text), job.app).map_err(
            |source| BuildError::Dockerfile {
                app: job.app.to_owned(),
                source,
            },
        )?;
        out.step("Building Docker image").await;
        image::build(
            &self.docker,
            futures_util::stream::once(async move { Ok(bytes::Bytes::from(source)) }),
            image,
            &self.config.labels,
            image::Limits {
                memory: self.config.build_memory,
                network: self.config.network.as_deref(),
            },
            out,
        )
        .await?;
        Ok(())
    }

    /// Builds the commit with its buildpack as `image`; the buildpack's default process types
    /// fill an empty `procfile`.
    async fn with_buildpack(
        &self,
        job: &Job<'_>,
        config: &HashMap<String, String>,
        source: Vec<u8>,
        image: &str,
        procfile: &mut HashMap<String, String>,
        out: &mut Output,
    ) -> Result<(), BuildError> {
        let buildpack = match config.get("BUILDPACK_URL") {
            Some(url) => {
                let scratch = self.config.data_dir.join("scratch").join(job.app);
                tokio::fs::create_dir_all(&scratch)
                    .await
                    .map_err(|source| BuildError::Prepare {
                        path: scratch.clone(),
                        source,
                    })?;
                Some(
                    fetch::resolve(
                        url,
                        &scratch,
                        &self.config.data_dir,
                        self.config.buildpacks_dir.as_deref(),
                    )
                    .await?,
                )
            }
            None => None,
        };
        let defaults = buildpack::build(
            buildpack::Job {
                docker: &self.docker,
                app: job.app,
                sha: job.sha,
                stack_image: &self.config.stack_image,
                runner_image: self.config.runner_image(),
                source,
                env: config,
                buildpack,
                labels: &self.config.labels,
                tag: image,
                memory: self.config.build_memory,
                network: self.config.network.as_deref(),
                tasks: &self.tasks,
            },
            out,
        )
        .await?;
        if procfile.is_empty() {
            *procfile = defaults;
        }
        let mut types: Vec<&str> = procfile.keys().map(String::as_str).collect();
        types.sort_unstable();
        out.step(&format!("Process types -> {}", types.join(", ")))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::container::ContainerError;

    #[test]
    fn pushers_read_the_reasons_they_always_did() {
        let check = |e: BuildError, expect: &str| assert_eq!(e.to_string(), expect);
        let app = || "shop".to_owned();
        check(
            BuildError::TimedOut {
                app: app(),
                after: Duration::from_secs(8),
            },
            "the build took longer than 8 s and was stopped",
        );
        check(
            BuildError::Config {
                app: app(),
                source: tonic::Status::not_found("no app shop").into(),
            },
            "the app's config could not be read: no app shop",
        );
        check(
            BuildError::Deploy {
                app: app(),
                image: "shop:git-1234567".to_owned(),
                source: tonic::Status::unavailable("connection refused").into(),
            },
            "the release could not be deployed: the controller cannot be reached (connection refused); check that it is running",
        );
        check(
            BuildpackError::Failed {
                app: app(),
                code: 3,
            }
            .into(),
            "the buildpack failed (exit status 3)",
        );
        check(
            BuildpackError::from(ContainerError::TooLarge {
                what: "the slug".to_owned(),
                max: 1 << 30,
            })
            .into(),
            "the slug is larger than 1024 MiB, the most a build may make",
        );
        check(
            FetchError::TooLarge {
                url: "file:///buildpacks/static".to_owned(),
            }
            .into(),
            "the buildpack file:///buildpacks/static takes more than 256 MiB",
        );
    }
}
