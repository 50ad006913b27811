//! Each component as a Swarm service: its name, where its tasks run, and the service spec made
//! from the same container settings a single host uses (`spec.rs`), on the hosts' own network.
//!
//! Placement: etcd's members each on their own manager; two controllers on two managers (one
//! leads, the other stands by); the database and the registry on the
//! first etcd host (their data stay in that host's volumes); the controller on a manager (it
//! schedules apps through the Swarm); the router on every host unless scaled down (one per
//! host: they share the hosts' ports); the log shipper, the registry proxy and the host agent on
//! every host (global: each host ships its own containers' logs, pulls through its own proxy and
//! keeps its own firewall for the apps); the
//! builder anywhere; two loggers on two hosts (they share Redis, which sits with the database).
//!
//! A service is "loaded" (installed, not started) while it carries a constraint no host meets;
//! `start` removes it and `stop` puts it back, so that install, start and stop mean what they
//! meant with fleet, for replicated and global services alike.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSpec, Mount, MountType, MountVolumeOptions,
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::nodes::Node;
use crate::platform::component::{
    Component, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_PLATFORM, Unit,
};
use crate::platform::spec;

/// Label saying whether a service should run: `launched` or `loaded`.
pub(crate) const LABEL_DESIRED: &str = "deis.desired";

/// Seconds a task gets to exit before it is killed.
const STOP_GRACE_SECONDS: i64 = 15;

/// How many tasks a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Replicated(u32),
    /// One task on every host.
    Global,
}

/// Where a service's tasks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) mode: Mode,
    pub(crate) constraints: Vec<String>,
    /// At most one task per host (components that bind the hosts' ports).
    pub(crate) one_per_host: bool,
}

/// What placement depends on.
pub(crate) struct Plan<'a> {
    /// The platform's name (labels of the hosts it pins components to).
    pub(crate) prefix: &'a str,
    /// The hosts of etcd's members, in member order.
    pub(crate) etcd_hosts: &'a [Node],
    /// Routers to run (every host by default).
    pub(crate) routers: u32,
    /// The hosts ready to run tasks.
    pub(crate) hosts: u32,
    /// The managers among them.
    pub(crate) managers: u32,
    /// The host the database (and Redis) are pinned to: the first etcd host at install, another
    /// after `deisctl restore database`.
    pub(crate) database: Option<&'a Node>,
    /// The host the registry is pinned to, likewise.
    pub(crate) registry: Option<&'a Node>,
}

/// The label of the hosts a platform's controllers run on.
pub(crate) fn controller_label(prefix: &str) -> String {
    format!("{prefix}-controller")
}

/// The constraint that keeps a loaded service from running anywhere.
pub(crate) fn stopped_constraint(prefix: &str) -> String {
    format!("node.labels.deis-stopped=={prefix}")
}

/// The units of a component on a Swarm: etcd has one per member, the others one service.
pub(crate) fn units_of(component: Component, etcd_members: usize) -> Vec<Unit> {
    match component {
        Component::Etcd => (1..=etcd_members)
            .filter_map(|k| u32::try_from(k).ok())
            .map(|k| Unit {
                component,
                instance: Some(k),
            })
            .collect(),
        _ => vec![Unit {
            component,
            instance: None,
        }],
    }
}

