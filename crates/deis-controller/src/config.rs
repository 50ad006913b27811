//! The controller's configuration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything the controller needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the REST API listens.
    pub listen: SocketAddr,
    /// The host name other components use to reach this controller (when `listen` is `0.0.0.0`).
    pub advertise_host: Option<String>,
    /// Where the SQLite database and other state live.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; SQLite under `data_dir` when absent.
    pub database_url: Option<String>,
    /// The platform domain used until `/deis/platform/domain` is set: apps answer on
    /// `<app>.<domain>`.
    pub platform_domain: String,
    /// What runs app containers.
    pub scheduler: SchedulerKind,
    /// Docker engines to run containers on (`ADVERTISE_HOST=URL`); empty: the local engine.
    /// With the swarm scheduler, the first is the manager to use.
    pub docker_engines: Vec<String>,
    /// Labels put on every app container (to tell installations or tests apart).
    pub container_labels: HashMap<String, String>,
    /// What apps may ask for.
    pub limits: AppLimits,
    /// The Docker network app containers join (made and firewalled by the platform, see
    /// `deis_scheduler::AppNetwork`); the engine's default bridge when absent.
    pub app_network: Option<String>,
    /// The router's ports: when set, the controller makes `app_network` and its firewall itself
    /// when it starts (deisctl's controller: Docker restarts it after a reboot, which emptied the
    /// kernel's rules), and does not start without them. The Docker scheduler only: on a Swarm
    /// the network is the Swarm's and each host's agent keeps its rules (`host-agent`).
    pub app_firewall_ports: Vec<u16>,
    /// Registries (`host:port`) besides the published one whose images are pulled with the
    /// app's credential (each host's registry proxy on a cluster).
    #[serde(default)]
    pub registries: Vec<String>,
    /// How often the running containers are compared with the desired ones.
    #[serde(with = "deis_runtime::serde_secs")]
    pub reconcile_interval: Duration,
    /// How long `deis pull` may take to copy an image into the platform's registry (or to
    /// pull it onto the engine when there is no registry) before the request fails.
    #[serde(with = "deis_runtime::serde_secs")]
    pub pull_timeout: Duration,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            advertise_host: None,
            data_dir: PathBuf::from("/var/lib/deis/controller"),
            database_url: None,
            platform_domain: "localhost".to_owned(),
            scheduler: SchedulerKind::Docker,
            container_labels: HashMap::new(),
            docker_engines: Vec::new(),
            reconcile_interval: Duration::from_secs(10),
            pull_timeout: Duration::from_secs(600),
            drain: deis_runtime::DEFAULT_DRAIN,
            limits: AppLimits::default(),
            app_network: None,
            app_firewall_ports: Vec::new(),
            registries: Vec::new(),
        }
    }
}

/// The operator's defaults and maxima for app containers (flags, or `/deis/controller/...` keys
/// that deisctl passes as the same environment variables).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct AppLimits {
    /// Memory of a container whose process type has no limit (`512M`); `0` for none.
    #[arg(
        long = "default-memory",
        env = "DEIS_DEFAULT_MEMORY",
        default_value = "512M"
    )]
    pub default_memory: String,
    /// The most memory `deis limits:set` may give one container (`8G`).
    #[arg(long = "max-memory", env = "DEIS_MAX_MEMORY", default_value = "8G")]
    pub max_memory: String,
    /// The most CPU shares `deis limits:set --cpu` may give (1024: one CPU's weight).
    #[arg(long = "max-cpu", env = "DEIS_MAX_CPU", default_value_t = 1024)]
    pub max_cpu: u32,
    /// Processes and threads one container may run; `0` for no limit.
    #[arg(long = "pids-limit", env = "DEIS_PIDS_LIMIT", default_value_t = 1024)]
    pub pids: u32,
    /// The most containers of one process type (`deis scale`).
    #[arg(long = "max-scale", env = "DEIS_MAX_SCALE", default_value_t = 50)]
    pub max_scale: u32,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            default_memory: "512M".to_owned(),
            max_memory: "8G".to_owned(),
            max_cpu: 1024,
            pids: 1024,
            max_scale: 50,
        }
    }
}

impl AppLimits {
    /// The scheduler's limits for every app container.
    pub(crate) fn containers(&self) -> deis_scheduler::ContainerLimits {
        deis_scheduler::ContainerLimits {
            default_memory: deis_scheduler::memory_bytes(&self.default_memory).filter(|b| *b > 0),
            pids: (self.pids > 0).then_some(i64::from(self.pids)),
            ..deis_scheduler::ContainerLimits::default()
        }
    }

    /// The refusal of a memory limit above the maximum or below what Docker takes (6 MiB; a
    /// limit of 0 would mean none at all), if it is.
    pub(crate) fn memory_refusal(&self, ptype: &str, limit: &str) -> Option<String> {
        const MIN: i64 = 6 << 20;
        let asked = deis_scheduler::memory_bytes(limit)?;
        if asked < MIN {
            return Some(format!(
                "{ptype}={limit} is below the smallest memory limit, 6M"
            ));
        }
        let max = deis_scheduler::memory_bytes(&self.max_memory)?;
        (asked > max).then(|| {
            format!(
                "{ptype}={limit} is above the platform's maximum of {} per container",
                self.max_memory
            )
        })
    }
}

/// The scheduler backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Containers on the local Docker engine.
    Docker,
    /// Docker Swarm services (the engine must be a swarm manager).
    Swarm,
    /// No containers: desired state is recorded only.
    None,
}
