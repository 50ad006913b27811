//! Buildpack builds (the Heroku buildpack API): the commit's tree is compiled in a build
//! container on the stack image by the buildpack's `bin/detect`, `bin/compile BUILD_DIR
//! CACHE_DIR ENV_DIR` and `bin/release`; the result (the slug) becomes an image on the runner
//! image that starts the Procfile's commands. The cache directory is a Docker volume per app, kept
//! between pushes. Everything reaches the container through the Docker API (no bind mounts), so
//! the builder may run in a container or on another host than the engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, LogsOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio_util::task::TaskTracker;

use crate::build::container::{
    BUILD_LABEL, ContainerError, RemoveOnDrop, TAR_END, bounded, download, tar_of,
};
use crate::build::fetch::{self, Buildpack};
use crate::build::image::{self, EngineError, ImageError};
use crate::output::Output;

/// Why a buildpack build failed; the text is what the pushing user reads.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildpackError {
    /// The app's cache volume could not be made.
    #[error("{source}")]
    Cache {
        volume: String,
        #[source]
        source: EngineError,
    },
    /// The build container could not be made on the stack image.
    #[error("the stack image {image} cannot be used: {source}")]
    StackImage {
        image: String,
        #[source]
        source: EngineError,
    },
    #[error("uploading to the build container failed: {source}")]
    Upload {
        path: &'static str,
        #[source]
        source: EngineError,
    },
    #[error("the build container did not start: {source}")]
    Start {
        container: String,
        #[source]
        source: EngineError,
    },
    /// The engine did not say how the build container ended.
    #[error("{source}")]
    Wait {
        container: String,
        #[source]
        source: EngineError,
    },
    /// The compile script (detect, compile, release) failed.
    #[error("the buildpack failed (exit status {code})")]
    Failed { app: String, code: i64 },
    /// Files in or out of the build container.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The runner image was not built.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// The build container's script, after the custom buildpack's clone: pick the buildpack,
/// compile in `/app`, release, pack the slug.
const COMPILE: &str = r#"cd /app
if [ -x /build/buildpack/bin/compile ]; then
  bp=/build/buildpack
  name=$(/build/buildpack/bin/detect /app 2>/dev/null) || name=custom
