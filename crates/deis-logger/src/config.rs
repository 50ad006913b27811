//! The logger's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Everything the logger needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the API (HTTP and gRPC) listens.
    pub listen: SocketAddr,
    /// Where syslog datagrams arrive; `None` for none.
    pub syslog_udp: Option<SocketAddr>,
    /// Where syslog over TCP arrives; `None` for none.
    pub syslog_tcp: Option<SocketAddr>,
    /// Addresses syslog is taken from (networks); anything else is refused and counted. By
    /// default this host's loopback only, so app containers cannot write into any app's log.
    pub syslog_from: Vec<ipnet::IpNet>,
    /// Lines kept per app.
    pub max_lines: usize,
    /// Bytes kept per app (in memory; Redis keeps `max_lines`).
    pub max_bytes: usize,
    /// Keep lines in this Redis (`redis://host:port/db`) instead of in memory.
    pub redis_url: Option<String>,
    /// The host name other components use to reach this logger.
    pub advertise_host: Option<String>,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let limits = crate::logs::Limits::default();
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8088)),
            syslog_udp: Some(SocketAddr::from(([0, 0, 0, 0], 514))),
            syslog_tcp: Some(SocketAddr::from(([0, 0, 0, 0], 514))),
            syslog_from: loopback(),
            max_lines: limits.lines,
            max_bytes: limits.bytes,
            redis_url: None,
            advertise_host: None,
            drain: deis_runtime::DEFAULT_DRAIN,
        }
    }
}

/// `127.0.0.0/8` and `::1/128`.
pub(crate) fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}
