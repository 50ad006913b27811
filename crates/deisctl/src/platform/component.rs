//! The platform's components as deisctl runs them: their order, names, images, health checks
//! and the settings each container is created with.

use std::collections::HashMap;
use std::fmt;

use crate::Error;

/// One kind of platform container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Component {
    Etcd,
    HostAgent,
    Cache,
    Logger,
    Logspout,
    Database,
    Registry,
    /// On a Swarm: the database and the registry copied continuously onto another host.
    Backup,
    RegistryProxy,
    Controller,
    Builder,
    Router,
}

/// The start order (§17.3 of the Deis reference, with the config store first): each waits
/// for the ones before it to be healthy. Stopping goes the other way.
pub(crate) const START_ORDER: [Component; 12] = [
    Component::Etcd,
    Component::HostAgent,
    Component::Cache,
    Component::Logger,
    Component::Logspout,
    Component::Database,
    Component::Registry,
    Component::Backup,
    Component::RegistryProxy,
    Component::Controller,
    Component::Builder,
    Component::Router,
];

impl Component {
    /// The name in unit and container names, config keys and images.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::HostAgent => "host-agent",
            Component::Cache => "cache",
            Component::Logger => "logger",
            Component::Logspout => "logspout",
            Component::Database => "database",
            Component::Registry => "registry",
            Component::Backup => "backup",
            Component::RegistryProxy => "registry-proxy",
            Component::Controller => "controller",
            Component::Builder => "builder",
            Component::Router => "router",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Component> {
        START_ORDER.into_iter().find(|c| c.name() == name)
    }

    /// The image it runs, unless `/deis/<component>/image` says otherwise (the shipper runs
    /// in the logger's image, the host agent in the controller's).
    pub(crate) fn image_name(self) -> &'static str {
        match self {
            Component::Logspout => "logger",
            Component::HostAgent => "controller",
            other => other.name(),
        }
    }

    /// The heading `install` prints before it.
    pub(crate) fn phase(self) -> &'static str {
        match self {
            Component::Etcd => "Config store...",
            Component::HostAgent => "Hosts' firewall...",
            Component::Cache | Component::Logger | Component::Logspout => "Logging subsystem...",
            Component::Database
            | Component::Registry
            | Component::Backup
            | Component::RegistryProxy
            | Component::Controller
            | Component::Builder => "Control plane...",
            Component::Router => "Router mesh...",
        }
    }

    /// Whether several instances (`router@1`, `router@2`) may run.
    pub(crate) fn scalable(self) -> bool {
        self == Component::Router
    }

    /// `scale`'s refusal of a component that does not scale.
    pub(crate) fn require_scalable(self) -> Result<(), Error> {
        if self.scalable() {
            return Ok(());
        }
        Err(Error::Message(format!(
            "cannot scale {} component; only router scales",
            self.name()
        )))
    }

    /// Volumes it keeps its data in: `(suffix of the volume name, path in the container)`.
    pub(crate) fn volumes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Component::Etcd => &[("etcd-data", "/var/lib/etcd")],
            Component::Cache => &[("cache-data", "/var/lib/redis")],
            Component::Logspout => &[("logspout-data", "/var/lib/deis/shipper")],
            Component::Database => &[("database-data", "/var/lib/postgresql/data")],
            Component::Registry => &[("registry-data", "/var/lib/docker-registry")],
            Component::Backup => &[("backup-data", "/var/lib/deis/backup")],
            Component::RegistryProxy => &[("registry-proxy-cache", "/var/lib/deis/registry-proxy")],
            Component::Controller => &[("controller-data", "/var/lib/deis/controller")],
            Component::Builder => &[("builder-data", "/var/lib/deis/builder")],
            Component::Logger | Component::Router | Component::HostAgent => &[],
        }
    }

    /// Whether it exists only on a Swarm: the host agent keeps each host's firewall for the
    /// apps there (on one host the controller does it); the backup copies the data onto
    /// another host (one host has no other).
    pub(crate) fn swarm_only(self) -> bool {
        matches!(self, Component::HostAgent | Component::Backup)
    }

    /// Whether it talks to the Docker engine.
    pub(crate) fn uses_docker(self) -> bool {
        matches!(
            self,
            Component::Logspout | Component::Controller | Component::Builder
        )
    }
}

/// One container of the platform: a component and, for scalable ones, its instance number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Unit {
    pub(crate) component: Component,
    pub(crate) instance: Option<u32>,
}

impl Unit {
    pub(crate) fn single(component: Component) -> Unit {
        Unit {
            component,
            instance: component.scalable().then_some(1),
        }
    }

    /// `deis-router@1.service`.
    pub(crate) fn unit_name(self, prefix: &str) -> String {
        match self.instance {
            Some(n) => format!("{prefix}-{}@{n}.service", self.component.name()),
            None => format!("{prefix}-{}.service", self.component.name()),
        }
    }

