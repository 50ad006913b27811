//! What `uninstall platform` takes away once no component's service is left: the apps'
//! services, the certificates' secrets, the hosts' controller labels, and on every host the platform's containers, the apps'
//! images and (unless `--keep-data`) the volumes.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ServiceSpec, ServiceSpecMode, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
    TaskState,
};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveImageOptionsBuilder,
};

use super::{SwarmPlatform, certs, nodes, services};
use crate::Error;
use crate::platform::component::LABEL_PLATFORM;

/// How long a host gets to let go of the containers of removed services.
const SETTLE: Duration = Duration::from_secs(60);

fn ours(prefix: &str) -> std::collections::HashMap<String, Vec<String>> {
    std::collections::HashMap::from([(
        "label".to_owned(),
        vec![deis_docker::labels::filter(LABEL_PLATFORM, prefix)],
    )])
}

pub(super) async fn everything(
    platform: &SwarmPlatform,
    keep_data: bool,
    agent: Option<ServiceSpec>,
) -> Result<(), Error> {
    let prefix = platform.prefix.as_str();
    let docker = &platform.docker;
    let apps = docker
        .list_services(Some(
            ListServicesOptionsBuilder::new()
                .filters(&ours(prefix))
                .build(),
        ))
        .await
        .map_err(|e| Error::Message(format!("cannot list the apps' services: {e}")))?;
    for service in apps {
        let name = service.spec.and_then(|s| s.name).unwrap_or_default();
        if let Some(id) = service.id
            && docker.delete_service(&id).await.is_ok()
        {
            println!("{name}: destroyed");
        }
    }
    if let Some(agent) = agent {
        forget_firewall(platform, agent).await?;
    }
    let mut engines = Vec::new();
    for node in platform.nodes().await? {
        let engine = match platform.access.node_engine(&node).await {
            Ok(engine) => engine,
            Err(e) => {
                println!("{}: not cleaned ({e})", node.machine());
                continue;
            }
        };
        clean_host(&engine, prefix, keep_data, &node.machine()).await?;
        engines.push(engine);
    }
    platform
        .app_network()
        .remove(&engines, docker)
        .await
        .map_err(|e| Error::Message(format!("cannot remove the apps' network: {e}")))?;
    let pin = services::controller_label(prefix);
    for id in nodes::labelled(docker, &pin).await? {
        nodes::set_label(docker, &id, &pin, false).await?;
    }
    if keep_data {
        println!("Kept the data volumes and etcd's certificates (--keep-data).");
    } else {
        certs::remove_all(docker, prefix).await?;
    }
    Ok(())
}

/// Removes this platform's containers, app images and volumes from one host.
async fn clean_host(
    docker: &Docker,
    prefix: &str,
    keep_data: bool,
    machine: &str,
) -> Result<(), Error> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&ours(prefix))
                    .build(),
            ))
            .await
            .map_err(|e| Error::Message(format!("cannot list the containers of {machine}: {e}")))?;
        if containers.is_empty() {
            break;
        }
        for id in containers.into_iter().filter_map(|c| c.id) {
            let _ = deis_docker::remove_container(docker, &id).await;
        }
        if Instant::now() > deadline {
            return Err(Error::Message(format!(
                "containers of the platform are still on {machine} after {} s",
                SETTLE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !keep_data {
        let filters = vec![deis_docker::labels::filter(LABEL_PLATFORM, prefix)];
        if let Ok(images) = deis_docker::list_images(docker, &[("label", filters)]).await {
            for image in images {
                let options = RemoveImageOptionsBuilder::new().force(true).build();
                let _ = docker.remove_image(&image.id, Some(options), None).await;
            }
        }
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new()
                    .filters(&ours(prefix))
                    .build(),
            ))
            .await
            .map_err(|e| Error::Message(format!("cannot list the volumes of {machine}: {e}")))?;
        for volume in volumes.volumes.unwrap_or_default() {
            docker
                .remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
                .map_err(|e| {
                    Error::Message(format!(
                        "cannot remove the volume {} of {machine}: {e}",
                        volume.name
                    ))
                })?;
            println!("{} on {machine}: removed", volume.name);
        }
    }
    Ok(())
}

/// Runs the host agent once on every host (a global job) to take its firewall rules away: they
/// outlive the agent on purpose, so that stopping the platform never opens the hosts to apps.
async fn forget_firewall(platform: &SwarmPlatform, mut spec: ServiceSpec) -> Result<(), Error> {
    let name = format!("{}-host-agent-remove", platform.prefix);
    spec.name = Some(name.clone());
    spec.mode = Some(ServiceSpecMode {
        global_job: Some(HashMap::new()),
        ..Default::default()
    });
    spec.update_config = None;
    if let Some(task) = spec.task_template.as_mut() {
        task.restart_policy = Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
            max_attempts: Some(3),
            ..Default::default()
        });
        if let Some(placement) = task.placement.as_mut() {
            placement.constraints = None;
        }
        if let Some(container) = task.container_spec.as_mut() {
            container.args = Some(vec!["host-agent".to_owned(), "--remove".to_owned()]);
            container.health_check = None;
        }
    }
    let docker = &platform.docker;
    let id = docker
        .create_service(spec, None)
        .await
        .map_err(|e| Error::Message(format!("cannot start {name}: {e}")))?
        .id
        .unwrap_or_else(|| name.clone());
    let hosts = platform.nodes().await?.iter().filter(|n| n.ready).count();
    let filters = HashMap::from([("service".to_owned(), vec![id.clone()])]);
    let deadline = Instant::now() + SETTLE;
    let outcome = loop {
        let tasks = docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| Error::Message(format!("cannot follow {name}: {e}")))?;
        let done = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::COMPLETE))
            .count();
        if done >= hosts {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(Error::Message(format!(
                "the apps' firewall rules were removed on {done} of {hosts} hosts after {} s; see docker service ps {name}",
                SETTLE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = docker.delete_service(&id).await;
    outcome?;
    println!("the apps' firewall rules: removed from {hosts} hosts");
    Ok(())
}
