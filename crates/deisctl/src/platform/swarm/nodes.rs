//! The Swarm's hosts as deisctl sees them: id, name, address and role, read from a manager.

use bollard::Docker;
use bollard::models::{NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState};

use crate::Error;

/// One host of the Swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) hostname: String,
    /// The address the host joined the Swarm with (its cluster address).
    pub(crate) addr: String,
    pub(crate) manager: bool,
    /// Ready and taking tasks.
    pub(crate) ready: bool,
}

impl Node {
    /// `h1/10.0.0.1`, fleet's MACHINE column.
    pub(crate) fn machine(&self) -> String {
        format!("{}/{}", self.hostname, self.addr)
    }
}

/// Every host of the Swarm, managers first, each group by host name.
pub(crate) async fn list(docker: &Docker) -> Result<Vec<Node>, Error> {
    let nodes = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(|e| Error::Message(format!("cannot list the Swarm's hosts: {e}")))?;
    let mut found: Vec<Node> = nodes
        .into_iter()
        .filter_map(|n| {
            let spec = n.spec.unwrap_or_default();
            let status = n.status.unwrap_or_default();
            let addr = status.addr.filter(|a| !a.is_empty() && a != "0.0.0.0")?;
            Some(Node {
                id: n.id?,
                hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                addr,
                manager: spec.role == Some(NodeSpecRoleEnum::MANAGER),
                ready: status.state == Some(NodeState::READY)
                    && spec.availability != Some(NodeSpecAvailabilityEnum::DRAIN),
            })
        })
        .collect();
    found.sort_by(|a, b| (!a.manager, &a.hostname).cmp(&(!b.manager, &b.hostname)));
    Ok(found)
}

/// The hosts (ids) that carry the label `key` set to `true`, ready or not.
pub(crate) async fn labelled(docker: &Docker, key: &str) -> Result<Vec<String>, Error> {
    let filters =
        std::collections::HashMap::from([("node.label".to_owned(), vec![format!("{key}=true")])]);
    let nodes = docker
        .list_nodes(Some(
            bollard::query_parameters::ListNodesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| Error::Message(format!("cannot list the Swarm's hosts: {e}")))?;
    Ok(nodes.into_iter().filter_map(|n| n.id).collect())
}

/// Sets the label `key` to `true` on a host, or (`on` false) removes it.
pub(crate) async fn set_label(docker: &Docker, id: &str, key: &str, on: bool) -> Result<(), Error> {
    let failed = |e: bollard::errors::Error| {
        Error::Message(format!("cannot label the Swarm host {id}: {e}"))
    };
    let node = docker.inspect_node(id).await.map_err(failed)?;
    let mut spec = node.spec.unwrap_or_default();
    let labels = spec.labels.get_or_insert_with(Default::default);
    if on {
        labels.insert(key.to_owned(), "true".to_owned());
    } else {
        labels.remove(key);
    }
    let version = node.version.and_then(|v| v.index).unwrap_or(0);
    let options = bollard::query_parameters::UpdateNodeOptionsBuilder::new()
        .version(i64::try_from(version).unwrap_or(i64::MAX))
        .build();
    docker.update_node(id, spec, options).await.map_err(failed)
}

/// Labels hosts from `candidates` (in order) until `want` of them carry the controllers' label
/// `key` (counting those that do already).
pub(crate) async fn pin_controllers(
    docker: &Docker,
    key: &str,
    candidates: &[Node],
    want: usize,
) -> Result<(), Error> {
    let mut pinned = labelled(docker, key).await?;
    for node in candidates {
        if pinned.len() >= want {
            break;
        }
        if !pinned.contains(&node.id) {
            set_label(docker, &node.id, key, true).await?;
            pinned.push(node.id.clone());
        }
    }
    Ok(())
}

/// How often hosts report to the Swarm's managers. The Swarm declares a host down after three
/// missed reports and only then starts its tasks elsewhere: Docker's default (5 s) makes that
/// 15 s; this makes it about 6 s.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sets the Swarm's heartbeat to [`HEARTBEAT`] unless it is that already.
pub(crate) async fn quicken_heartbeat(docker: &Docker) -> Result<(), Error> {
    let failed = |e: bollard::errors::Error| {
        Error::Message(format!("cannot set the Swarm's heartbeat period: {e}"))
    };
    let swarm = docker.inspect_swarm().await.map_err(failed)?;
    let mut spec = swarm.spec.unwrap_or_default();
    let period = i64::try_from(HEARTBEAT.as_nanos()).unwrap_or(i64::MAX);
    let dispatcher = spec.dispatcher.get_or_insert_with(Default::default);
    if dispatcher.heartbeat_period == Some(period) {
        return Ok(());
    }
    dispatcher.heartbeat_period = Some(period);
    let version = swarm.version.and_then(|v| v.index).unwrap_or(0);
    let options = bollard::query_parameters::UpdateSwarmOptionsBuilder::new()
        .version(i64::try_from(version).unwrap_or(i64::MAX))
        .build();
    docker.update_swarm(spec, options).await.map_err(failed)?;
    println!(
        "The Swarm's hosts now report every {} s (a lost host's tasks move after about {} s)",
        HEARTBEAT.as_secs(),
        HEARTBEAT.as_secs() * 3
    );
    Ok(())
}

/// The hosts that run etcd's members: three managers when there are three, else one (two
/// members would stop together at the loss of either).
pub(crate) fn etcd_hosts(nodes: &[Node]) -> Vec<Node> {
    let managers: Vec<Node> = nodes
        .iter()
        .filter(|n| n.manager && n.ready)
        .cloned()
        .collect();
    let count = if managers.len() >= 3 { 3 } else { 1 };
    managers.into_iter().take(count).collect()
}

/// The addresses among `addrs` of hosts the Swarm does not know to be down (all of them if
/// every one is): a connection through the tunnel to a lost host is reset, and etcd's client
/// gives up on such an error instead of trying the next member.
pub(crate) fn up(nodes: &[Node], addrs: Vec<String>) -> Vec<String> {
    let live: Vec<String> = addrs
        .iter()
        .filter(|a| !nodes.iter().any(|n| n.addr == **a && !n.ready))
        .cloned()
        .collect();
    if live.is_empty() { addrs } else { live }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, manager: bool) -> Node {
        Node {
            id: name.to_owned(),
            hostname: name.to_owned(),
            addr: format!("10.0.0.{}", name.len()),
            manager,
            ready: true,
        }
    }

    #[test]
    fn etcd_runs_on_three_managers_or_one() {
        let three = [
            node("a", true),
            node("b", true),
            node("c", true),
            node("d", false),
        ];
        let names: Vec<String> = etcd_hosts(&three).into_iter().map(|n| n.hostname).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let two = [node("a", true), node("b", true), node("c", false)];
        assert_eq!(
            etcd_hosts(&two).len(),
            1,
            "two members would halve availability"
        );
        assert!(etcd_hosts(&[node("w", false)]).is_empty());
    }

    #[test]
    fn members_on_hosts_known_down_are_left_out_unless_all_are() {
        let mut down = node("bb", true);
        down.ready = false;
        let nodes = [node("a", true), down];
        let addrs = vec![
            "10.0.0.1".to_owned(),
            "10.0.0.2".to_owned(),
            "10.0.0.9".to_owned(),
        ];
        assert_eq!(up(&nodes, addrs), ["10.0.0.1", "10.0.0.9"]);
        assert_eq!(up(&nodes, vec!["10.0.0.2".to_owned()]), ["10.0.0.2"]);
    }
}
