//! One build: the pushed commit becomes an image (its Dockerfile, or a buildpack), which is
//! pushed to the registry when there is one, then the controller creates the build and release
//! and deploys it before answering, so "deployed" is printed only once the release serves.

mod buildpack;
mod fetch;
mod image;
pub(crate) mod procfile;

/// The Docker volume an app's buildpack cache lives in.
pub(crate) fn cache_volume(app: &str) -> String {
    format!("deis-cache-{app}")
}

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;

use crate::config::Config;
use crate::controller::{Controller, NewBuild};
use crate::output::Output;
use crate::repo::{Quarantine, Repo};

/// Everything builds share.
pub(crate) struct Builds {
    pub(crate) config: Arc<Config>,
    pub(crate) docker: Docker,
    pub(crate) controller: Controller,
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
        buildpack::remove_leftovers(&self.docker, &self.config.labels).await;
    }

    /// Builds and releases `job`, telling `out` how it goes; the reason on failure.
    pub(crate) async fn run(&self, job: Job<'_>, out: &mut Output) -> Result<(), String> {
        let started = std::time::Instant::now();
        let config = self
            .controller
            .app_config(job.username, job.app)
            .await
            .map_err(|e| format!("the app's config could not be read: {e}"))?;
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
            .await
            .map_err(|e| e.to_string())?;
        let dockerfile_text = job.repo.file(job.sha, "Dockerfile", job.quarantine).await;
        let dockerfile = dockerfile_text.is_some();
        let labels = &self.config.labels;
        if let Some(dockerfile_text) = dockerfile_text {
            // The build runs on the shared engine: it may build on nothing the app could not
            // deploy (another app's build, a platform image, an image ID).
            deis_types::image::check_dockerfile(
                &String::from_utf8_lossy(&dockerfile_text),
                job.app,
            )
            .map_err(|e| format!("the Dockerfile cannot be built: {e}"))?;
            out.step("Building Docker image").await;
            image::build(
                &self.docker,
                futures_util::stream::once(async move { Ok(bytes::Bytes::from(source)) }),
                &image,
                labels,
                image::Limits {
                    memory: self.config.build_memory,
                    network: self.config.network.as_deref(),
                },
                out,
            )
            .await?;
        } else {
            let buildpack = match config.get("BUILDPACK_URL") {
                Some(url) => {
                    let scratch = self.config.data_dir.join("scratch").join(job.app);
                    tokio::fs::create_dir_all(&scratch)
                        .await
                        .map_err(|e| format!("cannot prepare the build: {e}"))?;
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
                    env: &config,
                    buildpack,
                    labels,
                    tag: &image,
                    memory: self.config.build_memory,
                    network: self.config.network.as_deref(),
                },
                out,
            )
            .await?;
            if procfile.is_empty() {
                procfile = defaults;
            }
            let mut types: Vec<&str> = procfile.keys().map(String::as_str).collect();
            types.sort_unstable();
            out.step(&format!("Process types -> {}", types.join(", ")))
                .await;
        }
        if let Some(registry) = &self.config.registry {
            out.step(&format!("Pushing image to {registry}")).await;
            image::push(&self.docker, &image).await?;
        }
        let built = started.elapsed();
        out.step("Launching...").await;
        let (version, domains) = self
            .controller
            .create_build(NewBuild {
                username: job.username.to_owned(),
                app: job.app.to_owned(),
                image,
                sha: job.sha[..job.sha.len().min(8)].to_owned(),
                procfile,
                dockerfile,
            })
            .await
            .map_err(|e| format!("the release could not be deployed: {e}"))?;
        tracing::info!(
            app = job.app,
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
}
