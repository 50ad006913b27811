//! One description of an app container, from which the Docker backend makes a container and
//! the Swarm backend a service's task: the image, the command, the environment (with `PORT`),
//! the labels, the limits, and whether it takes traffic. Both backends learn the port from the
//! image the same way: its lowest exposed TCP port, else 5000.

use std::collections::HashMap;

use bollard::Docker;
use deis_docker::labels;
use deis_types::AppName;

use crate::spec::{ContainerLimits, ReleaseSpec, SchedulerError};

/// The port a container listens on when its image exposes none.
pub(crate) const DEFAULT_PORT: u16 = 5000;

/// What the scheduler reads from an image.
pub(crate) struct ImageFacts {
    /// The port its process listens on.
    pub(crate) port: u16,
    /// The `deis.*` labels it carries (blanked on its containers).
    pub(crate) our_labels: Vec<String>,
}

/// Inspects `image` on `docker`.
pub(crate) async fn image_facts(
    docker: &Docker,
    image: &str,
) -> Result<ImageFacts, SchedulerError> {
    let inspected = docker
        .inspect_image(image)
        .await
        .map_err(|e| SchedulerError::docker(format!("image {image} is not available"), e))?;
    let config = inspected.config.unwrap_or_default();
    let port = config
        .exposed_ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.strip_suffix("/tcp").and_then(|n| n.parse().ok()))
        .min()
        .unwrap_or(DEFAULT_PORT);
    let our_labels = config
        .labels
        .unwrap_or_default()
        .into_keys()
        .filter(|k| labels::is_ours(k))
        .collect();
    Ok(ImageFacts { port, our_labels })
}

/// An app container as both backends run it.
pub(crate) struct ContainerSpec {
    pub(crate) image: String,
    /// The Procfile command through the image's shell; the image's own when absent.
    pub(crate) command: Option<Vec<String>>,
    /// The release's config, then `PORT`.
    pub(crate) env: Vec<String>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) port: u16,
    /// Whether the router sends it requests (its port is published).
    pub(crate) traffic: bool,
    /// Bytes.
    pub(crate) memory: Option<i64>,
    pub(crate) pids: Option<i64>,
    pub(crate) cpu_shares: Option<u32>,
    /// Placement tags as Swarm constraints (`node.labels.<tag>==<value>`).
    pub(crate) constraints: Vec<String>,
}

impl ContainerSpec {
    /// The container of type `ptype` of `app`'s `release`, on an image with `facts`, with the
    /// installation's `extra_labels` and the operator's `limits`.
    pub(crate) fn new(
        app: &AppName,
        release: &ReleaseSpec,
        ptype: &str,
        facts: &ImageFacts,
        extra_labels: &HashMap<String, String>,
        limits: &ContainerLimits,
    ) -> ContainerSpec {
        let mut env: Vec<String> = release
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!("PORT={}", facts.port));
        let mut container_labels = extra_labels.clone();
        container_labels.insert(labels::APP.into(), app.to_string());
        container_labels.insert(labels::RELEASE.into(), format!("v{}", release.version));
        container_labels.insert(labels::TYPE.into(), ptype.to_owned());
        container_labels.insert(labels::PORT.into(), facts.port.to_string());
        // An image's own `deis.*` labels would pass to the container and could make the
        // platform misread it (a one-off, a platform component): each is blanked.
        for key in &facts.our_labels {
            container_labels.entry(key.clone()).or_default();
        }
        ContainerSpec {
            image: release.image.clone(),
            command: release
                .commands
                .get(ptype)
                .map(|c| crate::spec::shell_command(c)),
            env,
            labels: container_labels,
            port: facts.port,
            traffic: labels::takes_traffic(ptype),
            memory: limits.memory(release, ptype),
            pids: limits.pids,
            cpu_shares: release.cpu.get(ptype).copied(),
            constraints: release
                .tags
                .iter()
                .map(|(k, v)| format!("node.labels.{k}=={v}"))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_get_the_images_port_and_blank_its_labels() {
        let app: AppName = "shop".parse().expect("name");
        let release = ReleaseSpec {
            version: 3,
            image: "shop:git-1".into(),
            env: [("GREETING".to_owned(), "hi".to_owned())].into(),
            commands: [("worker".to_owned(), "run-worker".to_owned())].into(),
            memory: [("web".to_owned(), "64M".to_owned())].into(),
            cpu: [("web".to_owned(), 512)].into(),
            tags: [("zone".to_owned(), "a".to_owned())].into(),
        };
        let facts = ImageFacts {
            port: 8080,
            our_labels: vec!["deis.run".into()],
        };
        let limits = ContainerLimits::default();
        let web = ContainerSpec::new(&app, &release, "web", &facts, &HashMap::new(), &limits);
        assert!(web.traffic);
        assert_eq!(web.env, ["GREETING=hi", "PORT=8080"]);
        assert_eq!(web.labels.get(labels::RUN).map(String::as_str), Some(""));
        assert_eq!(
            web.labels.get(labels::RELEASE).map(String::as_str),
            Some("v3")
        );
        assert_eq!(web.memory, Some(64 << 20));
        assert_eq!(web.cpu_shares, Some(512));
        assert_eq!(web.constraints, ["node.labels.zone==a"]);
        assert!(web.command.is_none(), "the image's own command");
        let worker = ContainerSpec::new(&app, &release, "worker", &facts, &HashMap::new(), &limits);
        assert!(!worker.traffic);
        assert_eq!(worker.memory, limits.default_memory);
        assert!(
            worker
                .command
                .is_some_and(|c| c.last().is_some_and(|c| c == "run-worker"))
        );
    }
}
