//! Keeps app containers apart: they run on a bridge network of the platform's own with
//! inter-container traffic off (Docker's `enable_icc=false`), so they reach each other only
//! through the router, and a firewall chain lets traffic from that bridge into this host, and
//! into every other host of a cluster, only on the router's public ports: the controller, the
//! logger, the builder, etcd, the registry and every other port bound on a host stay out of
//! their reach. The outside world stays reachable (Docker masquerades the bridge as for any
//! network).
//!
//! The rules, in the iptables of the host (what Docker uses), each commented `deis <network>`
//! (`rules.rs` makes them, `iptables.rs` runs iptables):
//! - `DEIS-<bridge>`: replies pass, the router's ports pass, everything else is rejected (a TCP
//!   reset, so a connection fails at once rather than hanging); jumped to from `INPUT` for
//!   packets arriving on the bridge, and from `DOCKER-USER` (Docker's chain for its users'
//!   rules, consulted before its own) for packets from the bridge to each other host of the
//!   cluster (given by the host agent, see `deis-controller host-agent`);
//! - in `DOCKER-USER`: traffic from the bridge to the bridge is dropped, whatever Docker's own
//!   settings say, and so is traffic to link-local addresses (a cloud's metadata service).
//!
//! They are replaced in one `iptables-restore` transaction, so they are never half there. On one
//! host the platform sets them up when it starts (single host) or is installed (deisctl) and
//! removes them when it stops or is uninstalled; on a Swarm the network is the Swarm's
//! (`swarm_network.rs`) and each host's agent keeps the rules.

mod iptables;
mod rules;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;

pub use iptables::IptablesError;
pub use rules::{FirewallRules, Rule};

/// Why the isolation could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// The network cannot be made.
    #[error("cannot create the app network {name}: {source}")]
    Network {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The network cannot be removed (containers or services still use it).
    #[error("cannot remove the app network {name}: {source}")]
    Remove {
        name: String,
        #[source]
        source: Box<bollard::errors::Error>,
    },
    /// A network of that name exists, made otherwise.
    #[error(
        "cannot set the firewall rules for {bridge} (a network {name} exists made otherwise: with another bridge, with inter-container traffic on, or, on a Swarm, not from its config-only network; remove it (docker network rm {name}))"
    )]
    Conflict { name: String, bridge: String },
    /// The firewall cannot be changed.
    #[error(
        "cannot set the firewall rules for {bridge} ({source}); this needs root (or NET_ADMIN with host networking), iptables (apt-get install -y iptables) and a running Docker engine (its DOCKER-USER chain)"
    )]
    Firewall {
        bridge: String,
        #[source]
        source: IptablesError,
    },
}

/// The network app containers run on, and its firewall.
#[derive(Debug, Clone)]
pub struct AppNetwork {
    /// The Docker network's name.
    pub name: String,
    /// Its bridge interface (at most 15 characters).
    pub bridge: String,
    /// The host's ports app containers may reach (the router's).
    pub open_ports: Vec<u16>,
}

impl AppNetwork {
    /// The network `name` with bridge interface `bridge`, open to the host on `open_ports`.
    pub fn new(name: &str, bridge: &str, open_ports: &[u16]) -> AppNetwork {
        AppNetwork {
            name: name.to_owned(),
            bridge: bridge.chars().take(15).collect(),
            open_ports: open_ports.to_vec(),
        }
    }

