//! The Docker engine deisctl runs the platform on (`DOCKER_HOST`, else the local socket): the
//! few calls it needs, with errors that say what to do.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use super::component::{LABEL_PLATFORM, Unit};
use crate::Error;

/// A connected engine and the platform (label value) deisctl looks after on it.
pub(crate) struct Engine {
    docker: Docker,
    pub(crate) prefix: String,
}

/// Where the engine is, for messages.
pub(crate) fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
}

fn failed(what: &str, e: bollard::errors::Error) -> Error {
    Error::Message(format!("Docker could not {what}: {e}"))
}

/// Whether Docker said 404.
pub(crate) fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// The isolated network this platform's app containers run on (see
    /// `deis_scheduler::AppNetwork`), open to the host only on the router's ports.
    pub(crate) fn app_network(&self, router_ports: &[u16]) -> deis_scheduler::AppNetwork {
        let name = format!("{}-apps", self.prefix);
        deis_scheduler::AppNetwork::new(&name, &deis_scheduler::bridge_name(&name), router_ports)
    }

    /// Makes the app network and its firewall rules.
    pub(crate) async fn isolate_apps(
        &self,
        network: &deis_scheduler::AppNetwork,
    ) -> Result<(), Error> {
        let labels = HashMap::from([(LABEL_PLATFORM.to_owned(), self.prefix.clone())]);
        network
            .set_up(&self.docker, &labels)
            .await
            .map_err(|e| Error::Message(e.to_string()))
    }

    /// Removes the app network's firewall rules and the network.
    pub(crate) async fn remove_app_network(&self) {
        self.app_network(&[]).tear_down(&self.docker).await;
    }

    /// Connects and checks that the engine answers.
    pub(crate) async fn connect(prefix: &str) -> Result<Engine, Error> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::Message(format!(
                "cannot reach the Docker engine at {} ({e}); start Docker or set DOCKER_HOST",
                docker_host()
            ))
        };
        let docker = deis_docker::connect("").await.map_err(|e| match e {
            deis_docker::DockerError::Unreachable { source, .. } => unreachable(&source),
            other => unreachable(&other),
        })?;
        docker.ping().await.map_err(|e| unreachable(&e))?;
        Ok(Engine {
            docker,
            prefix: prefix.to_owned(),
        })
    }

    /// This platform's containers of `units`' kind, by unit (platform components only).
    pub(crate) async fn units(&self) -> Result<Vec<(Unit, ContainerInspectResponse)>, Error> {
        let mut found = Vec::new();
        for id in self
            .container_ids(&[super::component::LABEL_COMPONENT])
            .await?
        {
            let Some(inspected) = self.inspect(&id).await? else {
                continue;
            };
            let labels = inspected
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            if let Some(unit) = Unit::from_labels(&labels) {
                found.push((unit, inspected));
            }
        }
        found.sort_by_key(|(unit, _)| *unit);
        Ok(found)
    }

    /// Ids of this platform's containers that carry every one of `labels` too.
    pub(crate) async fn container_ids(&self, labels: &[&str]) -> Result<Vec<String>, Error> {
        let mut filter = vec![deis_docker::labels::filter(LABEL_PLATFORM, &self.prefix)];
        filter.extend(labels.iter().map(|l| (*l).to_owned()));
        let list = deis_docker::list_labelled(&self.docker, &filter, true)
            .await
            .map_err(|e| Error::Message(e.to_string()))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    pub(crate) async fn inspect(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, Error> {
        match self.docker.inspect_container(id, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(failed(&format!("inspect {id}"), e)),
        }
    }

    pub(crate) async fn has_image(&self, image: &str) -> Result<bool, Error> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(failed(&format!("inspect image {image}"), e)),
        }
    }

    pub(crate) async fn create_volume(&self, name: &str) -> Result<(), Error> {
        let labels = HashMap::from([(LABEL_PLATFORM.to_owned(), self.prefix.clone())]);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| failed(&format!("create volume {name}"), e))
    }

    /// This platform's volumes (its components' and the ones its builder made for apps).
    pub(crate) async fn volumes(&self) -> Result<Vec<String>, Error> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_PLATFORM}={}", self.prefix)],
        )]);
        let list = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| failed("list volumes", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Removes the images the builder made for this platform's apps (they carry its label);
    /// one still in use stays.
    pub(crate) async fn remove_app_images(&self) {
        let ours = vec![deis_docker::labels::filter(LABEL_PLATFORM, &self.prefix)];
        let Ok(images) = deis_docker::list_images(&self.docker, &[("label", ours)]).await else {
            return;
        };
        for image in images {
            let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                .force(true)
                .build();
            if self
                .docker
                .remove_image(&image.id, Some(options), None)
                .await
                .is_ok()
            {
                println!(
                    "{}: removed",
                    image
                        .repo_tags
                        .first()
                        .map_or(image.id.as_str(), String::as_str)
                );
            }
        }
    }

    pub(crate) async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(failed(&format!("remove volume {name}"), e)),
        }
    }

    pub(crate) async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<(), Error> {
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                body,
            )
            .await
            .map(|_| ())
            .map_err(|e| failed(&format!("create {name}"), e))
    }

    pub(crate) async fn start(&self, name: &str) -> Result<(), Error> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| failed(&format!("start {name}"), e))
    }

    /// Stops a container, giving it `seconds` to exit; a missing or stopped one is fine.
    pub(crate) async fn stop(&self, name: &str, seconds: i32) -> Result<(), Error> {
        match self
            .docker
            .stop_container(
                name,
                Some(StopContainerOptionsBuilder::new().t(seconds).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304 | 404,
                ..
            }) => Ok(()),
            Err(e) => Err(failed(&format!("stop {name}"), e)),
        }
    }

    /// Removes a container, running or not; a missing one is fine.
    pub(crate) async fn remove(&self, name: &str) -> Result<(), Error> {
        deis_docker::remove_container(&self.docker, name)
            .await
            .map_err(|e| Error::Message(e.to_string()))
    }

    /// The container's output: the last `tail` lines, then new ones if `follow`.
    pub(crate) fn logs(
        &self,
        name: &str,
        tail: usize,
        follow: bool,
    ) -> impl Stream<Item = Result<bytes::Bytes, Error>> + use<> {
        let name = name.to_owned();
        self.docker
            .logs(
                &name,
                Some(
                    LogsOptionsBuilder::new()
                        .stdout(true)
                        .stderr(true)
                        .follow(follow)
                        .tail(&tail.to_string())
                        .build(),
                ),
            )
            .map(move |chunk| {
                chunk
                    .map(|c| c.into_bytes())
                    .map_err(|e| failed(&format!("read the log of {name}"), e))
            })
    }

    /// The engine's host name, for `list`'s MACHINE column.
    pub(crate) async fn machine(&self) -> String {
        match self.docker.info().await {
            Ok(info) => info.name.unwrap_or_else(|| "localhost".to_owned()),
            Err(_) => "localhost".to_owned(),
        }
    }
}
