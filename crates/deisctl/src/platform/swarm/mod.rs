//! The platform on a Docker Swarm (`DEISCTL_SCHEDULER=swarm`): every component a Swarm service
//! across the cluster's hosts, created through a manager's Docker API, which deisctl reaches
//! through an SSH tunnel (`DEISCTL_TUNNEL`) or on the host it runs on. The Swarm is the record
//! of what is installed (services labelled `deis.platform`); etcd, with TLS and client
//! certificates deisctl makes, holds the settings.
//!
//! deisctl also reaches each host's own engine (over SSH through the tunnel host) for what a
//! Swarm does not spread: the component images, and on `uninstall` the volumes, containers and
//! images a host keeps.

mod access;
mod certs;
mod images;
mod lifecycle;
mod nodes;
mod replace;
mod restore;
mod services;
mod show;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use deis_store::ConfigStore;

pub(crate) use access::{Access, AccessOptions};
use nodes::Node;

use crate::Error;

/// A platform on a Swarm.
pub(crate) struct SwarmPlatform {
    /// A manager's engine.
    docker: Docker,
    access: Access,
    prefix: String,
    tag: String,
    namespace: String,
    /// The etcd client port on the members' hosts.
    etcd_port: u16,
    start_timeout: Duration,
}

/// What `--endpoint` says about etcd's client port (2379 unless it names another).
fn etcd_port(endpoints: &str) -> u16 {
    endpoints
        .split(',')
        .next()
        .and_then(|e| e.trim_end_matches('/').rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(2379)
}

impl SwarmPlatform {
    pub(crate) async fn connect(
        options: super::Options,
        access: AccessOptions,
    ) -> Result<SwarmPlatform, Error> {
        let (access, docker) = Access::open(access).await?;
        match deis_docker::manager_ready(&docker, deis_docker::MANAGER_WAIT).await {
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Message(format!(
                    "the Docker engine at {} is not a Swarm manager ({e}); run docker swarm init there, or join this host to the Swarm as a manager",
                    access.engine_name()
                )));
            }
        }
        Ok(SwarmPlatform {
            docker,
            access,
            etcd_port: etcd_port(&options.endpoints),
            prefix: options.prefix,
            tag: options.tag,
            namespace: options.namespace,
            start_timeout: options.start_timeout,
        })
    }

    async fn nodes(&self) -> Result<Vec<Node>, Error> {
        nodes::list(&self.docker).await
    }

    /// The host `host` (name or address) once the Swarm says it is ready: a Swarm whose leading
    /// manager was just lost shows its other hosts not ready until they report to the new
    /// leader, so a host of the Swarm that is not ready is waited for, a minute at most. With
    /// the Swarm's hosts as they were then.
    async fn ready_node(&self, host: &str) -> Result<(Node, Vec<Node>), Error> {
        const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut said = false;
        loop {
            let nodes = self.nodes().await?;
            let known = nodes.iter().any(|n| n.hostname == host || n.addr == host);
            match replace::find_host(&nodes, host) {
                Err(_) if known && tokio::time::Instant::now() < deadline => {
                    if !said {
                        println!("{host}: waiting for the Swarm to show it Ready");
                        said = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                found => return found.map(|node| (node, nodes)),
            }
        }
    }

    /// The etcd endpoints components use: every member's host address.
    fn member_endpoints(&self, etcd_hosts: &[Node]) -> String {
        etcd_hosts
            .iter()
            .map(|n| format!("https://{}:{}", n.addr, self.etcd_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Connects to the cluster's etcd as deisctl (its client certificate), through the tunnel
    /// when there is one.
    pub(crate) async fn connect_store(&self) -> Result<Arc<dyn ConfigStore>, Error> {
        // The members installed (wherever they have moved), else the hosts they will run on.
        let installed = replace::installed_members(&self.services().await?);
        let nodes = self.nodes().await?;
        let hosts: Vec<String> = if installed.is_empty() {
            nodes::etcd_hosts(&nodes)
                .into_iter()
                .map(|n| n.addr)
                .collect()
        } else {
            nodes::up(
                &nodes,
                installed.into_values().map(|(_, addr)| addr).collect(),
            )
        };
        if hosts.is_empty() {
            return Err(Error::Message(
                "the Swarm has no ready manager to run etcd on".to_owned(),
            ));
        }
        let (urls, tls) = self.etcd_urls(&hosts).await?;
        crate::connect_store_with(&urls, &self.namespace, Some(tls)).await
    }

    /// deisctl's URLs for the etcd members on `hosts` (through the tunnel when there is one),
    /// and its client certificate.
    async fn etcd_urls(
        &self,
        hosts: &[String],
    ) -> Result<(Vec<String>, deis_store::EtcdTls), Error> {
        let tls = certs::operator_files(&self.prefix)?;
        let mut urls = Vec::new();
        for host in hosts {
            let endpoint = self.access.tcp_endpoint(host, self.etcd_port).await?;
            urls.push(format!("https://{endpoint}"));
        }
        Ok((urls, tls))
    }
}
