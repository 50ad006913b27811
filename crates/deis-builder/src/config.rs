//! The builder's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything the builder needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SSH server for `git push` listens.
    pub ssh_listen: SocketAddr,
    /// Where the health endpoint listens.
    pub http_listen: SocketAddr,
    /// The host name other components use to reach this builder.
    pub advertise_host: Option<String>,
    /// Repositories, the SSH host key and build scratch space.
    pub data_dir: PathBuf,
    /// The controller's gRPC address (`http://host:port`); found in the config store
    /// (`/deis/controller/{host,port}`) when absent.
    pub controller_url: Option<String>,
    /// The image buildpack builds run in (it needs `sh`, `tar` and `gzip`).
    pub stack_image: String,
    /// The image slugs run on; the stack image when absent.
    pub runner_image: Option<String>,
    /// A registry (`host:port`) images are pushed to so any host can run them; none keeps
    /// them on the local engine (single host).
    pub registry: Option<String>,
    /// A folder of buildpack repositories the operator provides: `BUILDPACK_URL=file://...`
    /// may name only repositories below it (none when absent).
    pub buildpacks_dir: Option<PathBuf>,
    /// The Docker network builds run on (the apps' isolated network); the default if absent.
    pub network: Option<String>,
    /// Memory (bytes) of a build (a buildpack's container, a Dockerfile's build steps).
    pub build_memory: i64,
    /// The largest push accepted, in bytes; also the most the commit's files may take once
    /// unpacked (a small push of delta-chained objects can expand far beyond its size).
    pub max_push_bytes: u64,
    /// How long one build may take.
    #[serde(with = "deis_runtime::serde_secs")]
    pub build_timeout: Duration,
    /// Labels put on build containers and images (tests use them to clean up).
    pub labels: std::collections::HashMap<String, String>,
    /// How long running work may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Config {
    /// The image slugs run on.
    pub fn runner_image(&self) -> &str {
        self.runner_image.as_deref().unwrap_or(&self.stack_image)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ssh_listen: SocketAddr::from(([0, 0, 0, 0], 2222)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 2224)),
            advertise_host: None,
            data_dir: PathBuf::from("/var/lib/deis/builder"),
            controller_url: None,
            stack_image: "deis/stack:latest".to_owned(),
            runner_image: None,
            registry: None,
            buildpacks_dir: None,
            build_memory: 2 << 30,
            network: None,
            max_push_bytes: 1 << 30,
            build_timeout: Duration::from_secs(20 * 60),
            labels: Default::default(),
            drain: deis_runtime::DEFAULT_DRAIN,
        }
    }
}
