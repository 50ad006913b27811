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
    pub docker_engines: Vec<String>,
    /// Labels put on every app container (to tell installations or tests apart).
    pub container_labels: HashMap<String, String>,
    /// How often the running containers are compared with the desired ones.
    #[serde(with = "deis_runtime::serde_secs")]
    pub reconcile_interval: Duration,
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
            drain: deis_runtime::DEFAULT_DRAIN,
        }
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
