//! `deisctl replace etcd@<k> <host>`: etcd's member `k`, lost with its host, replaced by a new
//! member on another host of the Swarm. Through the members still up (a majority is needed):
//! the lost member is removed from the cluster, a member with the new host's peer address is
//! added, and the unit's service is moved there, with a certificate for that host, an empty
//! data folder, and `--initial-cluster-state existing` so that it joins and catches up.
//!
//! `deisctl replace controller <host>`: the controller of a lost host started on another
//! manager (the label that pins the controllers to their hosts moves there).
//!
//! The other components keep the etcd addresses they were started with (the new host's is not
//! among them until they are installed again); the remaining members serve them meanwhile.

use std::collections::BTreeMap;

use bollard::query_parameters::RemoveVolumeOptions;
use deis_store::{EtcdMember, EtcdStore};

use super::lifecycle::Svc;
use super::nodes::{self, Node};
use super::services::{self, Join, MemberSpec};
use super::{SwarmPlatform, certs, images};
use crate::Error;
use crate::platform::component::{Component, Unit};
use crate::platform::spec;

/// The value of `--flag` in a service's arguments.
fn arg<'a>(svc: &'a Svc, flag: &str) -> Option<&'a str> {
    let args = svc
        .spec
        .task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .args
        .as_ref()?;
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// The host address in a URL (`https://10.0.0.1:2380` → `10.0.0.1`).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.rsplit_once(':').map(|(host, _)| host)
}

/// The installed members: number → (name, host address), read from their services.
pub(super) fn installed_members(
    installed: &BTreeMap<Unit, Svc>,
) -> BTreeMap<u32, (String, String)> {
    installed
        .values()
        .filter(|s| s.unit.component == Component::Etcd)
        .filter_map(|s| {
            let k = s.unit.instance?;
            let name = arg(s, "--name")?.to_owned();
            let addr = url_host(arg(s, "--initial-advertise-peer-urls")?)?.to_owned();
            Some((k, (name, addr)))
        })
        .collect()
}

fn etcd_failed(what: &str, e: deis_store::StoreError) -> Error {
    Error::Message(format!(
        "etcd could not {what} ({e}); a member can be replaced only while a majority of the members runs: deisctl list shows them"
    ))
}

