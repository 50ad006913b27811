//! Containers on the engine: naming, labels, limits, ports, and their life cycle.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HostConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use deis_types::{AppName, ContainerName};
use futures_util::StreamExt;

use deis_docker::labels::{
    APP as LABEL_APP, ENGINE as LABEL_ENGINE, PORT as LABEL_PORT, RUN as LABEL_RUN,
};

use super::{DockerConfig, EngineEndpoint, docker_error};
use crate::container_spec::{ContainerSpec, DEFAULT_PORT};
use crate::pull::Pulls;
use crate::spec::{ContainerState, ReleaseSpec, SchedulerError};

/// The most output a one-off `run` returns (the log keeps all of it).
const RUN_OUTPUT_MAX: usize = 4 << 20;

/// A container of an app as the engine reports it.
#[derive(Debug, Clone)]
pub(crate) struct Existing {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) running: bool,
    pub(crate) is_run: bool,
    /// When it was created (seconds since the epoch).
    pub(crate) created: i64,
    pub(crate) host_port: Option<u16>,
    /// The index of its engine.
    pub(crate) engine: usize,
}

/// The engine, as the scheduler uses it.
pub(crate) struct Engine {
    docker: Docker,
    config: DockerConfig,
    index: usize,
    endpoint: EngineEndpoint,
    tasks: crate::tasks::Tasks,
    pulls: Pulls,
}

impl Engine {
    pub(crate) fn new(
        docker: Docker,
        config: DockerConfig,
        index: usize,
        endpoint: EngineEndpoint,
        tasks: crate::tasks::Tasks,
        pulls: Pulls,
    ) -> Self {
        Engine {
            docker,
            config,
            index,
            endpoint,
            tasks,
            pulls,
        }
    }

    fn labels(&self, app: &AppName) -> HashMap<String, String> {
        let mut labels = self.config.extra_labels.clone();
        labels.insert(LABEL_APP.into(), app.to_string());
        labels.insert(LABEL_ENGINE.into(), self.index.to_string());
        labels
    }

    /// Whether this is the engine of this host (its bridge addresses are reachable).
    pub(crate) fn is_local(&self) -> bool {
        self.endpoint.url.is_empty() || self.endpoint.url.starts_with("unix://")
    }

    /// The route of a container published on `port`.
    pub(crate) fn route(&self, port: u16) -> String {
        format!("{}:{port}", self.endpoint.advertise_host)
    }

    /// Where to probe a host port from here.
    pub(crate) fn probe_host(&self) -> String {
        if self.endpoint.bind_ip == "0.0.0.0" {
            self.endpoint.advertise_host.clone()
        } else {
            self.endpoint.bind_ip.clone()
        }
    }

    /// What the scheduler reads from `app`'s `image`, pulled onto this engine first if it
    /// does not have it.
    pub(crate) async fn image_facts(
        &self,
        app: &AppName,
        image: &str,
    ) -> Result<crate::container_spec::ImageFacts, SchedulerError> {
        self.pulls.image_facts(&self.docker, app, image).await
    }

