//! How deisctl reaches a cluster: a manager's Docker API and etcd's members, through the SSH
//! tunnel (`DEISCTL_TUNNEL`) when there is one, else directly; and each host's own engine over
//! SSH (through the tunnel host when there is one).

use std::sync::Arc;

use bollard::Docker;
use tokio::sync::Mutex;

use super::nodes::Node;
use crate::Error;
use crate::tunnel::{Forward, SshOptions, Tunnel, TunnelSpec};

/// The path of a host's Docker socket.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What the command line says about reaching the cluster.
pub(crate) struct AccessOptions {
    pub(crate) tunnel: Option<TunnelSpec>,
    pub(crate) ssh: SshOptions,
    /// The user deisctl logs in as on each host (the tunnel's, else `core`).
    pub(crate) user: String,
}

/// Open connections, kept for as long as deisctl runs.
pub(crate) struct Access {
    tunnel: Option<Arc<Tunnel>>,
    options: AccessOptions,
    engine_name: String,
    /// Forwards (and the hops they go through) that must outlive the clients using them.
    kept: Mutex<Vec<(Forward, Option<Tunnel>)>>,
    /// Each host's engine once reached, by node id.
    engines: Mutex<std::collections::HashMap<String, Docker>>,
}

async fn docker_at(path: &std::path::Path, what: &str) -> Result<Docker, Error> {
    let url = format!("unix://{}", path.display());
    let docker = deis_docker::connect(&url)
        .await
        .map_err(|e| Error::Message(format!("cannot reach the Docker engine of {what}: {e}")))?;
    docker
        .ping()
        .await
        .map_err(|e| Error::Message(format!("the Docker engine of {what} does not answer: {e}")))?;
    Ok(docker)
}

impl Access {
    /// Opens the tunnel (if any) and connects to the manager's engine.
    pub(crate) async fn open(options: AccessOptions) -> Result<(Access, Docker), Error> {
        match &options.tunnel {
            Some(spec) => {
                let tunnel = Tunnel::connect(spec, &options.ssh).await?;
                let forward = tunnel.forward_unix(DOCKER_SOCKET).await?;
                let name = format!("{} (through the SSH tunnel)", spec);
                let docker = docker_at(forward.path(), &name).await?;
                let access = Access {
                    tunnel: Some(Arc::new(tunnel)),
                    options,
                    engine_name: name,
                    kept: Mutex::new(vec![(forward, None)]),
                    engines: Mutex::default(),
                };
                Ok((access, docker))
            }
            None => {
                let docker = deis_docker::connect("").await.map_err(|e| {
                    Error::Message(format!(
                        "cannot reach the Docker engine ({e}); on a workstation set DEISCTL_TUNNEL=[user@]host of a Swarm manager"
                    ))
                })?;
                let access = Access {
                    tunnel: None,
                    options,
                    engine_name: super::super::engine::docker_host(),
                    kept: Mutex::new(Vec::new()),
                    engines: Mutex::default(),
                };
                Ok((access, docker))
            }
        }
    }

    /// The manager's engine, for messages.
    pub(crate) fn engine_name(&self) -> &str {
        &self.engine_name
    }

    /// `host:port` to dial to reach `host:port` as the tunnel host sees it (a local forward),
    /// or itself without a tunnel.
    pub(crate) async fn tcp_endpoint(&self, host: &str, port: u16) -> Result<String, Error> {
        let Some(tunnel) = &self.tunnel else {
            return Ok(format!("{host}:{port}"));
        };
        let forward = tunnel.forward_tcp(host, port).await?;
        let local = forward.addr().to_string();
        self.kept.lock().await.push((forward, None));
        Ok(local)
    }

    /// The engine of one host, over SSH to it (through the tunnel host when there is one),
    /// reached once per run.
    pub(crate) async fn node_engine(&self, node: &Node) -> Result<Docker, Error> {
        if let Some(docker) = self.engines.lock().await.get(&node.id) {
            return Ok(docker.clone());
        }
        let spec = TunnelSpec {
            user: self.options.user.clone(),
            host: node.addr.clone(),
            port: 22,
        };
        let hop = match &self.tunnel {
            Some(tunnel) => tunnel.jump(&spec).await?,
            None => Tunnel::connect(&spec, &self.options.ssh).await?,
        };
        let forward = hop.forward_unix(DOCKER_SOCKET).await?;
        let docker = docker_at(forward.path(), &node.machine()).await?;
        self.kept.lock().await.push((forward, Some(hop)));
        self.engines
            .lock()
            .await
            .insert(node.id.clone(), docker.clone());
        Ok(docker)
    }
}