    /// Creates the network (if missing) and the firewall rules (replacing earlier ones, and
    /// keeping the other hosts a host agent filters).
    pub async fn set_up(
        &self,
        docker: &Docker,
        labels: &HashMap<String, String>,
    ) -> Result<(), IsolationError> {
        let existing = docker
            .inspect_network(
                &self.name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        if let Ok(network) = &existing {
            // A network of that name made otherwise would leave the rules on nothing.
            let options = network.options.clone().unwrap_or_default();
            let get = |key: &str| options.get(key).map(String::as_str);
            if get("com.docker.network.bridge.name") != Some(self.bridge.as_str())
                || get("com.docker.network.bridge.enable_icc") != Some("false")
            {
                return Err(IsolationError::Conflict {
                    name: self.name.clone(),
                    bridge: self.bridge.clone(),
                });
            }
        }
        if existing.is_err() {
            let request = NetworkCreateRequest {
                name: self.name.clone(),
                driver: Some("bridge".to_owned()),
                labels: Some(labels.clone()),
                options: Some(self.bridge_options()),
                ..Default::default()
            };
            if let Err(source) = docker.create_network(request).await {
                // Another process may have made it meanwhile.
                if docker
                    .inspect_network(
                        &self.name,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .is_err()
                {
                    return Err(IsolationError::Network {
                        name: self.name.clone(),
                        source,
                    });
                }
            }
        }
        sweep_stale(docker).await;
        self.apply_firewall(&self.hosts_in_firewall())
    }

    /// The driver options of the network's bridge: its interface name, inter-container traffic
    /// off.
    pub(crate) fn bridge_options(&self) -> HashMap<String, String> {
        HashMap::from([
            (
                "com.docker.network.bridge.enable_icc".to_owned(),
                "false".to_owned(),
            ),
            (
                "com.docker.network.bridge.name".to_owned(),
                self.bridge.clone(),
            ),
        ])
    }

    /// Removes the network and then its firewall rules; while app containers still use the
    /// network (they outlive a stopped platform), both stay, so those apps stay isolated.
    pub async fn tear_down(&self, docker: &Docker) {
        match docker.remove_network(&self.name).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => self.remove_rules(),
            Err(e) => {
                tracing::info!(network = %self.name, error = %e, "The app network stays, with its firewall, while app containers use it");
            }
        }
    }

    /// The firewall rules alone (the network is made elsewhere, or later: rules name the
    /// bridge, which need not exist yet), with `other_hosts` (the cluster's other hosts)
    /// behind the same chain as this one; they replace this network's earlier rules in one
    /// transaction.
    pub fn apply_firewall(&self, other_hosts: &BTreeSet<Ipv4Addr>) -> Result<(), IsolationError> {
        let existing: Vec<String> = ["INPUT", "DOCKER-USER"]
            .into_iter()
            .flat_map(|chain| iptables::commented_rules(chain, &self.comment()))
            .collect();
        let script = FirewallRules::new(self, other_hosts).restore_script(&existing);
        iptables::restore(&script).map_err(|source| self.firewall_error(source))
    }

    /// Whether exactly the rules for `other_hosts` are in place (none missing, none more); an
    /// error only when iptables cannot run.
    pub fn firewall_in_place(
        &self,
        other_hosts: &BTreeSet<Ipv4Addr>,
    ) -> Result<bool, IsolationError> {
        let rules = FirewallRules::new(self, other_hosts);
        for rule in rules.chain_rules.iter().chain(&rules.entry_rules) {
            if !iptables::has_rule(&rule.chain, &rule.spec)
                .map_err(|source| self.firewall_error(source))?
            {
                return Ok(false);
            }
        }
        let in_chain = iptables::iptables_output(&["-S", &rules.chain])
            .map(|listed| listed.lines().filter(|l| l.starts_with("-A ")).count())
            .unwrap_or(0);
        let entries: usize = ["INPUT", "DOCKER-USER"]
            .into_iter()
            .map(|chain| iptables::commented_rules(chain, &self.comment()).len())
            .sum();
        Ok(in_chain == rules.chain_rules.len() && entries == rules.entry_rules.len())
    }

    /// The other hosts the rules in place send through the chain (what an earlier host agent
    /// set, to be kept until it is known again).
    pub fn hosts_in_firewall(&self) -> BTreeSet<Ipv4Addr> {
        let jump = format!("-j {}", self.chain());
        iptables::commented_rules("DOCKER-USER", &self.comment())
            .iter()
            .filter(|line| line.ends_with(&jump))
            .filter_map(|line| {
                let words = iptables::split_rule(line);
                let at = words.iter().position(|w| w == "-d")?;
                let dest = words.get(at + 1)?;
                dest.strip_suffix("/32").unwrap_or(dest).parse().ok()
            })
            .collect()
    }

    /// Removes every rule of this network (by its comment) and its chain, and checks that none
    /// is left; the network itself stays.
    pub fn remove_firewall(&self) -> Result<(), IsolationError> {
        self.remove_rules();
        iptables::iptables_output(&["-S"]).map_err(|source| self.firewall_error(source))?;
        let left: Vec<String> = ["INPUT", "DOCKER-USER"]
            .into_iter()
            .flat_map(|chain| iptables::commented_rules(chain, &self.comment()))
            .chain(
                iptables::iptables_output(&["-S", &self.chain()])
                    .ok()
                    .map(|_| format!("-N {}", self.chain())),
            )
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(self.firewall_error(IptablesError::Failed {
                args: "-D".to_owned(),
                stderr: format!("rules are left: {}", left.join("; ")),
            }))
        }
    }

