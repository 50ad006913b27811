//! The apps' network on a Swarm: a bridge on each host with inter-container traffic off, which
//! Swarm services (and, being attachable, one-off and build containers) join. Docker makes one
//! from a config-only network present on every node (`<name>-config`: the bridge's interface
//! name, `enable_icc=false`, an optional subnet) and a network of `--scope swarm` made from it on
//! a manager; each node then creates the bridge when the first container on it joins. The
//! firewall on each host is the host agent's (`deis-controller host-agent`, see
//! [`crate::AppNetwork::apply_firewall`]).
//!
//! What this does is, with the CLI:
//! ```text
//! docker network create --config-only -o com.docker.network.bridge.name=<bridge> \
//!     -o com.docker.network.bridge.enable_icc=false [--subnet <subnet>] <name>-config   # each node
//! docker network create --scope swarm --config-from <name>-config -d bridge --attachable <name>  # a manager
//! ```

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ConfigReference, Ipam, IpamConfig, NetworkCreateRequest, NetworkInspect};
use bollard::query_parameters::InspectNetworkOptions;

use crate::{AppNetwork, IsolationError, bridge_name, config_network_name};

/// The apps' network of a Swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmAppNetwork {
    /// The Swarm network's name (services name it).
    pub name: String,
    /// The bridge interface on each host (at most 15 characters), which the host agents'
    /// firewall rules name.
    pub bridge: String,
    /// The subnet of the bridge on every host (the same on each: the bridges never meet); by
    /// default each host's engine picks a free one.
    pub subnet: Option<String>,
    /// Labels of the config-only networks (deisctl's `deis.platform=<prefix>`); Docker takes
    /// none on the Swarm network made from them.
    pub labels: HashMap<String, String>,
}

impl SwarmAppNetwork {
    /// The network `name` on the bridge [`bridge_name`]`(name)`, with no subnet or labels.
    pub fn new(name: &str) -> SwarmAppNetwork {
        SwarmAppNetwork {
            name: name.to_owned(),
            bridge: bridge_name(name),
            subnet: None,
            labels: HashMap::new(),
        }
    }

    /// The config-only network on each node, `<name>-config`.
    pub fn config_name(&self) -> String {
        config_network_name(&self.name)
    }

    /// Creates what is missing: the config-only network on each of `nodes` (give every node of
    /// the Swarm, managers too, and call again for a node that joins later: a task placed on a
    /// node without it fails), then the Swarm network on `manager`. What exists already is
    /// checked: made otherwise, it is a [`IsolationError::Conflict`].
    pub async fn create(&self, nodes: &[Docker], manager: &Docker) -> Result<(), IsolationError> {
        let options = AppNetwork::new(&self.name, &self.bridge, &[]).bridge_options();
        let config = NetworkCreateRequest {
            name: self.config_name(),
            config_only: Some(true),
            options: Some(options.clone()),
            ipam: self.subnet.as_ref().map(|subnet| Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(self.labels.clone()),
            ..Default::default()
        };
        for node in nodes {
            self.ensure(node, config.clone(), |found| {
                found.config_only == Some(true)
                    && options.iter().all(|(key, value)| {
                        found
                            .options
                            .as_ref()
                            .and_then(|o| o.get(key))
                            .is_some_and(|v| v == value)
                    })
            })
            .await?;
        }
        let swarm = NetworkCreateRequest {
            name: self.name.clone(),
            driver: Some("bridge".to_owned()),
            scope: Some("swarm".to_owned()),
            attachable: Some(true),
            config_from: Some(ConfigReference {
                network: Some(self.config_name()),
            }),
            // Docker refuses labels (as any setting of its own) on a network made from a
            // config-only one.
            ..Default::default()
        };
        let config_name = self.config_name();
        self.ensure(manager, swarm, |found| {
            // A manager may show the driver empty for a moment after the network is made.
            found.scope.as_deref() == Some("swarm")
                && matches!(found.driver.as_deref(), Some("bridge" | "") | None)
                && found
                    .config_from
                    .as_ref()
                    .and_then(|c| c.network.as_deref())
                    == Some(config_name.as_str())
        })
        .await
    }

    /// Removes the Swarm network (from `manager`) and then the config-only network of each of
    /// `nodes`; what is already gone is fine. Fails while services or containers use them.
    pub async fn remove(&self, nodes: &[Docker], manager: &Docker) -> Result<(), IsolationError> {
        remove_network(manager, &self.name).await?;
        for node in nodes {
            remove_network(node, &self.config_name()).await?;
        }
        Ok(())
    }

    /// Creates `request`'s network on `docker` unless one of its name exists, which must pass
    /// `fits`.
    async fn ensure(
        &self,
        docker: &Docker,
        request: NetworkCreateRequest,
        fits: impl Fn(&NetworkInspect) -> bool,
    ) -> Result<(), IsolationError> {
        let name = request.name.clone();
        let inspect = || docker.inspect_network(&name, None::<InspectNetworkOptions>);
        let found = match inspect().await {
            Ok(found) => found,
            Err(_) => match docker.create_network(request).await {
                Ok(_) => return Ok(()),
                // Another process may have made it meanwhile; else this is the error.
                Err(source) => inspect().await.map_err(|_| IsolationError::Network {
                    name: name.clone(),
                    source,
                })?,
            },
        };
        if fits(&found) {
            Ok(())
        } else {
            Err(IsolationError::Conflict {
                name,
                bridge: self.bridge.clone(),
            })
        }
    }
}

async fn remove_network(docker: &Docker, name: &str) -> Result<(), IsolationError> {
    match docker.remove_network(name).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(source) => Err(IsolationError::Remove {
            name: name.to_owned(),
            source: Box::new(source),
        }),
    }
}
