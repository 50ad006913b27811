//! The platform's components as containers on a Docker engine: `install`, `start`, `stop`,
//! `restart`, `uninstall`, `scale`, `list`, `status` and `journal`. Docker is the record of
//! what is installed: every container and volume carries the `deis.platform` label (the
//! `--prefix`), components also `deis.component`; there is no other state.

mod component;
mod engine;
mod lifecycle;
mod ports;
mod settings;
mod show;
mod spec;
mod state;
mod swarm;
pub(crate) mod systemd;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use component::{Component, Target, Unit};
use deis_store::ConfigStore;
use engine::Engine;
use spec::StoreAddr;
pub(crate) use swarm::{AccessOptions, SwarmPlatform};

use crate::Error;

/// A platform on an engine, and how to reach its config store.
pub(crate) struct Platform {
    engine: Engine,
    prefix: String,
    tag: String,
    store: StoreAddr,
    /// The platform's own etcd container's `host` and client `port`, when `--endpoint` is one
    /// address deisctl can run etcd on; `None` for an etcd cluster run elsewhere.
    etcd: Option<(String, u16)>,
    start_timeout: Duration,
}

/// What `--endpoint` says about the etcd deisctl should run.
fn local_etcd(endpoints: &str) -> Option<(String, u16)> {
    if endpoints.contains(',') {
        return None;
    }
    let rest = endpoints.strip_prefix("http://")?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other.parse().ok()?,
    };
    // Only an address of this host: an etcd elsewhere is used as it is.
    let here = std::net::TcpListener::bind((ip, 0)).is_ok();
    here.then(|| (ip.to_string(), port))
}

/// How deisctl reaches the engine and the store.
pub(crate) struct Options {
    pub(crate) endpoints: String,
    pub(crate) namespace: String,
    pub(crate) prefix: String,
    pub(crate) tag: String,
    pub(crate) start_timeout: Duration,
}

impl Platform {
    pub(crate) async fn connect(options: Options) -> Result<Platform, Error> {
        let engine = Engine::connect(&options.prefix).await?;
        Ok(Platform {
            engine,
            prefix: options.prefix,
            tag: options.tag,
            etcd: local_etcd(&options.endpoints),
            store: StoreAddr {
                endpoints: options.endpoints,
                namespace: options.namespace,
            },
            start_timeout: options.start_timeout,
        })
    }

    async fn connect_store(&self) -> Result<Arc<dyn ConfigStore>, Error> {
        crate::connect_store(&self.store.endpoints, &self.store.namespace).await
    }
}

/// The platform deisctl acts on: containers on one engine, services on a Swarm, or units on a
/// host run by systemd.
pub(crate) enum AnyPlatform {
    Local(Platform),
    Swarm(Box<SwarmPlatform>),
    Systemd(systemd::SystemdPlatform),
}

impl AnyPlatform {
    pub(crate) async fn install(
        &self,
        targets: &[Target],
        routers: Option<u32>,
    ) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.install(targets, routers.unwrap_or(1)).await,
            AnyPlatform::Swarm(p) => p.install(targets, routers).await,
            AnyPlatform::Systemd(p) => p.install(targets, routers).await,
        }
    }

    pub(crate) async fn uninstall(&self, targets: &[Target], keep_data: bool) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.uninstall(targets, keep_data).await,
            AnyPlatform::Swarm(p) => p.uninstall(targets, keep_data).await,
            AnyPlatform::Systemd(p) => p.uninstall(targets, keep_data).await,
        }
    }

    pub(crate) async fn start(&self, targets: &[Target]) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.start(targets).await,
            AnyPlatform::Swarm(p) => p.start(targets).await,
            AnyPlatform::Systemd(p) => p.start(targets).await,
        }
    }

    pub(crate) async fn stop(&self, targets: &[Target]) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.stop(targets).await,
            AnyPlatform::Swarm(p) => p.stop(targets).await,
            AnyPlatform::Systemd(p) => p.stop(targets).await,
        }
    }

    pub(crate) async fn restart(&self, targets: &[Target]) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.restart(targets).await,
            AnyPlatform::Swarm(p) => p.restart(targets).await,
            AnyPlatform::Systemd(p) => p.restart(targets).await,
        }
    }

    pub(crate) async fn list(&self) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.list().await,
            AnyPlatform::Swarm(p) => p.list().await,
            AnyPlatform::Systemd(p) => p.list().await,
        }
    }

    pub(crate) async fn status(&self, targets: &[Target]) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.status(targets).await,
            AnyPlatform::Swarm(p) => p.status(targets).await,
            AnyPlatform::Systemd(p) => p.status(targets).await,
        }
    }

    pub(crate) async fn journal(
        &self,
        targets: &[Target],
        lines: usize,
        follow: bool,
    ) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.journal(targets, lines, follow).await,
            AnyPlatform::Swarm(p) => p.journal(targets, lines, follow).await,
            AnyPlatform::Systemd(p) => p.journal(targets, lines, follow).await,
        }
    }

    pub(crate) async fn scale(&self, component: Component, count: u32) -> Result<(), Error> {
        match self {
            AnyPlatform::Local(p) => p.scale(component, count).await,
            AnyPlatform::Swarm(p) => p.scale(component, count).await,
            AnyPlatform::Systemd(p) => p.scale(component, count).await,
        }
    }

    /// Restores the database or the registry of a lost host onto `host` from the backup.
    pub(crate) async fn restore(&self, component: Component, host: &str) -> Result<(), Error> {
        match self {
            AnyPlatform::Swarm(p) => p.restore(component, host).await,
            _ => Err(Error::Message(
                "deisctl restore brings the database or the registry of a lost host back on another host of a Swarm (DEISCTL_SCHEDULER=swarm); on one host they keep their data in its volumes".to_owned(),
            )),
        }
    }

    /// Replaces what a lost host ran on a Swarm: an etcd member, or a controller.
    pub(crate) async fn replace(&self, unit: Unit, host: &str) -> Result<(), Error> {
        match (self, unit.component, unit.instance) {
            (AnyPlatform::Swarm(p), Component::Etcd, Some(k)) => p.replace_member(k, host).await,
            (AnyPlatform::Swarm(p), Component::Controller, None) => {
                p.replace_controller(host).await
            }
            _ => Err(Error::Message(
                "deisctl replace moves one of etcd's members (etcd@1, etcd@2, ...) or the controller of a lost host to another host of a Swarm (DEISCTL_SCHEDULER=swarm)".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local_etcd;

    #[test]
    fn etcd_runs_here_only_for_one_http_endpoint() {
        assert_eq!(
            local_etcd("http://127.0.0.7:2379"),
            Some(("127.0.0.7".to_owned(), 2379))
        );
        assert_eq!(
            local_etcd("http://localhost:4001/"),
            Some(("127.0.0.1".to_owned(), 4001))
        );
        assert_eq!(
            local_etcd("http://10.0.0.1:2379,http://10.0.0.2:2379"),
            None
        );
        assert_eq!(local_etcd("http://etcd.example.com:2379"), None);
        assert_eq!(
            local_etcd("http://192.0.2.1:2379"),
            None,
            "not an address of this host"
        );
    }
}
