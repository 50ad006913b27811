//! How each component's container is created: command, environment, volumes, the Docker
//! socket, host networking, a restart policy, a health check and the platform's labels.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, Mount, MountType, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::component::{Component, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_PLATFORM, Unit};
use super::settings::Settings;

/// The host agent's health port (loopback).
const HOST_AGENT_PORT: u16 = 2226;

/// Where the backup keeps its copies (its volume): `pg/current/{base,wal}` and `registry/`;
/// `ready` once the first base backup is complete.
pub(crate) const BACKUP_DIR: &str = "/var/lib/deis/backup";

/// Where the platform's etcd is and which key prefix it uses.
#[derive(Debug, Clone)]
pub(crate) struct StoreAddr {
    /// The endpoints, comma-separated, as components take them.
    pub(crate) endpoints: String,
    pub(crate) namespace: String,
}

/// Everything a container's settings come from.
pub(crate) struct Context<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) tag: &'a str,
    pub(crate) store: &'a StoreAddr,
    pub(crate) settings: &'a Settings,
    /// Whether the platform's own database is installed (else SQLite, or `/deis/database/url`).
    pub(crate) database_installed: bool,
    /// Whether the platform's Redis is installed (else each logger keeps lines in memory).
    pub(crate) cache_installed: bool,
    /// The isolated network app and build containers join.
    pub(crate) app_network: &'a str,
    /// On a Swarm: where the pinned components are and how components reach etcd.
    pub(crate) cluster: Option<&'a ClusterPlaces>,
}

/// What differs when the components run as Swarm services across several hosts.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPlaces {
    /// The address of the host the database runs on (it listens there).
    pub(crate) database_host: String,
    /// The address of the host the registry runs on (every host's proxy forwards to it).
    pub(crate) registry_host: String,
    /// Environment variables that give a component its etcd client certificate.
    pub(crate) etcd_tls_env: Vec<String>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Checks every 2 s once up; every 250 ms while starting, for up to 5 minutes.
pub(crate) fn health(test: Vec<String>) -> HealthConfig {
    HealthConfig {
        test: Some(test),
        interval: Some(nanos(Duration::from_secs(2))),
        timeout: Some(nanos(Duration::from_secs(3))),
        retries: Some(3),
        start_period: Some(nanos(Duration::from_secs(300))),
        start_interval: Some(nanos(Duration::from_millis(250))),
    }
}

pub(crate) fn http_check(url: String) -> HealthConfig {
    health(vec![
        "CMD".into(),
        "wget".into(),
        "-q".into(),
        "-O".into(),
        "/dev/null".into(),
        url,
    ])
}

/// `GET /healthz` on the component's `port` setting.
fn healthz(s: &Settings, c: Component, port: &str) -> HealthConfig {
    http_check(format!("http://{}/healthz", s.local(c, port)))
}

/// The Docker socket inside the containers that use the engine, or `DOCKER_HOST` passed on.
fn docker_access(env: &mut Vec<String>, mounts: &mut Vec<Mount>) {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.starts_with("unix://") => env.push(format!("DOCKER_HOST={host}")),
        other => {
            let socket = other
                .ok()
                .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
                .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
            mounts.push(docker_socket(socket));
        }
    }
}

/// The engine's socket `source` at the path components look for it.
fn docker_socket(source: String) -> Mount {
    Mount {
        target: Some("/var/run/docker.sock".into()),
        source: Some(source),
        typ: Some(MountType::BIND),
        ..Default::default()
    }
}

fn labels(prefix: &str, unit: Unit) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_PLATFORM.to_owned(), prefix.to_owned()),
        (LABEL_COMPONENT.to_owned(), unit.component.name().to_owned()),
    ]);
    if let Some(n) = unit.instance {
        labels.insert(LABEL_INSTANCE.to_owned(), n.to_string());
    }
    labels
}

/// The volume a component keeps `suffix` in.
pub(crate) fn volume_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{suffix}")
}

