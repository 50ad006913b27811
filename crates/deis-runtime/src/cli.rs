//! Flags every service binary takes, and logging set-up.

use std::time::Duration;

use deis_store::StoreConfig;

/// The flags shared by every service binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// etcd client URLs (comma-separated). Without them the service uses an in-process store.
    #[arg(long, env = "DEIS_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,

    /// Prefix for every store key (for sharing one etcd between installations or tests).
    #[arg(long, env = "DEIS_ETCD_NAMESPACE", default_value = "")]
    pub etcd_namespace: String,

    /// Seconds to let in-flight work finish after SIGTERM.
    #[arg(long, env = "DEIS_DRAIN_SECONDS", default_value_t = 10)]
    pub drain_seconds: u64,

    /// Labels (`key=value`, comma-separated) put on the containers this service creates, and
    /// the only app containers it looks after (several platforms on one Docker engine).
    #[arg(
        long = "container-label",
        env = "DEIS_CONTAINER_LABELS",
        value_delimiter = ','
    )]
    pub container_labels: Vec<String>,
}

impl CommonArgs {
    /// The store these flags select.
    pub fn store(&self) -> StoreConfig {
        match StoreConfig::from_endpoints(&self.etcd_endpoints) {
            StoreConfig::Etcd { endpoints, .. } => StoreConfig::Etcd {
                endpoints,
                namespace: self.etcd_namespace.clone(),
            },
            memory => memory,
        }
    }

    /// The container labels as a map; an entry without `=` is a label with an empty value.
    pub fn container_labels(&self) -> std::collections::HashMap<String, String> {
        self.container_labels
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (l.clone(), String::new()),
            })
            .collect()
    }

    /// The drain period.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (the all-in-one process) keeps the first subscriber.
    // Colours only on a terminal: a log file or journal gets plain text an operator can grep.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// An optional listener address in a flag: clap takes [`parse_optional_addr`]'s `Option` as the
/// value through this alias (a field typed `Option<_>` would mean "flag may be absent").
pub type MaybeAddr = Option<std::net::SocketAddr>;

/// A listener flag that is neither an address nor `off`.
#[derive(Debug, thiserror::Error)]
#[error("{0}: give host:port, or off")]
pub struct AddrError(#[source] std::net::AddrParseError);

/// A socket address, or `off` for no listener.
pub fn parse_optional_addr(value: &str) -> Result<MaybeAddr, AddrError> {
    match value {
        "off" | "" => Ok(None),
        addr => addr.parse().map(Some).map_err(AddrError),
    }
}
