//! The platform on a host run by systemd (`DEISCTL_SCHEDULER=systemd`), as CoreOS's fleet ran
//! Deis v1: the unit files of `systemd-units/`, rendered as `refresh-units` renders them, are
//! written into the host's `/etc/systemd/system` and driven with `systemctl`; each unit runs
//! its component's container on the host's Docker engine (`docker run --net host`). The unit
//! files are the record of what is installed; the host's own etcd (`etcd.service`, which the
//! units reach at `$COREOS_PRIVATE_IPV4:2379` from `/etc/environment`) holds the settings.
//!
//! deisctl reaches the host through the SSH tunnel (`DEISCTL_TUNNEL=[user@]host[:port]`), or
//! runs `systemctl` itself when there is none (deisctl on the host).

mod host;
mod lifecycle;
mod show;
mod state;

use std::sync::Arc;
use std::time::Duration;

use deis_store::ConfigStore;
use tokio::sync::Mutex;

use super::component::{Component, Unit};
use crate::Error;
use crate::tunnel::{Forward, SshOptions, Tunnel, TunnelSpec};
use host::Host;

/// Where the unit files go on the host.
const UNIT_DIR: &str = "/etc/systemd/system";

/// The prefix the unit files give their units and containers (`deis-controller`).
const PREFIX: &str = "deis";

/// A platform on a host run by systemd.
pub(crate) struct SystemdPlatform {
    host: Host,
    endpoints: String,
    tag: String,
    start_timeout: Duration,
    /// Forwards to etcd through the tunnel, open while deisctl runs.
    forwards: Mutex<Vec<Forward>>,
}

impl SystemdPlatform {
    /// Opens the tunnel, if any, and checks that the host runs systemd.
    pub(crate) async fn connect(
        options: super::Options,
        tunnel: Option<TunnelSpec>,
        ssh: SshOptions,
    ) -> Result<SystemdPlatform, Error> {
        if options.prefix != PREFIX {
            return Err(Error::Message(format!(
                "the unit files name their units and containers {PREFIX}-<component>, not {}-: unset DEISCTL_PREFIX (or --prefix) with DEISCTL_SCHEDULER=systemd",
                options.prefix
            )));
        }
        if !options.namespace.is_empty() {
            return Err(Error::Message(format!(
                "the unit files read their settings under /deis/ with no namespace, not {}: unset DEIS_ETCD_NAMESPACE (or --namespace) with DEISCTL_SCHEDULER=systemd",
                options.namespace
            )));
        }
        let host = match tunnel {
            Some(spec) => Host::Ssh(Tunnel::connect(&spec, &ssh).await?),
            None => Host::Local,
        };
        let found = host.run("command -v systemctl").await?;
        if !found.success() {
            return Err(Error::Message(format!(
                "{} has no systemctl: DEISCTL_SCHEDULER=systemd is for hosts run by systemd; use DEISCTL_SCHEDULER=docker there",
                host.name()
            )));
        }
        Ok(SystemdPlatform {
            host,
            endpoints: options.endpoints,
            tag: options.tag,
            start_timeout: options.start_timeout,
            forwards: Mutex::new(Vec::new()),
        })
    }

    /// The host's etcd (`--endpoint` as the host resolves it: through the tunnel when there is
    /// one), as deisctl's config store.
    pub(crate) async fn store(&self) -> Result<Arc<dyn ConfigStore>, Error> {
        let Host::Ssh(tunnel) = &self.host else {
            return crate::connect_store(&self.endpoints, "").await;
        };
        let mut urls = Vec::new();
        for endpoint in self.endpoints.split(',') {
            let (scheme, host, port) = split_endpoint(endpoint)?;
            let forward = tunnel.forward_tcp(&host, port).await?;
            urls.push(format!("{scheme}://{}", forward.addr()));
            self.forwards.lock().await.push(forward);
        }
        deis_store::connect(&deis_store::StoreConfig::Etcd {
            endpoints: urls,
            namespace: String::new(),
            tls: None,
        })
        .await
        .map_err(|e| {
            Error::Message(format!(
                "cannot reach etcd at {} on {} through the SSH tunnel ({e}); is etcd.service running there (systemctl status etcd), or is --endpoint another address?",
                self.endpoints,
                self.host.name()
            ))
        })
    }
}

/// `http://127.0.0.1:2379` -> (`http`, `127.0.0.1`, 2379).
fn split_endpoint(endpoint: &str) -> Result<(String, String, u16), Error> {
    let bad = || {
        Error::Message(format!(
            "--endpoint '{endpoint}' is not scheme://host:port, e.g. http://127.0.0.1:2379"
        ))
    };
    let (scheme, rest) = endpoint.trim().split_once("://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((scheme.to_owned(), host.to_owned(), port))
}

/// `deis-router@1.service`.
fn unit_name(unit: Unit) -> String {
    unit.unit_name(PREFIX)
}

/// The file of `systemd-units/` a unit is rendered from (`deis-router@.service` for every
/// router); `None` for etcd, the host's own service.
fn template_of(unit: Unit) -> Option<String> {
    match (unit.component, unit.instance) {
        (Component::Etcd, _) => None,
        (c, Some(_)) => Some(format!("{PREFIX}-{}@.service", c.name())),
        (c, None) => Some(format!("{PREFIX}-{}.service", c.name())),
    }
}

/// The unit a file of the unit directory holds (`deis-router@1.service`), if it is one of the
/// platform's.
fn unit_of_file(file: &str) -> Option<Unit> {
    let name = file.strip_prefix("deis-")?.strip_suffix(".service")?;
    let (base, instance) = match name.split_once('@') {
        Some((base, n)) => (base, Some(n.parse::<u32>().ok().filter(|n| *n > 0)?)),
        None => (name, None),
    };
    let component = Component::parse(base)?;
    if component == Component::Etcd || component.scalable() != instance.is_some() {
        return None;
    }
    Some(Unit {
        component,
        instance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_files_name_their_units() {
        let router = Unit {
            component: Component::Router,
            instance: Some(2),
        };
        assert_eq!(unit_of_file("deis-router@2.service"), Some(router));
        assert_eq!(template_of(router).as_deref(), Some("deis-router@.service"));
        let proxy = Unit::single(Component::RegistryProxy);
        assert_eq!(unit_of_file("deis-registry-proxy.service"), Some(proxy));
        assert_eq!(
            template_of(proxy).as_deref(),
            Some("deis-registry-proxy.service")
        );
        for other in [
            "deis-router@.service",
            "deis-router.service",
            "deis-controller@1.service",
            "deis-etcd.service",
            "etcd.service",
            "deis-controller.service.tmp",
            "multi-user.target.wants",
        ] {
            assert_eq!(unit_of_file(other), None, "{other}");
        }
        assert_eq!(template_of(Unit::single(Component::Etcd)), None);
    }

    #[test]
    fn endpoints_split_into_host_and_port() {
        let split = split_endpoint("http://127.0.0.1:2379/").ok();
        assert_eq!(
            split,
            Some(("http".to_owned(), "127.0.0.1".to_owned(), 2379))
        );
        assert!(split_endpoint("127.0.0.1:2379").is_err());
        assert!(split_endpoint("http://etcd").is_err());
    }
}