    /// Creates (does not start) the container `name` for `release`.
    pub(crate) async fn create(
        &self,
        name: &ContainerName,
        release: &ReleaseSpec,
    ) -> Result<String, SchedulerError> {
        let facts = self.image_facts(&name.app, &release.image).await?;
        let spec = ContainerSpec::new(
            &name.app,
            release,
            name.process_type.as_str(),
            &facts,
            &self.labels(&name.app),
            &self.config.limits,
        );
        let key = format!("{}/tcp", spec.port);
        let host_config = HostConfig {
            // An init process as PID 1 forwards SIGTERM to the app (which, as PID 1, would
            // ignore it) and reaps zombies.
            init: Some(true),
            memory: spec.memory,
            pids_limit: spec.pids,
            log_config: Some(self.config.limits.log_config()),
            network_mode: self.config.network.clone(),
            cpu_shares: spec.cpu_shares.map(i64::from),
            // The supervisor restarts dead containers, with back-off for crash loops.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            port_bindings: spec.traffic.then(|| {
                HashMap::from([(
                    key.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some(self.endpoint.bind_ip.clone()),
                        host_port: Some(String::new()),
                    }]),
                )])
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image),
            cmd: spec.command,
            env: Some(spec.env),
            labels: Some(spec.labels),
            exposed_ports: spec.traffic.then(|| vec![key.clone()]),
            host_config: Some(host_config),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&name.to_string())
                        .build(),
                ),
                body,
            )
            .await
            .map_err(|e| docker_error(&format!("{name} (create)"), e))?;
        Ok(created.id)
    }

    /// The engine client.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// A container's environment.
    pub(crate) async fn env(&self, id: &str) -> Result<HashMap<String, String>, SchedulerError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| docker_error(&format!("{id} (inspect)"), e))?;
        Ok(inspected
            .config
            .and_then(|c| c.env)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect())
    }

    pub(crate) async fn start(&self, id: &str) -> Result<(), SchedulerError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| docker_error(&format!("{id} (start)"), e))
    }

    /// A container as the engine describes it, and the port its process listens on.
    async fn inspect_with_port(
        &self,
        id: &str,
    ) -> Result<(bollard::models::ContainerInspectResponse, u16), SchedulerError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| docker_error(&format!("{id} (inspect)"), e))?;
        let port = inspected
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_PORT).and_then(|p| p.parse().ok()))
            .unwrap_or(DEFAULT_PORT);
        Ok((inspected, port))
    }

    /// The host port a container's traffic port is published on, once it runs.
    pub(crate) async fn host_port(&self, id: &str) -> Result<Option<u16>, SchedulerError> {
        let (inspected, port) = self.inspect_with_port(id).await?;
        Ok(inspected
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
            .and_then(|bindings| {
                bindings
                    .into_iter()
                    .find_map(|b| b.host_port.and_then(|p| p.parse().ok()))
            }))
    }

    /// Where the app listens inside the container, as reachable from this host (its bridge IP
    /// and its own port). Probing there tells whether the app itself accepts connections,
    /// where the host port would be answered by Docker's proxy alone.
    pub(crate) async fn inner_addr(
        &self,
        id: &str,
    ) -> Result<Option<(String, u16)>, SchedulerError> {
        let (inspected, port) = self.inspect_with_port(id).await?;
        let ip = inspected.network_settings.and_then(|n| {
            n.networks
                .unwrap_or_default()
                .into_values()
                .find_map(|net| net.ip_address.filter(|ip| !ip.is_empty()))
        });
        Ok(ip.map(|ip| (ip, port)))
    }

    /// Whether the container is running now.
    pub(crate) async fn is_running(&self, id: &str) -> bool {
        self.docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// Every container of the app, running or not.
    pub(crate) async fn list(&self, app: &AppName) -> Result<Vec<Existing>, SchedulerError> {
        let labels = [
            deis_docker::labels::filter(LABEL_APP, app.as_str()),
            deis_docker::labels::filter(LABEL_ENGINE, &self.index.to_string()),
        ];
        let listed = deis_docker::list_labelled(&self.docker, &labels, true).await?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                let labels = c.labels.unwrap_or_default();
                let port = labels.get(LABEL_PORT).cloned();
                let host_port = c.ports.unwrap_or_default().into_iter().find_map(|p| {
                    (Some(p.private_port.to_string()) == port)
                        .then_some(p.public_port)
                        .flatten()
                });
                Some(Existing {
                    id: c.id?,
                    name,
                    running: c.state.is_some_and(|s| s.to_string() == "running"),
                    is_run: labels.get(LABEL_RUN).is_some_and(|v| v == "true"),
                    created: c.created.unwrap_or(0),
                    host_port,
                    engine: self.index,
                })
            })
            .collect())
    }

    /// Removes the images the builder made for `app` (`{app}:git-*`, and `*/{app}:git-*` pushed
    /// to a registry), once its containers are gone: never another image that merely shares the
    /// name (an app called `redis` leaves `redis:7` alone). One still in use is left alone.
    pub(crate) async fn remove_app_images(&self, app: &AppName) {
        let references = vec![app.as_str().to_owned(), format!("*/{}", app.as_str())];
        let Ok(images) = deis_docker::list_images(&self.docker, &[("reference", references)]).await
        else {
            return;
        };
        for image in images {
            for tag in image.repo_tags.into_iter().filter(|t| made_for(app, t)) {
                if let Err(e) = self
                    .docker
                    .remove_image(
                        &tag,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await
                {
                    tracing::warn!(image = %tag, error = %e, "Removing an app image failed");
                }
            }
        }
    }

    /// Removes a container whatever its state.
    pub(crate) async fn remove(&self, id_or_name: &str) -> Result<(), SchedulerError> {
        Ok(deis_docker::remove_container(&self.docker, id_or_name).await?)
    }

    /// Stops a container (SIGTERM, then SIGKILL after the stop timeout) and removes it.
    pub(crate) async fn stop_and_remove(&self, id: &str) -> Result<(), SchedulerError> {
        let t = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(10);
        match self
            .docker
            .stop_container(id, Some(StopContainerOptionsBuilder::new().t(t).build()))
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => {}
            Err(e) => return Err(docker_error(&format!("{id} (stop)"), e)),
        }
        self.remove(id).await
    }

    /// Restarts a container; its new host port, if it has one.
    pub(crate) async fn restart(&self, name: &str) -> Result<Option<u16>, SchedulerError> {
        let t = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(10);
        self.docker
            .restart_container(
                name,
                Some(RestartContainerOptionsBuilder::new().t(t).build()),
            )
            .await
            .map_err(|e| docker_error(&format!("{name} (restart)"), e))?;
        self.host_port(name).await
    }

    pub(crate) async fn state(&self, name: &str) -> ContainerState {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => {
                let state = c.state.unwrap_or_default();
                match state.status {
                    Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Up,
                    Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Crashed,
                    Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
                    Some(ContainerStateStatusEnum::EXITED) if state.exit_code.unwrap_or(0) != 0 => {
                        ContainerState::Crashed
                    }
                    Some(ContainerStateStatusEnum::EXITED) => ContainerState::Down,
                    Some(ContainerStateStatusEnum::DEAD | ContainerStateStatusEnum::REMOVING) => {
                        ContainerState::Destroyed
                    }
                    _ => ContainerState::Error,
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => ContainerState::Destroyed,
            Err(_) => ContainerState::Error,
        }
    }

    /// Runs `command` in a one-off container of the release and removes it afterwards.
    pub(crate) async fn run_once(
        &self,
        app: &AppName,
        release: &ReleaseSpec,
        command: &str,
    ) -> Result<(i32, String), SchedulerError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{app}_v{}.run.{}", release.version, nanos % 1_000_000 + 1);
        let mut labels = self.labels(app);
        labels.insert(LABEL_RUN.into(), "true".into());
        let facts = self.image_facts(app, &release.image).await?;
        let spec = ContainerSpec::new(app, release, "run", &facts, &labels, &self.config.limits);
        let body = ContainerCreateBody {
            image: Some(spec.image),
            cmd: Some(crate::spec::shell_command(command)),
            env: Some(spec.env),
            labels: Some(spec.labels),
            host_config: Some(HostConfig {
                init: Some(true),
                memory: spec.memory,
                pids_limit: spec.pids,
                log_config: Some(self.config.limits.log_config()),
                network_mode: self.config.network.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| docker_error(&format!("{name} (run)"), e))?;
        let outcome = async {
            // Attached before it starts, so the output is read as it is written and whole:
            // the stream ends when the container's output closes. Not with `logs`: the engine
            // attaches the streams before it answers, then replays the log, so output written
            // in between came twice.
            let attached = self
                .docker
                .attach_container(
                    &created.id,
                    Some(
                        bollard::query_parameters::AttachContainerOptionsBuilder::new()
                            .stdout(true)
                            .stderr(true)
                            .stream(true)
                            .logs(false)
                            .build(),
                    ),
                )
                .await
                .map_err(|e| docker_error(&format!("{name} (attach)"), e))?;
            self.start(&created.id).await?;
            tokio::time::timeout(self.config.run_timeout, async {
                let mut output = attached.output;
                let mut text = Vec::new();
                let mut cut = false;
                while let Some(item) = output.next().await {
                    let Ok(chunk) = item else { break };
                    let bytes = chunk.into_bytes();
                    let room = RUN_OUTPUT_MAX.saturating_sub(text.len());
                    cut |= bytes.len() > room;
                    text.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                let mut text = String::from_utf8_lossy(&text).into_owned();
                if cut {
                    text.push_str(&format!(
                        "\n[output cut at {} MiB; the whole of it is in deis logs]\n",
                        RUN_OUTPUT_MAX >> 20
                    ));
                }
                let mut waits = self.docker.wait_container(&created.id, None);
                let mut code = 0;
                while let Some(item) = waits.next().await {
                    match item {
                        Ok(r) => code = r.status_code,
                        // A non-zero exit is reported as an error carrying the code.
                        Err(bollard::errors::Error::DockerContainerWaitError {
                            code: c, ..
                        }) => code = c,
                        Err(e) => return Err(docker_error(&format!("{name} (run)"), e)),
                    }
                }
                Ok((i32::try_from(code).unwrap_or(-1), text))
            })
            .await
            .map_err(|_| SchedulerError::RunTimedOut {
                container: name.to_string(),
                after: self.config.run_timeout,
            })?
        }
        .await;
        // Nothing is left behind, whatever happened: the container is stopped now (a run that
        // timed out), kept for `run_keep` so that the log shipper reads its last lines, then
        // removed. Should this process end first, the app's next converge removes it.
        let (docker, keep, id) = (self.docker.clone(), self.config.run_keep, created.id);
        let shutdown = self.tasks.shutdown.clone();
        self.tasks.spawn(async move {
            let _ = docker
                .kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>)
                .await;
            tokio::select! {
                // Left for the app's next converge to remove.
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(keep) => {}
            }
            let _ = deis_docker::remove_container(&docker, &id).await;
        });
        outcome
    }
}

/// Whether `tag` names an image the platform made for `app`: a build (`[<registry>/]<app>:git-*`)
/// or a `deis pull` copy in the platform's registry (`<registry>/<app>:pull-*`); never another
/// image that merely shares the name.
fn made_for(app: &AppName, tag: &str) -> bool {
    tag.rsplit_once(':').is_some_and(|(repo, version)| {
        let in_registry = repo.ends_with(&format!("/{}", app.as_str()));
        (version.starts_with("git-") && (repo == app.as_str() || in_registry))
            || (version.starts_with("pull-") && in_registry)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits() {
        for (text, bytes) in [
            ("512M", Some(512 << 20)),
            ("1G", Some(1 << 30)),
            ("20MB", Some(20 << 20)),
            ("100k", Some(100 << 10)),
            ("2048", Some(2048)),
            ("x", None),
            ("1T", None),
        ] {
            assert_eq!(crate::spec::memory_bytes(text), bytes, "{text}");
        }
    }

    #[test]
    fn only_the_platforms_images_of_the_app_are_its_own() {
        let app: AppName = "redis".parse().expect("name");
        for tag in [
            "redis:git-1234567",
            "127.0.0.1:5000/redis:git-1234567",
            "127.0.0.1:5000/redis:pull-0123456789ab",
        ] {
            assert!(made_for(&app, tag), "{tag}");
        }
        for tag in [
            "redis:7",
            "redis:pull-1",
            "127.0.0.1:5000/redis-cache:git-1234567",
            "127.0.0.1:5000/other:pull-0123456789ab",
        ] {
            assert!(!made_for(&app, tag), "{tag}");
        }
    }
}
