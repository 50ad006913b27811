//! The set of other hosts whose platform ports this host's app containers must not reach: every
//! host registered under `/deis/hosts/` (IPv4; this host's own address aside, its traffic goes
//! through `INPUT`), and every host seen registered before. A host's key goes away when its
//! agent stops or its host goes down, which is when its platform may come back before its agent
//! does: the address stays filtered, as an address filtered too many costs nothing and one
//! missing is a hole. The set starts from the hosts the rules already in the kernel filter
//! (what this agent's previous run knew).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use deis_store::keys::Key;
use deis_store::{EventKind, Update};

/// The hosts to filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hosts {
    own: Ipv4Addr,
    others: BTreeSet<Ipv4Addr>,
}

impl Hosts {
    /// The set for the host at `own`, starting with `known` (the rules in place).
    pub(crate) fn new(own: Ipv4Addr, known: BTreeSet<Ipv4Addr>) -> Hosts {
        let mut hosts = Hosts {
            own,
            others: BTreeSet::new(),
        };
        for host in known {
            hosts.add(IpAddr::V4(host));
        }
        hosts
    }

    /// The other hosts.
    pub(crate) fn others(&self) -> &BTreeSet<Ipv4Addr> {
        &self.others
    }

    /// Takes in what the store said; whether the set grew.
    pub(crate) fn update(&mut self, update: &Update) -> bool {
        let keys: Vec<&str> = match update {
            Update::Listed(listing) => listing.kvs.iter().map(|kv| kv.key.as_str()).collect(),
            Update::Changed(events) => events
                .iter()
                .filter(|e| e.kind == EventKind::Put)
                .map(|e| e.kv.key.as_str())
                .collect(),
        };
        let mut grew = false;
        for key in keys {
            match Key::parse(key) {
                Ok(Key::Host(address)) => grew |= self.add(address),
                _ => tracing::warn!(key, "Not a host's key; ignored"),
            }
        }
        grew
    }

    fn add(&mut self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(v4) if v4 == self.own => false,
            IpAddr::V4(v4) => self.others.insert(v4),
            IpAddr::V6(v6) => {
                tracing::warn!(host = %v6, "The host agent filters IPv4 only; this host's IPv6 address is not filtered");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use deis_store::{Event, KeyValue, Listing};

    use super::*;

    fn kv(key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: "node".to_owned(),
            create_revision: 1,
            mod_revision: 1,
            lease: None,
        }
    }

    fn v4(address: &str) -> Ipv4Addr {
        address.parse().expect("an IPv4 address")
    }

    #[test]
    fn other_hosts_are_kept_once_seen_and_this_one_never_is() {
        let mut hosts = Hosts::new(v4("10.0.0.1"), [v4("10.0.0.9")].into());
        let listing = Listing {
            kvs: vec![
                kv("/deis/hosts/10.0.0.1"),
                kv("/deis/hosts/10.0.0.2"),
                kv("/deis/hosts/fd00::3"),
                kv("/deis/hosts/not-an-address"),
            ],
            revision: 5,
        };
        assert!(hosts.update(&Update::Listed(listing)));
        assert_eq!(
            hosts.others(),
            &[v4("10.0.0.2"), v4("10.0.0.9")].into(),
            "the known ones and the listed IPv4 hosts, not this one"
        );
        let gone = Event {
            kind: EventKind::Delete,
            kv: kv("/deis/hosts/10.0.0.2"),
        };
        assert!(!hosts.update(&Update::Changed(vec![gone])));
        assert!(
            hosts.others().contains(&v4("10.0.0.2")),
            "a host whose key went away stays filtered"
        );
        let new = Event {
            kind: EventKind::Put,
            kv: kv("/deis/hosts/10.0.0.4"),
        };
        assert!(hosts.update(&Update::Changed(vec![new.clone()])));
        assert!(!hosts.update(&Update::Changed(vec![new])), "no change");
        assert_eq!(hosts.others().len(), 3);
    }
}
