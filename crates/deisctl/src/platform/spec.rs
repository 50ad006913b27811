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
    /// The isolated network app and build containers join.
    pub(crate) app_network: &'a str,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Checks every 2 s once up; every 250 ms while starting, for up to 5 minutes.
fn health(test: Vec<String>) -> HealthConfig {
    HealthConfig {
        test: Some(test),
        interval: Some(nanos(Duration::from_secs(2))),
        timeout: Some(nanos(Duration::from_secs(3))),
        retries: Some(3),
        start_period: Some(nanos(Duration::from_secs(300))),
        start_interval: Some(nanos(Duration::from_millis(250))),
    }
}

fn http_check(url: String) -> HealthConfig {
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
            mounts.push(Mount {
                target: Some("/var/run/docker.sock".into()),
                source: Some(socket),
                typ: Some(MountType::BIND),
                ..Default::default()
            });
        }
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

fn body(
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
    let mut env = vec![
        format!("DEIS_ETCD_ENDPOINTS={}", ctx.store.endpoints),
        format!("DEIS_ETCD_NAMESPACE={}", ctx.store.namespace),
        format!("DEIS_ADVERTISE_HOST={}", s.local_host),
        format!("DEIS_PLATFORM_DOMAIN={}", s.domain),
        format!("DEIS_CONTAINER_LABELS={LABEL_PLATFORM}={}", ctx.prefix),
        "RUST_LOG=info".to_owned(),
    ];
    let mut mounts = Vec::new();
    if c.uses_docker() {
        docker_access(&mut env, &mut mounts);
    }
    let mut cmd = Vec::new();
    let check = match c {
        Component::Etcd => None,
        Component::Logger => {
            env.push(format!("DEIS_LOGGER_LISTEN={}", s.listen(c, "listenPort")));
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
            env.push(format!("DEIS_DATABASE_HOST={}", s.local_host));
            env.push(format!("DEIS_DATABASE_PORT={}", s.port(c, "listenPort")));
            Some(health(vec![
                "CMD".into(),
                "pg_isready".into(),
                "-q".into(),
                "-h".into(),
                s.local_host.clone(),
                "-p".into(),
                s.port(c, "listenPort").to_string(),
            ]))
        }
        Component::Registry => {
            // No authentication: it listens on this host alone, behind the registry proxy.
            env.push(format!("REGISTRY_HTTP_ADDR={}", s.local(c, "listenPort")));
            Some(http_check(format!(
                "http://{}/v2/",
                s.local(c, "listenPort")
            )))
        }
        Component::RegistryProxy => {
            env.push(format!(
                "DEIS_REGISTRY_PROXY_LISTEN={}",
                s.listen(c, "listenPort")
            ));
            env.push(format!(
                "DEIS_REGISTRY_PROXY_UPSTREAM=http://{}",
                s.local(Component::Registry, "listenPort")
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
            env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
            // The controller puts the apps' firewall back when Docker restarts it after a reboot.
            env.push(format!(
                "DEIS_APP_FIREWALL_PORTS={},{}",
                s.port(Component::Router, "listenPort"),
                s.port(Component::Router, "httpsListenPort")
            ));
            env.extend(s.app_limits.iter().map(|(k, v)| format!("{k}={v}")));
            let database = match (&s.database_url, ctx.database_installed) {
                (Some(url), _) => Some(url.clone()),
                (None, true) => Some(format!(
                    "postgres://deis:{}@{}/deis",
                    s.database_password,
                    s.local(Component::Database, "listenPort")
                )),
                (None, false) => None,
            };
            if let Some(url) = database {
                env.push(format!("DATABASE_URL={url}"));
            }
            Some(healthz(s, c, "listenPort"))
        }
        Component::Builder => {
            env.push(format!(
                "DEIS_BUILDER_SSH_LISTEN={}",
                s.listen(c, "listenPort")
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
            env.push(format!("DEIS_APP_NETWORK={}", ctx.app_network));
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
    if c == Component::Controller
        && let Some(host) = body.host_config.as_mut()
    {
        // To set the apps' firewall in the host's iptables (it shares the host's network).
        host.cap_add = Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()]);
    }
    body
}