impl SwarmPlatform {
    /// Replaces member `k` by a new one on `host` (a Swarm host name or address).
    pub(crate) async fn replace_member(&self, k: u32, host: &str) -> Result<(), Error> {
        let installed = self.services().await?;
        let unit = Unit {
            component: Component::Etcd,
            instance: Some(k),
        };
        let Some(svc) = installed.get(&unit) else {
            return Err(Error::Message(format!(
                "etcd@{k} is not installed; deisctl list shows etcd's members"
            )));
        };
        let members = installed_members(&installed);
        let Some((name, old_addr)) = members.get(&k).cloned() else {
            return Err(Error::Message(format!(
                "etcd@{k}'s service does not say its member's name and address; uninstall and install the platform"
            )));
        };
        let (node, nodes) = self.ready_node(host).await?;
        if let Some((j, _)) = members
            .iter()
            .find(|(j, (_, addr))| **j != k && *addr == node.addr)
        {
            return Err(Error::Message(format!(
                "{host} already runs etcd@{j}; choose a host without a member"
            )));
        }

        let others: Vec<String> = members
            .iter()
            .filter(|(j, _)| **j != k)
            .map(|(_, (_, addr))| addr.clone())
            .collect();
        let etcd = self.connect_etcd(&nodes::up(&nodes, others)).await?;
        let peer_port = self.etcd_port.saturating_add(1);
        let new_peer = format!("https://{}:{peer_port}", node.addr);
        let listed = etcd
            .members()
            .await
            .map_err(|e| etcd_failed("list its members", e))?;
        for old in listed.iter().filter(|m| {
            m.name == name
                || (m
                    .peer_urls
                    .iter()
                    .any(|u| url_host(u) == Some(old_addr.as_str()))
                    && old_addr != node.addr)
        }) {
            etcd.remove_member(old.id)
                .await
                .map_err(|e| etcd_failed("remove the lost member", e))?;
            println!("etcd@{k}: member {:x} on {old_addr} removed", old.id);
        }
        // Added by an earlier attempt that did not start it: kept.
        let cluster = match listed.iter().find(|m| m.peer_urls.contains(&new_peer)) {
            Some(_) => etcd
                .members()
                .await
                .map_err(|e| etcd_failed("list its members", e))?,
            None => {
                let (added, all) = etcd
                    .add_member(&new_peer)
                    .await
                    .map_err(|e| etcd_failed("add a member", e))?;
                println!(
                    "etcd@{k}: member {:x} added on {}",
                    added.id,
                    node.machine()
                );
                all
            }
        };
        let cluster = initial_cluster(&cluster, &name, &new_peer);

        images::distribute(
            &self.access,
            std::slice::from_ref(&node),
            &[format!("deis/etcd:{}", self.tag)],
        )
        .await?;
        self.empty_data(&node).await?;
        let tls = certs::ensure_member(&self.docker, &self.prefix, k as usize, &node).await?;
        let member = MemberSpec {
            k: k as usize,
            me: (name, node.addr.clone()),
            cluster,
            join: Join::Existing,
        };
        let body = services::etcd_member(
            &self.prefix,
            &self.tag,
            &member,
            self.etcd_port,
            (&tls[0].name, &tls[1].name, &tls[2].name),
        );
        let mut placement = svc.placement();
        placement.constraints = vec![format!("node.id=={}", node.id)];
        let spec = services::service(&self.prefix, unit, body, &placement, &tls, true);
        self.update(svc, spec).await?;
        let moved = self
            .services()
            .await?
            .get(&unit)
            .cloned()
            .ok_or_else(|| Error::Message(format!("etcd@{k} disappeared while it moved")))?;
        self.launch_and_wait(std::slice::from_ref(&moved)).await?;
        println!("etcd@{k}: running on {}", node.machine());
        Ok(())
    }

    /// Moves the controller of a lost host to `host`: the controllers' label comes off the
    /// lost host (if the Swarm still lists it) and goes on `host`, where the Swarm starts it.
    pub(crate) async fn replace_controller(&self, host: &str) -> Result<(), Error> {
        let installed = self.services().await?;
        let Some(svc) = installed.get(&Unit::single(Component::Controller)) else {
            return Err(Error::Message(
                "the controller is not installed; run deisctl install controller".to_owned(),
            ));
        };
        let (node, nodes) = self.ready_node(host).await?;
        if !node.manager {
            return Err(Error::Message(format!(
                "{host} is not a manager and controllers run on managers; promote it first (docker node promote {host})"
            )));
        }
        let key = services::controller_label(&self.prefix);
        let pinned = nodes::labelled(&self.docker, &key).await?;
        if pinned.contains(&node.id) {
            return Err(Error::Message(format!(
                "{host} runs a controller already; choose another manager"
            )));
        }
        let lost = pinned
            .iter()
            .find(|id| !nodes.iter().any(|n| n.id == **id && n.ready));
        let want = match svc.placement().mode {
            services::Mode::Replicated(n) => n as usize,
            services::Mode::Global => nodes.len(),
        };
        match lost {
            Some(id) => nodes::set_label(&self.docker, id, &key, false).await?,
            None if pinned.len() >= want => {
                return Err(Error::Message(
                    "every controller's host is up; there is no lost controller to replace (deisctl list shows where they run)".to_owned(),
                ));
            }
            None => {}
        }
        nodes::set_label(&self.docker, &node.id, &key, true).await?;
        self.launch_and_wait(std::slice::from_ref(svc)).await?;
        println!("controller: running on {}", node.machine());
        Ok(())
    }