    fn firewall_error(&self, source: IptablesError) -> IsolationError {
        IsolationError::Firewall {
            bridge: self.bridge.clone(),
            source,
        }
    }

    pub(crate) fn chain(&self) -> String {
        format!("DEIS-{}", self.bridge)
    }

    pub(crate) fn comment(&self) -> String {
        format!("deis {}", self.name)
    }

    /// Deletes every rule of this network (by its comment) and its chain; quietly.
    fn remove_rules(&self) {
        for chain in ["INPUT", "DOCKER-USER"] {
            for line in iptables::commented_rules(chain, &self.comment()) {
                // `-A CHAIN rest...` → `-D CHAIN rest...`, quotes as iptables printed them.
                let Some(rest) = line.strip_prefix("-A ") else {
                    continue;
                };
                let mut args = vec!["-D".to_owned()];
                args.extend(iptables::split_rule(rest));
                let _ = iptables::iptables(&args);
            }
        }
        let chain = self.chain();
        let _ = iptables::iptables(&["-F".to_owned(), chain.clone()]);
        let _ = iptables::iptables(&["-X".to_owned(), chain]);
    }
}

/// The config-only network a Swarm's app network `network` takes its bridge settings from on
/// each host (see `SwarmAppNetwork`).
pub fn config_network_name(network: &str) -> String {
    format!("{network}-config")
}

/// Removes the rules of app networks that no longer exist (a platform that was killed could
/// not remove its own). A Swarm's network counts as existing while its config-only network
/// does: a node lists a Swarm network only once a task of it runs there.
async fn sweep_stale(docker: &Docker) {
    let mut names = std::collections::BTreeSet::new();
    for chain in ["INPUT", "DOCKER-USER"] {
        let Ok(listed) = iptables::iptables_output(&["-S", chain]) else {
            continue;
        };
        for line in listed.lines() {
            if let Some(rest) = line.split("--comment \"deis ").nth(1)
                && let Some(name) = rest.split('"').next()
            {
                names.insert(name.to_owned());
            }
        }
    }
    for name in names {
        let mut gone = true;
        for candidate in [name.clone(), config_network_name(&name)] {
            gone &= matches!(
                docker
                    .inspect_network(
                        &candidate,
                        None::<bollard::query_parameters::InspectNetworkOptions>
                    )
                    .await,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                })
            );
        }
        if gone {
            AppNetwork::new(&name, &bridge_name(&name), &[]).remove_rules();
        }
    }
}

/// A bridge interface name for a network name: `deis` and 8 hex digits of its FNV-1a hash
/// (stable across builds, so a new binary finds the rules an old one made).
pub fn bridge_name(network: &str) -> String {
    let hash = network.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("deis{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_are_short_and_stable() {
        assert!(bridge_name("deis-apps").len() <= 15);
        assert_eq!(bridge_name(""), "deis811c9dc5", "FNV-1a, stable");
        assert_ne!(bridge_name("a"), bridge_name("b"));
        assert_eq!(config_network_name("deis-apps"), "deis-apps-config");
    }
}
