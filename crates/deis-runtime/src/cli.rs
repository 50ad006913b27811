//! Flags every service binary takes (the store: etcd's endpoints and, for an etcd that serves
//! TLS with client-certificate authentication, the CA bundle and this component's certificate
//! and key), `DEIS_ADVERTISE_HOST=auto`, and logging set-up.

use std::path::PathBuf;
use std::time::Duration;

use deis_store::{EtcdTls, StoreConfig};

use crate::endpoint::{AdvertiseError, resolve_advertise_host};

/// The flags shared by every service binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// etcd client URLs (comma-separated). Without them the service uses an in-process store.
    #[arg(long, env = "DEIS_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,

    /// Prefix for every store key (for sharing one etcd between installations or tests).
    #[arg(long, env = "DEIS_ETCD_NAMESPACE", default_value = "")]
    pub etcd_namespace: String,

    /// CA bundle (PEM) that signed etcd's server certificate: etcd is then reached over TLS,
    /// and the endpoints must be `https://`.
    #[arg(long, env = "DEIS_ETCD_CA_FILE")]
    pub etcd_ca_file: Option<PathBuf>,

    /// This component's client certificate (PEM) for an etcd that requires one
    /// (`--client-cert-auth`); needs `--etcd-key-file`.
    #[arg(long, env = "DEIS_ETCD_CERT_FILE")]
    pub etcd_cert_file: Option<PathBuf>,

    /// The private key (PEM) of `--etcd-cert-file`.
    #[arg(long, env = "DEIS_ETCD_KEY_FILE")]
    pub etcd_key_file: Option<PathBuf>,

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
    /// The store these flags select: etcd (over TLS when a CA bundle or certificate is given)
    /// when endpoints are given, the in-process store otherwise.
    pub fn store(&self) -> StoreConfig {
        match StoreConfig::from_endpoints(&self.etcd_endpoints) {
            StoreConfig::Etcd { endpoints, .. } => StoreConfig::Etcd {
                endpoints,
                namespace: self.etcd_namespace.clone(),
                tls: self.etcd_tls(),
            },
            memory => memory,
        }
    }

    /// The TLS files for etcd, if any is given (an empty value counts as not given). Whether
    /// they fit together is checked when the store connects.
    pub fn etcd_tls(&self) -> Option<EtcdTls> {
        let given = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
        let tls = EtcdTls {
            ca_file: given(&self.etcd_ca_file),
            cert_file: given(&self.etcd_cert_file),
            key_file: given(&self.etcd_key_file),
        };
        (!tls.is_empty()).then_some(tls)
    }

    /// A component's `DEIS_ADVERTISE_HOST` with `auto` resolved to the local address this host
    /// uses to reach the first etcd endpoint (see [`resolve_advertise_host`]); other values as
    /// given.
    pub async fn advertise_host(
        &self,
        given: Option<String>,
    ) -> Result<Option<String>, AdvertiseError> {
        let endpoints: Vec<String> = self
            .etcd_endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        resolve_advertise_host(given, &endpoints).await
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> CommonArgs {
        Args::try_parse_from(std::iter::once("component").chain(args.iter().copied()))
            .expect("valid flags")
            .common
    }

    #[test]
    fn tls_files_go_to_the_etcd_store() {
        let args = parse(&[
            "--etcd-endpoints",
            "https://10.0.0.1:2379,https://10.0.0.2:2379",
            "--etcd-ca-file",
            "/run/secrets/ca.pem",
            "--etcd-cert-file",
            "/run/secrets/router.pem",
            "--etcd-key-file",
            "/run/secrets/router-key.pem",
        ]);
        let StoreConfig::Etcd { endpoints, tls, .. } = args.store() else {
            panic!("etcd was chosen");
        };
        assert_eq!(endpoints.len(), 2);
        assert_eq!(
            tls,
            Some(EtcdTls {
                ca_file: Some("/run/secrets/ca.pem".into()),
                cert_file: Some("/run/secrets/router.pem".into()),
                key_file: Some("/run/secrets/router-key.pem".into()),
            })
        );
    }

    #[test]
    fn without_tls_files_etcd_is_plain_and_without_endpoints_the_store_is_in_process() {
        let args = parse(&["--etcd-endpoints", "http://10.0.0.1:2379"]);
        assert!(matches!(args.store(), StoreConfig::Etcd { tls: None, .. }));
        let args = parse(&["--etcd-ca-file", "/ca.pem"]);
        assert_eq!(args.store(), StoreConfig::Memory);
    }
}
