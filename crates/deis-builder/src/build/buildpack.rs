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
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::build::fetch::{self, Buildpack};
use crate::build::image::{self, engine_error};
use crate::output::Output;

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

/// Marks build containers, so a builder that died mid-build removes them when it starts again.
pub(crate) const BUILD_LABEL: &str = "deis.build";

/// Removes build containers a previous run of the builder left behind.
pub(crate) async fn remove_leftovers(docker: &Docker, labels: &HashMap<String, String>) {
    let mut filters = vec![format!("{BUILD_LABEL}=true")];
    filters.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([("label".to_owned(), filters)]))
        .build();
    let Ok(containers) = docker.list_containers(Some(options)).await else {
        return;
    };
    for c in containers {
        if let Some(id) = c.id {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
}

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
}

/// Processes and threads a build container may run.
pub(crate) const BUILD_PIDS: i64 = 4096;

/// Compiles the slug and builds the runner image tagged `job.tag`; the process types the
/// buildpack declares by default.
pub(crate) async fn build(
    job: Job<'_>,
    out: &mut Output,
) -> Result<HashMap<String, String>, String> {
    let cache = super::cache_volume(job.app);
    job.docker
        .create_volume(VolumeCreateRequest {
            name: Some(cache.clone()),
            labels: Some(job.labels.clone()),
            ..Default::default()
        })
        .await
        .map_err(engine_error)?;
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
        .map_err(|e| {
            format!(
                "the stack image {} cannot be used: {}",
                job.stack_image,
                engine_error(e)
            )
        })?;
    // Removed however the build ends, a timeout (this future dropped) included.
    let _container = RemoveOnDrop {
        docker: job.docker.clone(),
        id: created.id.clone(),
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
        return Err(format!(
            "the slug is larger than {} MiB, the most a build may make",
            SLUG_MAX >> 20
        ));
    }
    built?;
    Ok(types)
}

/// The end-of-archive marker `tar::Builder` writes: two empty blocks.
const TAR_END: usize = 1024;

/// `stream` as the engine's build context reads it, ended with an error (and `over` set) once
/// it passed `max` bytes.
fn bounded(
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

/// Force-removes a build container when dropped.
struct RemoveOnDrop {
    docker: Docker,
    id: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let (docker, id) = (self.docker.clone(), std::mem::take(&mut self.id));
        tokio::spawn(async move {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(&id, Some(options)).await;
        });
    }
}

fn runner_dockerfile(runner: &str) -> String {
    format!(
        "FROM {runner}\nADD slug.tgz /app\nCOPY init /runner/init\nWORKDIR /app\nENV HOME=/app PORT=5000\nENTRYPOINT [\"/runner/init\"]\n"
    )
}

/// Uploads the inputs, runs the compile script with its output shown, and downloads the release
/// YAML.
async fn compile(job: &Job<'_>, id: &str, out: &mut Output) -> Result<String, String> {
    let docker = job.docker;
    let upload = |path: &'static str, tar: Vec<u8>| async move {
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| {
                format!(
                    "uploading to the build container failed: {}",
                    engine_error(e)
                )
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
        .map_err(|e| format!("the build container did not start: {}", engine_error(e)))?;
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
        Err(e) => return Err(engine_error(e)),
    };
    if code != 0 {
        return Err(format!("the buildpack failed (exit status {code})"));
    }
    let release = download(docker, id, "/build/release.yml", 1 << 20).await?;
    Ok(String::from_utf8_lossy(&release).into_owned())
}

/// The largest slug a build may make.
const SLUG_MAX: u64 = 1 << 30;

/// One file out of a container, of at most `max` bytes.
async fn download(docker: &Docker, id: &str, path: &str, max: u64) -> Result<Vec<u8>, String> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            format!(
                "reading {path} from the build container failed: {}",
                engine_error(e)
            )
        })?;
        // The tar framing adds a little to the file itself.
        if (tar.len() + chunk.len()) as u64 > max.saturating_add(64 * 1024) {
            return Err(format!(
                "{path} is larger than {} MiB, the most a build may make",
                max >> 20
            ));
        }
        tar.extend_from_slice(&chunk);
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).map_err(|e| e.to_string())?;
            return Ok(data);
        }
    }
    Err(format!("{path} is missing from the build container"))
}

/// A tar archive of `(path, mode, contents)`; paths ending in `/` are directories.
pub(crate) fn tar_of(files: &[(&str, u32, &[u8])]) -> Result<Vec<u8>, String> {
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
                .map_err(|e| e.to_string())?;
        } else {
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, path, *data)
                .map_err(|e| e.to_string())?;
        }
    }
    builder.into_inner().map_err(|e| e.to_string())
}