pub(crate) fn placement(unit: Unit, plan: &Plan<'_>) -> Placement {
    let pinned = |node: Option<&Node>| Placement {
        mode: Mode::Replicated(1),
        constraints: node
            .map(|n| vec![format!("node.id=={}", n.id)])
            .unwrap_or_default(),
        one_per_host: false,
    };
    match unit.component {
        Component::Etcd => {
            let member = unit.instance.unwrap_or(1) as usize;
            pinned(plan.etcd_hosts.get(member.saturating_sub(1)))
        }
        Component::Database | Component::Cache => pinned(plan.database),
        Component::Registry => pinned(plan.registry),
        // Anywhere but the data's hosts (none on a single host); when its host is lost, the
        // Swarm starts it on another, where it makes a new copy.
        Component::Backup => {
            let mut constraints: Vec<String> = [plan.database, plan.registry]
                .into_iter()
                .flatten()
                .map(|n| format!("node.id!={}", n.id))
                .collect();
            constraints.dedup();
            Placement {
                mode: Mode::Replicated(u32::from(plan.hosts > 1)),
                constraints,
                one_per_host: false,
            }
        }
        Component::Logspout | Component::RegistryProxy | Component::HostAgent => Placement {
            mode: Mode::Global,
            constraints: Vec::new(),
            one_per_host: false,
        },
        Component::Router => Placement {
            mode: Mode::Replicated(plan.routers.max(1)),
            constraints: Vec::new(),
            one_per_host: true,
        },
        // Two on two managers: one leads, the other stands by (see deis-controller's `leader`).
        // Each stays on its host (labelled, `nodes::pin_controllers`): a killed one comes back
        // on its own address, which the routers' tables and the clients know, and takes the
        // lead back at once; a lost host's comes back with `deisctl replace controller`.
        Component::Controller => Placement {
            mode: Mode::Replicated(plan.managers.clamp(1, 2)),
            constraints: vec![
                "node.role==manager".to_owned(),
                format!("node.labels.{}==true", controller_label(plan.prefix)),
            ],
            one_per_host: true,
        },
        Component::Builder => Placement {
            mode: Mode::Replicated(1),
            constraints: Vec::new(),
            one_per_host: true,
        },
        // Two, on two hosts: their lines are in Redis, either serves them.
        Component::Logger => Placement {
            mode: Mode::Replicated(plan.hosts.clamp(1, 2)),
            constraints: Vec::new(),
            one_per_host: true,
        },
    }
}

/// A Swarm secret a service reads, mounted at `/run/secrets/<name>`.
#[derive(Debug, Clone)]
pub(crate) struct SecretRef {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// The path a secret is read at inside a task.
pub(crate) fn secret_path(name: &str) -> String {
    format!("/run/secrets/{name}")
}

fn labels(prefix: &str, unit: Unit, launched: bool) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_PLATFORM.to_owned(), prefix.to_owned()),
        (LABEL_COMPONENT.to_owned(), unit.component.name().to_owned()),
        (
            LABEL_DESIRED.to_owned(),
            if launched { "launched" } else { "loaded" }.to_owned(),
        ),
    ]);
    if let Some(n) = unit.instance {
        labels.insert(LABEL_INSTANCE.to_owned(), n.to_string());
    }
    labels
}

/// The service for `unit`, from the container settings `body`.
pub(crate) fn service(
    prefix: &str,
    unit: Unit,
    body: ContainerCreateBody,
    placement: &Placement,
    secrets: &[SecretRef],
    launched: bool,
) -> ServiceSpec {
    let host = body.host_config.unwrap_or_default();
    let mounts: Vec<Mount> = host
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            if m.typ == Some(MountType::VOLUME) {
                // Created on whichever host runs the task, labelled so uninstall finds it.
                m.volume_options = Some(MountVolumeOptions {
                    labels: Some(HashMap::from([(
                        LABEL_PLATFORM.to_owned(),
                        prefix.to_owned(),
                    )])),
                    ..Default::default()
                });
            }
            m
        })
        .collect();
    let mut constraints = placement.constraints.clone();
    if !launched {
        constraints.push(stopped_constraint(prefix));
    }
    let labels = labels(prefix, unit, launched);
    let mode = match placement.mode {
        Mode::Replicated(n) => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(n)),
            }),
            ..Default::default()
        },
        Mode::Global => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
    };
    ServiceSpec {
        name: Some(unit.container_name(prefix)),
        labels: Some(labels.clone()),
        mode: Some(mode),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: body.image,
                // The image's entrypoint stays; `cmd` becomes its arguments.
                args: body.cmd,
                env: body.env,
                labels: Some(labels),
                mounts: Some(mounts),
                health_check: body.healthcheck,
                init: host.init,
                capability_add: host.cap_add,
                stop_grace_period: Some(STOP_GRACE_SECONDS * 1_000_000_000),
                secrets: Some(
                    secrets
                        .iter()
                        .map(|s| TaskSpecContainerSpecSecrets {
                            file: Some(TaskSpecContainerSpecFile {
                                name: Some(s.name.clone()),
                                uid: Some("0".to_owned()),
                                gid: Some("0".to_owned()),
                                mode: Some(0o444),
                            }),
                            secret_id: Some(s.id.clone()),
                            secret_name: Some(s.name.clone()),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some("host".to_owned()),
                ..Default::default()
            }]),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(2_000_000_000),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(constraints),
                max_replicas: placement.one_per_host.then_some(1),
                ..Default::default()
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec::default()),
        // Every task at once: a stop (the constraint no host meets) must not wait for a
        // replacement that can never start before it stops the next task.
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::CONTINUE),
            order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How an etcd member starts: with the cluster (all members at once) or joining one that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    New,
    Existing,
}

