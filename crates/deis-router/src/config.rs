//! The router's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Everything the router needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where app traffic arrives.
    pub listen: SocketAddr,
    /// Where HTTPS traffic arrives; `None` serves no HTTPS.
    pub https_listen: Option<SocketAddr>,
    /// Where health and metrics are served.
    pub admin_listen: SocketAddr,
    /// The host name other components use to reach this router.
    pub advertise_host: Option<String>,
    /// The platform domain until `/deis/platform/domain` is set.
    pub platform_domain: String,
    /// Worker threads serving traffic; `None` is one per CPU.
    pub workers: Option<usize>,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            https_listen: Some(SocketAddr::from(([0, 0, 0, 0], 443))),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            advertise_host: None,
            platform_domain: "localhost".to_owned(),
            workers: None,
            drain: deis_runtime::DEFAULT_DRAIN,
        }
    }
}