else
  bp=""
  for d in /buildpacks/*; do
    if [ -x "$d/bin/detect" ] && name=$("$d/bin/detect" /app 2>/dev/null); then bp=$d; break; fi
  done
  [ -n "$bp" ] || { echo "-----> Unable to select a buildpack: set BUILDPACK_URL or add a Dockerfile"; exit 1; }
fi
echo "-----> ${name:-custom} app detected"
"$bp/bin/compile" /app /build/cache /build/env
if [ -x "$bp/bin/release" ]; then "$bp/bin/release" /app > /build/release.yml; else : > /build/release.yml; fi
tar -C /app -czf /build/slug.tgz .
echo "-----> Compiled slug size is $(du -sh /build/slug.tgz | cut -f1)"
"#;

/// The runner's entry point: the slug's `.profile.d` scripts, then the process's command.
const INIT: &str = r#"#!/bin/sh
cd /app
if [ -d /app/.profile.d ]; then
  for f in /app/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
fi
[ "$#" -gt 0 ] || { echo "no command to run: add a Procfile with a web process" >&2; exit 1; }
exec "$@"
"#;

/// What a buildpack build needs.
pub(crate) struct Job<'a> {
    pub(crate) docker: &'a Docker,
    pub(crate) app: &'a str,
    pub(crate) sha: &'a str,
    pub(crate) stack_image: &'a str,
    pub(crate) runner_image: &'a str,
    /// The commit's tree, a tar archive.
    pub(crate) source: Vec<u8>,
    /// The app's config.
    pub(crate) env: &'a HashMap<String, String>,
    /// The custom buildpack (from `BUILDPACK_URL`).
    pub(crate) buildpack: Option<Buildpack>,
    pub(crate) labels: &'a HashMap<String, String>,
    pub(crate) tag: &'a str,
    /// Memory of the build's container (bytes).
    pub(crate) memory: i64,
    /// The network it runs on.
    pub(crate) network: Option<&'a str>,
    /// Where the build container's removal runs when the build ends.
    pub(crate) tasks: &'a TaskTracker,
}

/// Processes and threads a build container may run.
pub(crate) const BUILD_PIDS: i64 = 4096;

/// Compiles the slug and builds the runner image tagged `job.tag`; the process types the
/// buildpack declares by default.
pub(crate) async fn build(
    job: Job<'_>,
    out: &mut Output,
) -> Result<HashMap<String, String>, BuildpackError> {
    let cache = super::cache_volume(job.app);
    job.docker
        .create_volume(VolumeCreateRequest {
            name: Some(cache.clone()),
            labels: Some(job.labels.clone()),
            ..Default::default()
        })
        .await
        .map_err(|e| BuildpackError::Cache {
            volume: cache.clone(),
            source: e.into(),
        })?;
    let mut env: Vec<String> = job
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("DEIS_BUILDPACK_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.push(format!("SOURCE_VERSION={}", job.sha));
    env.push("STACK=deis".to_owned());
    env.extend(fetch::clone_env(job.buildpack.as_ref()));
    let script = format!("set -e\n{}{COMPILE}", fetch::clone_script());
    let mut labels = job.labels.clone();
    labels.insert(BUILD_LABEL.to_owned(), "true".to_owned());
    let body = ContainerCreateBody {
        image: Some(job.stack_image.to_owned()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), script]),
        env: Some(env),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some("/build/cache".into()),
                source: Some(cache),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            memory: Some(job.memory),
            pids_limit: Some(BUILD_PIDS),
            network_mode: job.network.map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!(
        "deis-build-{}-{}",
        job.app,
        &job.sha[..job.sha.len().min(12)]
    );
    let created = job
        .docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| BuildpackError::StackImage {
            image: job.stack_image.to_owned(),
            source: e.into(),
        })?;
    tracing::debug!(container = %name, "Build container created");
    // Removed however the build ends, a timeout (this future dropped) included.
    let _container = RemoveOnDrop {
        docker: job.docker.clone(),
        id: created.id.clone(),
        tasks: job.tasks.clone(),
    };
    let release = compile(&job, &created.id, out).await?;
    let types = super::procfile::release_process_types(&release);
    out.step("Building Docker image").await;
    // The context is the Dockerfile and init, then the slug as the engine hands it out of the
    // build container (a tar holding `slug.tgz`): it streams through, whatever its size.
    let mut head = tar_of(&[
        (
            "Dockerfile",
            0o644,
            runner_dockerfile(job.runner_image).as_bytes(),
        ),
        ("init", 0o755, INIT.as_bytes()),
    ])?;
    head.truncate(head.len().saturating_sub(TAR_END));
    let too_big = Arc::new(AtomicBool::new(false));
    let slug = bounded(
        job.docker.download_from_container(
            &created.id,
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path("/build/slug.tgz")
                    .build(),
            ),
        ),
        SLUG_MAX,
        too_big.clone(),
    );
    let context = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(slug);
    let built = image::build(
        job.docker,
        context,
        job.tag,
        job.labels,
        image::Limits {
            memory: job.memory,
            network: job.network,
        },
        out,
    )
    .await;
    if too_big.load(Ordering::Relaxed) {
        return Err(ContainerError::TooLarge {
            what: "the slug".to_owned(),
            max: SLUG_MAX,
        }
        .into());
    }
    built?;
    Ok(types)
}

fn runner_dockerfile(runner: &str) -> String {
    format!(
        "FROM {runner}\nADD slug.tgz /app\nCOPY init /runner/init\nWORKDIR /app\nENV HOME=/app PORT=5000\nENTRYPOINT [\"/runner/init\"]\n"
    )
}

/// Uploads the inputs, runs the compile script with its output shown, and downloads the release
/// YAML.
async fn compile(job: &Job<'_>, id: &str, out: &mut Output) -> Result<String, BuildpackError> {
    let docker = job.docker;
    let upload = |path: &'static str, tar: Vec<u8>| async move {
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| BuildpackError::Upload {
                path,
                source: e.into(),
            })
    };
    let dirs = tar_of(&[
        ("app/", 0o755, b""),
        ("build/env/", 0o755, b""),
        ("build/buildpack/", 0o755, b""),
    ])?;
    upload("/", dirs).await?;
    upload("/app", job.source.clone()).await?;
    let env: Vec<(String, Vec<u8>)> = job
        .env
        .iter()
        .filter(|(k, _)| !k.contains('/') && !k.is_empty())
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let env_files: Vec<(&str, u32, &[u8])> = env
        .iter()
        .map(|(k, v)| (k.as_str(), 0o644, v.as_slice()))
        .collect();
    upload("/build/env", tar_of(&env_files)?).await?;
    if let Some(Buildpack::Local(buildpack)) = &job.buildpack {
        out.step("Fetching custom buildpack").await;
        upload("/build/buildpack", buildpack.clone()).await?;
    }
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|e| BuildpackError::Start {
            container: id.to_owned(),
            source: e.into(),
        })?;
    let mut logs = docker.logs(
        id,
        Some(
            LogsOptionsBuilder::new()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    while let Some(Ok(chunk)) = logs.next().await {
        out.build_output(&String::from_utf8_lossy(&chunk.into_bytes()))
            .await;
    }
    out.finish_build_output().await;
    let code = match docker
        .wait_container(id, Some(WaitContainerOptionsBuilder::new().build()))
        .try_collect::<Vec<_>>()
        .await
    {
        Ok(states) => states.last().map_or(0, |s| s.status_code),
        // A non-zero exit arrives as an error carrying the code.
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => {
            return Err(BuildpackError::Wait {
                container: id.to_owned(),
                source: e.into(),
            });
        }
    };
    if code != 0 {
        return Err(BuildpackError::Failed {
            app: job.app.to_owned(),
            code,
        });
    }
    let release = download(docker, id, "/build/release.yml", 1 << 20).await?;
    Ok(String::from_utf8_lossy(&release).into_owned())
}

/// The largest slug a build may make.
const SLUG_MAX: u64 = 1 << 30;