/// One etcd member to run: the `k`th, `me` (its name and host address) among `cluster` (every
/// member's, `me` included).
pub(crate) struct MemberSpec {
    pub(crate) k: usize,
    pub(crate) me: (String, String),
    pub(crate) cluster: Vec<(String, String)>,
    pub(crate) join: Join,
}

/// The container settings of an etcd member, with TLS for clients and peers from the secrets
/// `ca`, `cert` and `key`; clients on `port` (the host's address and loopback), peers on
/// `port + 1`, health on loopback `port + 2`.
pub(crate) fn etcd_member(
    prefix: &str,
    tag: &str,
    member: &MemberSpec,
    port: u16,
    tls: (&str, &str, &str),
) -> ContainerCreateBody {
    let (ca, cert, key) = tls;
    let (name, addr) = member.me.clone();
    let (k, members, join) = (member.k, &member.cluster, member.join);
    let peer_port = port.saturating_add(1);
    let health_port = port.saturating_add(2);
    let cluster: Vec<String> = members
        .iter()
        .map(|(n, a)| format!("{n}=https://{a}:{peer_port}"))
        .collect();
    let args = [
        "--name".to_owned(),
        name,
        "--data-dir".to_owned(),
        "/var/lib/etcd".to_owned(),
        "--listen-client-urls".to_owned(),
        format!("https://{addr}:{port},https://127.0.0.1:{port}"),
        "--advertise-client-urls".to_owned(),
        format!("https://{addr}:{port}"),
        "--listen-peer-urls".to_owned(),
        format!("https://{addr}:{peer_port}"),
        "--initial-advertise-peer-urls".to_owned(),
        format!("https://{addr}:{peer_port}"),
        "--initial-cluster".to_owned(),
        cluster.join(","),
        "--initial-cluster-token".to_owned(),
        prefix.to_owned(),
        "--initial-cluster-state".to_owned(),
        match join {
            Join::New => "new",
            Join::Existing => "existing",
        }
        .to_owned(),
        "--listen-metrics-urls".to_owned(),
        format!("http://127.0.0.1:{health_port}"),
        "--client-cert-auth".to_owned(),
        "--trusted-ca-file".to_owned(),
        secret_path(ca),
        "--cert-file".to_owned(),
        secret_path(cert),
        "--key-file".to_owned(),
        secret_path(key),
        "--peer-client-cert-auth".to_owned(),
        "--peer-trusted-ca-file".to_owned(),
        secret_path(ca),
        "--peer-cert-file".to_owned(),
        secret_path(cert),
        "--peer-key-file".to_owned(),
        secret_path(key),
    ];
    let unit = Unit {
        component: Component::Etcd,
        instance: u32::try_from(k).ok(),
    };
    spec::body(
        prefix,
        unit,
        format!("deis/etcd:{tag}"),
        args.to_vec(),
        Vec::new(),
        Vec::new(),
        Some(spec::http_check(format!(
            "http://127.0.0.1:{health_port}/health"
        ))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addr: &str, manager: bool) -> Node {
        Node {
            id: format!("id-{name}"),
            hostname: name.to_owned(),
            addr: addr.to_owned(),
            manager,
            ready: true,
        }
    }

    #[test]
    fn data_stays_on_the_first_etcd_host_and_routers_one_per_host() {
        let nodes = [
            node("a", "10.0.0.1", true),
            node("b", "10.0.0.2", true),
            node("c", "10.0.0.3", true),
        ];
        let plan = Plan {
            prefix: "d",
            etcd_hosts: &nodes,
            routers: 3,
            hosts: 3,
            managers: 3,
            database: nodes.first(),
            registry: nodes.first(),
        };
        let db = placement(Unit::single(Component::Database), &plan);
        assert_eq!(db.constraints, ["node.id==id-a"]);
        let member = Unit {
            component: Component::Etcd,
            instance: Some(2),
        };
        assert_eq!(placement(member, &plan).constraints, ["node.id==id-b"]);
        let router = placement(
            Unit {
                component: Component::Router,
                instance: None,
            },
            &plan,
        );
        assert_eq!(router.mode, Mode::Replicated(3));
        assert!(router.one_per_host);
        let shipper = placement(Unit::single(Component::Logspout), &plan);
        assert_eq!(shipper.mode, Mode::Global);
        let controllers = placement(Unit::single(Component::Controller), &plan);
        assert_eq!(controllers.mode, Mode::Replicated(2));
        assert!(
            controllers
                .constraints
                .contains(&"node.labels.d-controller==true".to_owned()),
            "{controllers:?}"
        );
    }

    #[test]
    fn the_backup_runs_anywhere_but_on_the_data_hosts_and_not_on_one_host() {
        let nodes = [
            node("a", "10.0.0.1", true),
            node("b", "10.0.0.2", true),
            node("c", "10.0.0.3", true),
        ];
        let mut plan = Plan {
            prefix: "d",
            etcd_hosts: &nodes,
            routers: 3,
            hosts: 3,
            managers: 3,
            database: nodes.first(),
            registry: nodes.get(1),
        };
        let backup = placement(Unit::single(Component::Backup), &plan);
        assert_eq!(backup.mode, Mode::Replicated(1));
        assert_eq!(backup.constraints, ["node.id!=id-a", "node.id!=id-b"]);
        plan.registry = nodes.first();
        let backup = placement(Unit::single(Component::Backup), &plan);
        assert_eq!(backup.constraints, ["node.id!=id-a"]);
        plan.hosts = 1;
        let alone = placement(Unit::single(Component::Backup), &plan);
        assert_eq!(alone.mode, Mode::Replicated(0));
    }

    #[test]
    fn a_loaded_service_runs_nowhere_and_a_launched_one_keeps_its_placement() {
        let body = ContainerCreateBody {
            image: Some("deis/router:t".to_owned()),
            cmd: Some(vec!["--flag".to_owned()]),
            ..Default::default()
        };
        let unit = Unit {
            component: Component::Router,
            instance: None,
        };
        let place = Placement {
            mode: Mode::Replicated(2),
            constraints: vec!["node.role==manager".to_owned()],
            one_per_host: true,
        };
        let loaded = service("deis", unit, body.clone(), &place, &[], false);
        let constraints = loaded
            .task_template
            .as_ref()
            .and_then(|t| t.placement.as_ref())
            .and_then(|p| p.constraints.clone())
            .unwrap_or_default();
        assert!(constraints.contains(&stopped_constraint("deis")));
        assert_eq!(loaded.name.as_deref(), Some("deis-router"));
        let launched = service("deis", unit, body, &place, &[], true);
        let task = launched.task_template.unwrap_or_default();
        assert_eq!(
            task.placement.and_then(|p| p.constraints),
            Some(vec!["node.role==manager".to_owned()])
        );
        let container = task.container_spec.unwrap_or_default();
        assert_eq!(container.args, Some(vec!["--flag".to_owned()]));
        assert_eq!(container.command, None, "the image's entrypoint stays");
        assert_eq!(
            task.networks
                .and_then(|n| n.first().and_then(|a| a.target.clone())),
            Some("host".to_owned())
        );
    }
}
