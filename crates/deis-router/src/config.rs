//! The router's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// How many `git push` connections one router relays to the builder at once by default.
pub const DEFAULT_BUILDER_MAX_CONNECTIONS: usize = 256;

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
    /// Where `git push` SSH traffic arrives to be relayed to the builder the store names
    /// (`/deis/builder/{host,port}`); `None` relays nothing (the single-host mode, where the
    /// builder listens on 2222 itself).
    pub builder_listen: Option<SocketAddr>,
    /// Connections relayed to the builder at once; those beyond are closed at once.
    pub builder_max_connections: usize,
    /// The host name other components use to reach this router.
    pub advertise_host: Option<String>,
    /// The platform domain until `/deis/platform/domain` is set.
    pub platform_domain: String,
    /// Worker threads serving traffic; `None` is one per CPU.
    pub workers: Option<usize>,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
    /// How long a client connection may wait for its next request head, idle time included.
    #[serde(with = "deis_runtime::serde_secs")]
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            https_listen: Some(SocketAddr::from(([0, 0, 0, 0], 443))),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            builder_listen: None,
            builder_max_connections: DEFAULT_BUILDER_MAX_CONNECTIONS,
            advertise_host: None,
            platform_domain: "localhost".to_owned(),
            workers: None,
            drain: deis_runtime::DEFAULT_DRAIN,
            idle_timeout: crate::fast::HEAD_TIMEOUT,
        }
    }
}