pub(crate) fn body(
    prefix: &str,
    unit: Unit,
    image: String,
    cmd: Vec<String>,
    env: Vec<String>,
    mut mounts: Vec<Mount>,
    health: Option<HealthConfig>,
) -> ContainerCreateBody {
    for (suffix, path) in unit.component.volumes() {
        mounts.push(Mount {
            target: Some((*path).to_owned()),
            source: Some(volume_name(prefix, suffix)),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        });
    }
    ContainerCreateBody {
        image: Some(image),
        cmd: (!cmd.is_empty()).then_some(cmd),
        env: Some(env),
        labels: Some(labels(prefix, unit)),
        healthcheck: health,
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            // Reaps the processes a component starts (git, for the builder).
            init: Some(true),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            mounts: Some(mounts),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The config store's own container: a one-member etcd on `host:port` (peers on `port + 1`).
pub(crate) fn etcd(prefix: &str, tag: &str, host: &str, port: u16) -> ContainerCreateBody {
    let client = format!("http://{host}:{port}");
    let peer = format!("http://{host}:{}", port.saturating_add(1));
    let cmd = [
        "--name",
        prefix,
        "--data-dir",
        "/var/lib/etcd",
        "--listen-client-urls",
        &client,
        "--advertise-client-urls",
        &client,
        "--listen-peer-urls",
        &peer,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster",
        &format!("{prefix}={peer}"),
    ];
    body(
        prefix,
        Unit::single(Component::Etcd),
        format!("deis/etcd:{tag}"),
        cmd.iter().map(|s| (*s).to_owned()).collect(),
        Vec::new(),
        Vec::new(),
        Some(http_check(format!("{client}/health"))),
    )
}

/// A component's container.
pub(crate) fn component(ctx: &Context<'_>, unit: Unit) -> ContainerCreateBody {
    let s = ctx.settings;
    let c = unit.component;
    // On a Swarm every task of a service gets the same environment: each finds its own
    // host's address (the one it reaches etcd from).
    let advertise = match ctx.cluster {
        Some(_) => "auto",
        None => s.local_host.as_str(),
    };
    let database_host = ctx
        .cluster
        .map_or(s.local_host.as_str(), |p| p.database_host.as_str());
    let registry_host = ctx
        .cluster
        .map_or(s.local_host.as_str(), |p| p.registry_host.as_str());
    // Redis sits with the database.
    let cache_host = database_host;
    let at =
        |host: &str, component: Component| format!("{host}:{}", s.port(component, "listenPort"));
    let mut env = vec![
        format!("DEIS_ETCD_ENDPOINTS={}", ctx.store.endpoints),
        format!("DEIS_ETCD_NAMESPACE={}", ctx.store.namespace),
        format!("DEIS_ADVERTISE_HOST={advertise}"),
        format!("DEIS_PLATFORM_DOMAIN={}", s.domain),
        format!("DEIS_CONTAINER_LABELS={LABEL_PLATFORM}={}", ctx.prefix),
        "RUST_LOG=info".to_owned(),
    ];
    if let Some(places) = ctx.cluster {
        env.extend(places.etcd_tls_env.iter().cloned());
    }
    let mut mounts = Vec::new();
    if c.uses_docker() {
        match ctx.cluster {
            // Each host's own engine, whatever deisctl itself talks to.
            Some(_) => mounts.push(docker_socket("/var/run/docker.sock".to_owned())),
            None => docker_access(&mut env, &mut mounts),
        }
    }
    let mut cmd = Vec::new();
    let check = match c {
        Component::Etcd => None,
        Component::HostAgent => {
            cmd = vec!["host-agent".to_owned()];
            env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
            // The router's ports and its relay of `git push`: what apps may reach of any host.
            env.push(format!(
                "DEIS_APP_FIREWALL_PORTS={},{},{}",
                s.port(Component::Router, "listenPort"),
                s.port(Component::Router, "httpsListenPort"),
                s.port(Component::Builder, "listenPort")
            ));
            // A Swarm template: each task its host's name.
            env.push("DEIS_HOST_NAME={{.Node.Hostname}}".to_owned());
            env.push(format!(
                "DEIS_HOST_AGENT_LISTEN=127.0.0.1:{HOST_AGENT_PORT}"
            ));
            Some(http_check(format!(
                "http://127.0.0.1:{HOST_AGENT_PORT}/healthz"
            )))
        }
        Component::Cache => {
            // Only the loggers use it; a password all the same (the apps' firewall is the
            // first line).
            cmd = [
                "--bind",
                cache_host,
                "--port",
                &s.port(c, "listenPort").to_string(),
                "--requirepass",
                &s.cache_password,
                "--dir",
                "/var/lib/redis",
                "--appendonly",
                "yes",
                "--protected-mode",
                "no",
            ]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
            Some(health(vec![
                "CMD-SHELL".into(),
                format!(
                    "printf 'AUTH {}\\r\\nPING\\r\\n' | nc {} | grep -q PONG",
                    s.cache_password,
                    at(cache_host, c).replace(':', " ")
                ),
            ]))
        }
        Component::Logger => {
            env.push(format!("DEIS_LOGGER_LISTEN={}", s.listen(c, "listenPort")));
            if ctx.cache_installed {
                env.push(format!(
                    "DEIS_LOGGER_REDIS_URL=redis://:{}@{}/0",
                    s.cache_password,
                    at(cache_host, Component::Cache)
                ));
            }
            env.push(format!(
                "DEIS_LOGGER_SYSLOG_UDP={}",
                s.listen(c, "syslogPort")
            ));
            env.push(format!(
                "DEIS_LOGGER_SYSLOG_TCP={}",
                s.listen(c, "syslogPort")
            ));
            Some(healthz(s, c, "listenPort"))
        }
        Component::Logspout => {
            cmd = vec![
                "--ship-only".to_owned(),
                "--shipper-state".to_owned(),
                "/var/lib/deis/shipper/shipper.json".to_owned(),
            ];
            None
        }
        Component::Database => {
            env.push(format!("POSTGRES_PASSWORD={}", s.database_password));
            // Only the controller uses it: it listens on this host alone.
            env.push(format!("DEIS_DATABASE_HOST={database_host}"));
            env.push(format!("DEIS_DATABASE_PORT={}", s.port(c, "listenPort")));
            Some(health(vec![
                "CMD".into(),
                "pg_isready".into(),
                "-q".into(),
                "-h".into(),
                database_host.to_owned(),
                "-p".into(),
                s.port(c, "listenPort").to_string(),
            ]))
        }
        Component::Registry => {
            // No authentication: it listens on one address, behind the registry proxies (on a
            // cluster the apps' firewall keeps app containers away from it).
            env.push(format!("REGISTRY_HTTP_ADDR={}", at(registry_host, c)));
            Some(http_check(format!("http://{}/v2/", at(registry_host, c))))
        }
        Component::Backup => {
            // deploy/images/backup-entrypoint: a base backup, then every WAL record as it is
            // written; the registry's repositories copied into a registry of its own.
            env.push(format!("POSTGRES_PASSWORD={}", s.database_password));
            env.push(format!(
                "DEIS_DATABASE_ADDR={}",
                at(database_host, Component::Database)
            ));
            env.push(format!(
                "DEIS_REGISTRY_ADDR={}",
                at(registry_host, Component::Registry)
            ));
            env.push(format!(
                "DEIS_BACKUP_REGISTRY_ADDR={}",
                s.local(c, "registryPort")
            ));
            if ctx.cache_installed {
                env.push(format!(
                    "DEIS_CACHE_ADDR={}",
                    at(cache_host, Component::Cache)
                ));
                env.push(format!("DEIS_CACHE_PASSWORD={}", s.cache_password));
                env.push(format!(
                    "DEIS_BACKUP_CACHE_ADDR={}",
                    s.local(c, "cachePort")
                ));
            }
            Some(health(vec![
                "CMD".into(),
                "test".into(),
                "-e".into(),
                format!("{BACKUP_DIR}/ready"),
            ]))
        }
        Component::RegistryProxy => {
            env.push(format!(
                "DEIS_REGISTRY_PROXY_LISTEN={}",
                s.listen(c, "listenPort")
            ));
            env.push(format!(
                "DEIS_REGISTRY_PROXY_UPSTREAM=http://{}",
                at(registry_host, Component::Registry)
            ));
            env.push("DEIS_REGISTRY_PROXY_CACHE_DIR=/var/lib/deis/registry-proxy".to_owned());
            Some(healthz(s, c, "listenPort"))
        }
        Component::Controller => {
            env.push(format!(
                "DEIS_CONTROLLER_LISTEN={}",
                s.listen(c, "listenPort")
            ));
            env.push("DEIS_DATA_DIR=/var/lib/deis/controller".to_owned());
            if ctx.cluster.is_some() {
                // Apps become Swarm services across the hosts, on the isolated network (each
                // host's agent keeps its firewall), their images pulled through each host's own
                // registry proxy.
                env.push("DEIS_SCHEDULER=swarm".to_owned());
                env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
                env.push(format!(
                    "DEIS_REGISTRIES={}",
                    s.local(Component::RegistryProxy, "listenPort")
                ));
            } else {
                env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
                // The controller puts the apps' firewall back when Docker restarts it after a
                // reboot.
                env.push(format!(
                    "DEIS_APP_FIREWALL_PORTS={},{}",
                    s.port(Component::Router, "listenPort"),
                    s.port(Component::Router, "httpsListenPort")
                ));
            }
            env.extend(s.app_limits.iter().map(|(k, v)| format!("{k}={v}")));
            let database = match (&s.database_url, ctx.database_installed) {
                (Some(url), _) => Some(url.clone()),
                (None, true) => Some(format!(
                    "postgres://deis:{}@{}/deis",
                    s.database_password,
                    at(database_host, Component::Database)
                )),
                (None, false) => None,
            };
            if let Some(url) = database {
                env.push(format!("DATABASE_URL={url}"));
            }
            Some(healthz(s, c, "listenPort"))
        }
        Component::Builder => {
            // On a cluster every host's router takes the git port and relays it to the builder,
            // which listens on the next port (Deis v1's 2222 and 2223).
            let ssh_port = match ctx.cluster {
                Some(_) => s.port(c, "listenPort").saturating_add(1),
                None => s.port(c, "listenPort"),
            };
            env.push(format!(
                "DEIS_BUILDER_SSH_LISTEN={}:{ssh_port}",
                s.bind_host
            ));
            env.push(format!(
                "DEIS_BUILDER_HTTP_LISTEN={}",
                s.listen(c, "healthPort")
            ));
            env.push("DEIS_BUILDER_DATA_DIR=/var/lib/deis/builder".to_owned());
            // Images go to the registry through this host's proxy, and every host pulls them
            // through its own.
            env.push(format!(
                "DEIS_REGISTRY={}",
                s.local(Component::RegistryProxy, "listenPort")
            ));
            if !ctx.app_network.is_empty() {
                env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
            }
            // The stack deploy/images/build makes, of this platform's tag, unless one is set.
            let stack = s
                .stack_image
                .clone()
                .unwrap_or_else(|| format!("deis/stack:{}", ctx.tag));
            env.push(format!("DEIS_STACK_IMAGE={stack}"));
            if let Some(image) = &s.runner_image {
                env.push(format!("DEIS_RUNNER_IMAGE={image}"));
            }
            Some(healthz(s, c, "healthPort"))
        }
        Component::Router => {
            env.push(format!("DEIS_ROUTER_LISTEN={}", s.listen(c, "listenPort")));
            env.push(format!(
                "DEIS_ROUTER_HTTPS_LISTEN={}",
                s.listen(c, "httpsListenPort")
            ));
            env.push(format!(
                "DEIS_ROUTER_ADMIN_LISTEN={}",
                s.listen(c, "adminListenPort")
            ));
            env.push("DEIS_ROUTER_REUSE_PORT=true".to_owned());
            if ctx.cluster.is_some() {
                env.push(format!(
                    "DEIS_ROUTER_BUILDER_LISTEN={}",
                    s.listen(Component::Builder, "listenPort")
                ));
            }
            Some(healthz(s, c, "adminListenPort"))
        }
    };
    let mut body = body(
        ctx.prefix,
        unit,
        s.image(c, ctx.tag),
        cmd,
        env,
        mounts,
        check,
    );
    if matches!(c, Component::Controller | Component::HostAgent)
        && let Some(host) = body.host_config.as_mut()
    {
        // To set the apps' firewall in the host's iptables (it shares the host's network).
        host.cap_add = Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()]);
    }
    body
}
