//! The logger's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Everything the logger needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The host name other components use to reach this logger.
    pub advertise_host: Option<String>,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8088)),
            advertise_host: None,
            drain: deis_runtime::DEFAULT_DRAIN,
        }
    }
}
