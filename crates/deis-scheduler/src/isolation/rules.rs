//! An app network's firewall as data: the rules for a bridge, the router's ports and the other
//! hosts of the cluster, and the `iptables-restore` script that puts them in place of the
//! earlier ones in one transaction (so there is never a moment without them).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::AppNetwork;
use super::iptables::{join_rule, split_rule};

/// Link-local addresses (a cloud's metadata service, with the host's credentials).
const LINK_LOCAL: &str = "169.254.0.0/16";

/// One rule: its chain and what follows the chain's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `INPUT`, `DOCKER-USER` or the network's own chain.
    pub chain: String,
    /// The match and target words.
    pub spec: Vec<String>,
}

impl Rule {
    fn new(chain: &str, spec: &[&str]) -> Rule {
        Rule {
            chain: chain.to_owned(),
            spec: spec.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    /// `-A CHAIN spec...` or `-I CHAIN spec...`, as `iptables-restore` reads it.
    fn line(&self, op: &str) -> String {
        format!("{op} {} {}", self.chain, join_rule(&self.spec))
    }
}

/// Every rule of one app network's firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRules {
    /// The network's chain, `DEIS-<bridge>`: what may pass from the bridge to a host.
    pub chain: String,
    /// The chain's rules, in order: replies pass, the router's ports pass, the rest is rejected
    /// (TCP with a reset, so a connection fails at once rather than hanging).
    pub chain_rules: Vec<Rule>,
    /// The rules at the top of `INPUT` and `DOCKER-USER`, each commented `deis <network>`:
    /// packets from the bridge to this host, and to each other host, go through the chain;
    /// bridge to bridge and link-local traffic is dropped.
    pub entry_rules: Vec<Rule>,
}

impl FirewallRules {
    /// The rules of `network` when the cluster's other hosts are `hosts` (none on one host).
    pub fn new(network: &AppNetwork, hosts: &BTreeSet<Ipv4Addr>) -> FirewallRules {
        let chain = network.chain();
        let bridge = network.bridge.as_str();
        let comment = network.comment();
        let mut chain_rules = vec![Rule::new(
            &chain,
            &[
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "RETURN",
            ],
        )];
        for port in &network.open_ports {
            let port = port.to_string();
            chain_rules.push(Rule::new(
                &chain,
                &["-p", "tcp", "--dport", &port, "-j", "RETURN"],
            ));
        }
        chain_rules.push(Rule::new(
            &chain,
            &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ));
        chain_rules.push(Rule::new(&chain, &["-j", "REJECT"]));
        let tagged = |chain: &str, matches: &[&str], target: &str| {
            let mut spec = vec!["-i", bridge];
            spec.extend_from_slice(matches);
            spec.extend_from_slice(&["-m", "comment", "--comment", &comment, "-j", target]);
            Rule::new(chain, &spec)
        };
        let mut entry_rules = vec![
            tagged("INPUT", &[], &chain),
            tagged("DOCKER-USER", &["-d", LINK_LOCAL], "DROP"),
            tagged("DOCKER-USER", &["-o", bridge], "DROP"),
        ];
        for host in hosts {
            let dest = format!("{host}/32");
            entry_rules.push(tagged("DOCKER-USER", &["-d", &dest], &chain));
        }
        FirewallRules {
            chain,
            chain_rules,
            entry_rules,
        }
    }

    /// The `iptables-restore --noflush` script that empties (or creates) the chain, deletes
    /// `existing` (this network's commented rules as `iptables -S` printed them) and adds
    /// these rules.
    pub(super) fn restore_script(&self, existing: &[String]) -> String {
        let mut lines = vec!["*filter".to_owned(), format!(":{} - [0:0]", self.chain)];
        for printed in existing {
            if let Some(rest) = printed.strip_prefix("-A ") {
                lines.push(format!("-D {}", join_rule(&split_rule(rest))));
            }
        }
        lines.extend(self.chain_rules.iter().map(|r| r.line("-A")));
        lines.extend(self.entry_rules.iter().map(|r| r.line("-I")));
        lines.push("COMMIT".to_owned());
        lines.join("\n") + "\n"
    }
}

impl fmt::Display for FirewallRules {
    /// The rules as `iptables-restore` lines (`-A` for the chain, `-I` for the entries).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in &self.chain_rules {
            writeln!(f, "{}", rule.line("-A"))?;
        }
        for rule in &self.entry_rules {
            writeln!(f, "{}", rule.line("-I"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> BTreeSet<Ipv4Addr> {
        list.iter()
            .map(|h| h.parse().expect("an IPv4 address"))
            .collect()
    }

    #[test]
    fn other_hosts_get_the_same_gate_as_this_one() {
        let network = AppNetwork::new("apps", "deisapps", &[80, 443]);
        let rules = FirewallRules::new(&network, &hosts(&["10.0.0.3", "10.0.0.2"]));
        let tag = "-m comment --comment \"deis apps\"";
        assert_eq!(
            rules.to_string(),
            [
                "-A DEIS-deisapps -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN".to_owned(),
                "-A DEIS-deisapps -p tcp --dport 80 -j RETURN".to_owned(),
                "-A DEIS-deisapps -p tcp --dport 443 -j RETURN".to_owned(),
                "-A DEIS-deisapps -p tcp -j REJECT --reject-with tcp-reset".to_owned(),
                "-A DEIS-deisapps -j REJECT".to_owned(),
                format!("-I INPUT -i deisapps {tag} -j DEIS-deisapps"),
                format!("-I DOCKER-USER -i deisapps -d 169.254.0.0/16 {tag} -j DROP"),
                format!("-I DOCKER-USER -i deisapps -o deisapps {tag} -j DROP"),
                format!("-I DOCKER-USER -i deisapps -d 10.0.0.2/32 {tag} -j DEIS-deisapps"),
                format!("-I DOCKER-USER -i deisapps -d 10.0.0.3/32 {tag} -j DEIS-deisapps"),
            ]
            .map(|line| line + "\n")
            .concat(),
            "every other host's traffic from the bridge goes through the chain that lets only \
             the router's ports through"
        );
        let alone = FirewallRules::new(&network, &BTreeSet::new());
        assert_eq!(alone.entry_rules.len(), 3, "one host: no rule per host");
        assert_eq!(alone.chain_rules, rules.chain_rules, "the same chain");
    }

    #[test]
    fn the_script_replaces_the_earlier_rules_in_one_transaction() {
        let network = AppNetwork::new("apps", "deisapps", &[80]);
        let rules = FirewallRules::new(&network, &hosts(&["10.0.0.2"]));
        let earlier = [
            "-A DOCKER-USER -d 10.0.0.9/32 -i deisapps -m comment --comment \"deis apps\" -j DEIS-deisapps"
                .to_owned(),
        ];
        let script = rules.restore_script(&earlier);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[..2], ["*filter", ":DEIS-deisapps - [0:0]"]);
        assert_eq!(
            lines[2],
            "-D DOCKER-USER -d 10.0.0.9/32 -i deisapps -m comment --comment \"deis apps\" -j DEIS-deisapps",
            "the earlier rules are deleted as printed, before the new ones go in"
        );
        assert_eq!(lines.last(), Some(&"COMMIT"));
        assert_eq!(
            lines.len(),
            2 + 1 + rules.chain_rules.len() + rules.entry_rules.len() + 1
        );
    }
}
