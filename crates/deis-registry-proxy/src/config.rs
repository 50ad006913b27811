//! The registry proxy's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything the registry proxy needs to start. The defaults run the single-host mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The host name other components use to reach this registry proxy.
    pub advertise_host: Option<String>,
    /// The real registry behind the proxy (CNCF distribution), an `http://host:port` URL.
    pub upstream: String,
    /// Where blobs and manifests are cached (created if missing; kept across restarts).
    pub cache_dir: PathBuf,
    /// The most the cache keeps on disk, in bytes; the least recently used go first.
    pub cache_max_bytes: u64,
    /// The largest request body accepted (one upload request, a chunk or a whole blob).
    pub max_upload_bytes: u64,
    /// How long in-flight requests may finish after shutdown.
    #[serde(with = "deis_runtime::serde_secs")]
    pub drain: Duration,
    /// Whether it publishes itself as the platform's registry (`/deis/registry/{host,port}`),
    /// where builders push, hosts pull and the controller copies `deis pull` images. Off on a
    /// single host without a registry behind it, whose images stay on the local engine.
    pub publish: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            advertise_host: None,
            upstream: "http://127.0.0.1:5001".to_owned(),
            cache_dir: PathBuf::from("/var/lib/deis/registry-proxy"),
            cache_max_bytes: 10 << 30,
            max_upload_bytes: 10 << 30,
            drain: deis_runtime::DEFAULT_DRAIN,
            publish: true,
        }
    }
}