    /// etcd's data folder on `node` removed if a member left one there, so that the new member
    /// starts empty and takes the cluster's data from the others.
    async fn empty_data(&self, node: &Node) -> Result<(), Error> {
        let engine = self.access.node_engine(node).await?;
        let Some((suffix, _)) = Component::Etcd.volumes().first() else {
            return Ok(());
        };
        let volume = spec::volume_name(&self.prefix, suffix);
        match engine
            .remove_volume(&volume, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(Error::Message(format!(
                "cannot remove the old etcd data on {} ({e}); remove the volume {volume} there",
                node.machine()
            ))),
        }
    }

    /// A membership client of etcd through the members at `addrs`.
    async fn connect_etcd(&self, addrs: &[String]) -> Result<EtcdStore, Error> {
        let (urls, tls) = self.etcd_urls(addrs).await?;
        EtcdStore::connect_with_tls(&urls, &self.namespace, Some(&tls))
            .await
            .map_err(|e| etcd_failed("be reached", e))
    }
}

/// A ready host of the Swarm by name or address.
pub(super) fn find_host(nodes: &[Node], host: &str) -> Result<Node, Error> {
    let node = nodes
        .iter()
        .find(|n| n.hostname == host || n.addr == host)
        .ok_or_else(|| {
            Error::Message(format!(
                "{host} is not a host of the Swarm; docker node ls on a manager lists them"
            ))
        })?;
    if !node.ready {
        return Err(Error::Message(format!(
            "{} is not ready to run tasks; choose a host that docker node ls shows Ready and Active",
            node.machine()
        )));
    }
    Ok(node.clone())
}

/// `--initial-cluster` for a member joining as `name` at `peer`: every member by name and host
/// (the joining one, not started yet, has no name in etcd's list).
fn initial_cluster(members: &[EtcdMember], name: &str, peer: &str) -> Vec<(String, String)> {
    members
        .iter()
        .filter_map(|m| {
            let url = m.peer_urls.first()?;
            let member_name = if url == peer || m.name.is_empty() {
                name.to_owned()
            } else {
                m.name.clone()
            };
            Some((member_name, url_host(url)?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, peer: &str) -> EtcdMember {
        EtcdMember {
            id,
            name: name.to_owned(),
            peer_urls: vec![peer.to_owned()],
            client_urls: Vec::new(),
        }
    }

    #[test]
    fn the_joining_member_takes_its_name_in_the_initial_cluster() {
        let members = [
            member(1, "d-1", "https://10.0.0.1:2380"),
            member(2, "d-2", "https://10.0.0.2:2380"),
            member(4, "", "https://10.0.0.4:2380"),
        ];
        assert_eq!(
            initial_cluster(&members, "d-3", "https://10.0.0.4:2380"),
            [
                ("d-1".to_owned(), "10.0.0.1".to_owned()),
                ("d-2".to_owned(), "10.0.0.2".to_owned()),
                ("d-3".to_owned(), "10.0.0.4".to_owned()),
            ]
        );
    }

    #[test]
    fn a_url_host_is_what_comes_before_the_port() {
        assert_eq!(url_host("https://10.0.0.1:2380"), Some("10.0.0.1"));
        assert_eq!(url_host("10.0.0.1:2379"), Some("10.0.0.1"));
        assert_eq!(url_host("nohost"), None);
    }

    #[test]
    fn only_a_ready_host_of_the_swarm_takes_a_member() {
        let nodes = [
            Node {
                id: "a".to_owned(),
                hostname: "h1".to_owned(),
                addr: "10.0.0.1".to_owned(),
                manager: true,
                ready: true,
            },
            Node {
                id: "b".to_owned(),
                hostname: "h2".to_owned(),
                addr: "10.0.0.2".to_owned(),
                manager: false,
                ready: false,
            },
        ];
        assert_eq!(
            find_host(&nodes, "10.0.0.1").map(|n| n.id).ok(),
            Some("a".to_owned())
        );
        let down = find_host(&nodes, "h2")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(down.contains("not ready"), "{down}");
        let unknown = find_host(&nodes, "h9")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(unknown.contains("docker node ls"), "{unknown}");
    }
}
