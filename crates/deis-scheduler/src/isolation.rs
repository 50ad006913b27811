//! Keeps app containers apart: they run on a bridge network of the platform's own with
//! inter-container traffic off (Docker's `enable_icc=false`), so they reach each other only
//! through the router, and a firewall chain lets traffic from that bridge into this host only
//! on the router's public ports: the controller, the logger, the builder, etcd and every other
//! port bound on the host stay out of their reach. The outside world stays reachable (Docker
//! masquerades the bridge as for any network).
//!
//! The rules, in the iptables of the host (what Docker uses), each commented `deis <network>`:
//! - `DEIS-<bridge>`, jumped to from `INPUT` for packets arriving on the bridge: replies pass,
//!   the router's ports pass, everything else is rejected (a TCP reset, so a connection fails at
//!   once rather than hanging);
//! - in `DOCKER-USER` (Docker's chain for its users' rules, consulted before its own): traffic
//!   from the bridge to the bridge is dropped, whatever Docker's own settings say, and so is
//!   traffic to link-local addresses (a cloud's metadata service).
//!
//! The platform sets these up when it starts (single host) or is installed (deisctl) and removes
//! them when it stops or is uninstalled.

use std::collections::HashMap;
use std::process::Command;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;

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
    /// A network of that name exists, made otherwise.
    #[error(
        "cannot set the firewall rules for {bridge} (a network {name} exists with another bridge or with inter-container traffic on; remove it (docker network rm {name}))"
    )]
    Conflict { name: String, bridge: String },
    /// The firewall cannot be changed.
    #[error(
        "cannot set the firewall rules for {bridge} ({source}); this needs root and iptables (apt-get install -y iptables)"
    )]
    Firewall {
        bridge: String,
        #[source]
        source: IptablesError,
    },
}

/// A failed `iptables` command.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// It could not be started.
    #[error("iptables cannot run: {0}")]
    Run(#[source] std::io::Error),
    /// It refused the rule.
    #[error("iptables {args}: {stderr}")]
    Failed { args: String, stderr: String },
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

    /// Creates the network (if missing) and the firewall rules (replacing earlier ones).
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
                options: Some(HashMap::from([
                    (
                        "com.docker.network.bridge.enable_icc".to_owned(),
                        "false".to_owned(),
                    ),
                    (
                        "com.docker.network.bridge.name".to_owned(),
                        self.bridge.clone(),
                    ),
                ])),
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
        self.remove_rules();
        let added = self.add_rules();
        if added.is_err() {
            // Half a firewall is worse than a known missing one.
            self.remove_rules();
        }
        added
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

    fn chain(&self) -> String {
        format!("DEIS-{}", self.bridge)
    }

    fn comment(&self) -> String {
        format!("deis {}", self.name)
    }

    fn add_rules(&self) -> Result<(), IsolationError> {
        let chain = self.chain();
        let comment = self.comment();
        let mut rules: Vec<Vec<String>> = vec![
            vec!["-N".into(), chain.clone()],
            vec![
                "-A".into(),
                chain.clone(),
                "-m".into(),
                "conntrack".into(),
                "--ctstate".into(),
                "ESTABLISHED,RELATED".into(),
                "-j".into(),
                "RETURN".into(),
            ],
        ];
        for port in &self.open_ports {
            rules.push(vec![
                "-A".into(),
                chain.clone(),
                "-p".into(),
                "tcp".into(),
                "--dport".into(),
                port.to_string(),
                "-j".into(),
                "RETURN".into(),
            ]);
        }
        rules.push(vec![
            "-A".into(),
            chain.clone(),
            "-p".into(),
            "tcp".into(),
            "-j".into(),
            "REJECT".into(),
            "--reject-with".into(),
            "tcp-reset".into(),
        ]);
        rules.push(vec![
            "-A".into(),
            chain.clone(),
            "-j".into(),
            "REJECT".into(),
        ]);
        rules.push(vec![
            "-I".into(),
            "INPUT".into(),
            "-i".into(),
            self.bridge.clone(),
            "-m".into(),
            "comment".into(),
            "--comment".into(),
            comment.clone(),
            "-j".into(),
            chain,
        ]);
        // Link-local addresses (a cloud's metadata service, with the host's credentials).
        rules.push(vec![
            "-I".into(),
            "DOCKER-USER".into(),
            "-i".into(),
            self.bridge.clone(),
            "-d".into(),
            "169.254.0.0/16".into(),
            "-m".into(),
            "comment".into(),
            "--comment".into(),
            self.comment(),
            "-j".into(),
            "DROP".into(),
        ]);
        rules.push(vec![
            "-I".into(),
            "DOCKER-USER".into(),
            "-i".into(),
            self.bridge.clone(),
            "-o".into(),
            self.bridge.clone(),
            "-m".into(),
            "comment".into(),
            "--comment".into(),
            comment,
            "-j".into(),
            "DROP".into(),
        ]);
        for rule in rules {
            iptables(&rule).map_err(|source| IsolationError::Firewall {
                bridge: self.bridge.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Deletes every rule of this network (by its comment) and its chain; quietly.
    fn remove_rules(&self) {
        let comment = self.comment();
        for table_chain in ["INPUT", "DOCKER-USER"] {
            let Ok(listed) = iptables_output(&["-S", table_chain]) else {
                continue;
            };
            for line in listed.lines() {
                if !line.contains(&format!("\"{comment}\"")) {
                    continue;
                }
                // `-A CHAIN rest...` → `-D CHAIN rest...`, quotes as iptables printed them.
                let Some(rest) = line.strip_prefix("-A ") else {
                    continue;
                };
                let mut args = vec!["-D".to_owned()];
                args.extend(split_rule(rest));
                let _ = iptables(&args);
            }
        }
        let chain = self.chain();
        let _ = iptables(&["-F".to_owned(), chain.clone()]);
        let _ = iptables(&["-X".to_owned(), chain]);
    }
}

/// Removes the rules of app networks that no longer exist (a platform that was killed could
/// not remove its own).
async fn sweep_stale(docker: &Docker) {
    let mut names = std::collections::BTreeSet::new();
    for chain in ["INPUT", "DOCKER-USER"] {
        let Ok(listed) = iptables_output(&["-S", chain]) else {
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
        let gone = matches!(
            docker
                .inspect_network(
                    &name,
                    None::<bollard::query_parameters::InspectNetworkOptions>
                )
                .await,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })
        );
        if gone {
            AppNetwork::new(&name, &bridge_name(&name), &[]).remove_rules();
        }
    }
}

/// Splits a rule as `iptables -S` prints it (double quotes around words with spaces).
fn split_rule(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rule.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn iptables(args: &[String]) -> Result<(), IptablesError> {
    iptables_output(&args.iter().map(String::as_str).collect::<Vec<_>>()).map(|_| ())
}

fn iptables_output(args: &[&str]) -> Result<String, IptablesError> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(IptablesError::Run)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(IptablesError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
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
    fn rules_as_printed_are_split_back() {
        assert_eq!(
            split_rule("INPUT -i deis1 -m comment --comment \"deis a b\" -j DEIS-deis1"),
            [
                "INPUT",
                "-i",
                "deis1",
                "-m",
                "comment",
                "--comment",
                "deis a b",
                "-j",
                "DEIS-deis1"
            ]
        );
        assert!(bridge_name("deis-apps").len() <= 15);
        assert_eq!(bridge_name(""), "deis811c9dc5", "FNV-1a, stable");
        assert_ne!(bridge_name("a"), bridge_name("b"));
    }
}