    /// `deis-router-1` (Docker names cannot hold `@`).
    pub(crate) fn container_name(self, prefix: &str) -> String {
        match self.instance {
            Some(n) => format!("{prefix}-{}-{n}", self.component.name()),
            None => format!("{prefix}-{}", self.component.name()),
        }
    }

    /// Reads a unit from a container's labels.
    pub(crate) fn from_labels(labels: &HashMap<String, String>) -> Option<Unit> {
        let component = Component::parse(labels.get(LABEL_COMPONENT)?)?;
        let instance = match labels.get(LABEL_INSTANCE) {
            Some(n) => Some(n.parse().ok()?),
            None => None,
        };
        Some(Unit {
            component,
            instance,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.instance {
            Some(n) => write!(f, "{}@{n}", self.component.name()),
            None => f.write_str(self.component.name()),
        }
    }
}

/// Label naming the platform (the `--prefix`) on every container and volume it owns, app
/// containers included.
pub(crate) const LABEL_PLATFORM: &str = deis_docker::labels::PLATFORM;
/// Label naming a platform container's component.
pub(crate) const LABEL_COMPONENT: &str = deis_docker::labels::COMPONENT;
/// Label holding a scalable component's instance number.
pub(crate) const LABEL_INSTANCE: &str = deis_docker::labels::INSTANCE;

/// What `install`, `start`, `uninstall` act on: `platform`, `stateless-platform`, or
/// components (`router`, `deis-router@2.service`, `router@*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every component, in order; `stateful` includes the database.
    Platform { stateful: bool },
    /// One component; `instance` `None` means every instance there is.
    Component {
        component: Component,
        instance: Option<u32>,
    },
}

impl Target {
    pub(crate) fn parse(word: &str) -> Result<Target, Error> {
        let name = word.strip_prefix("deis-").unwrap_or(word);
        let name = name.strip_suffix(".service").unwrap_or(name);
        match name {
            "platform" => return Ok(Target::Platform { stateful: true }),
            "stateless-platform" => return Ok(Target::Platform { stateful: false }),
            _ => {}
        }
        let (base, instance) = match name.split_once('@') {
            Some((base, "*")) | Some((base, "")) => (base, None),
            Some((base, n)) => match n.parse::<u32>() {
                Ok(n) if n > 0 => (base, Some(n)),
                _ => return Err(unknown(word)),
            },
            None => (name, None),
        };
        let component = Component::parse(base).ok_or_else(|| unknown(word))?;
        // etcd runs one member per manager on a Swarm: etcd@1, etcd@2, ...
        if instance.is_some() && !component.scalable() && component != Component::Etcd {
            return Err(Error::Message(format!(
                "{base} has a single instance; use `{base}` without @N"
            )));
        }
        Ok(Target::Component {
            component,
            instance,
        })
    }

    /// Whether `unit` belongs to this target.
    pub(crate) fn covers(&self, unit: Unit) -> bool {
        match self {
            Target::Platform { stateful } => *stateful || unit.component != Component::Database,
            Target::Component {
                component,
                instance,
            } => unit.component == *component && (instance.is_none() || *instance == unit.instance),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Platform { stateful: true } => f.write_str("platform"),
            Target::Platform { stateful: false } => f.write_str("stateless-platform"),
            Target::Component {
                component,
                instance: Some(n),
            } => write!(f, "{}@{n}", component.name()),
            Target::Component { component, .. } => f.write_str(component.name()),
        }
    }
}

fn unknown(word: &str) -> Error {
    let names: Vec<&str> = START_ORDER.iter().map(|c| c.name()).collect();
    Error::Message(format!(
        "unknown target '{word}'; use platform, stateless-platform or one of {}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_deis_unit_names() {
        assert_eq!(
            Target::parse("deis-router@2.service").ok(),
            Some(Target::Component {
                component: Component::Router,
                instance: Some(2)
            })
        );
        assert_eq!(
            Target::parse("router@*").ok(),
            Some(Target::Component {
                component: Component::Router,
                instance: None
            })
        );
        assert_eq!(
            Target::parse("stateless-platform").ok(),
            Some(Target::Platform { stateful: false })
        );
        assert!(Target::parse("controller@2").is_err());
        assert!(Target::parse("store-gateway").is_err());
    }

    #[test]
    fn stateless_platform_leaves_out_the_database() {
        let stateless = Target::Platform { stateful: false };
        assert!(!stateless.covers(Unit::single(Component::Database)));
        assert!(stateless.covers(Unit::single(Component::Controller)));
    }

    #[test]
    fn unit_and_container_names() {
        let router = Unit::single(Component::Router);
        assert_eq!(router.unit_name("deis"), "deis-router@1.service");
        assert_eq!(router.container_name("deis"), "deis-router-1");
        let controller = Unit::single(Component::Controller);
        assert_eq!(controller.unit_name("deis"), "deis-controller.service");
    }
}
