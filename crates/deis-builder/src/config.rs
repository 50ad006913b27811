//! The builder's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Everything the builder needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the health endpoint listens.
    pub http_listen: SocketAddr,
    /// The host name other components use to reach this builder.
    pub advertise_host: Option<String>,
    /// How long running work may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_listen: SocketAddr::from(([0, 0, 0, 0], 2224)),
            advertise_host: None,
            drain: deis_runtime::DEFAULT_DRAIN,
        }
    }
}
