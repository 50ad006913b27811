//! TLS to etcd: the PEM files a component is given ([`EtcdTls`]), checked before the first
//! connection so that a missing or wrong file is named, and the explanation of a connection
//! that failed in its TLS layer, so that "etcd refused our certificate" does not read as a bare
//! "transport error".
//!
//! The TLS stack is rustls with the ring provider, through tonic's `tls-ring` (etcd-client's
//! `tls-ring` feature); no OpenSSL and no aws-lc. tonic picks ring itself when no process-wide
//! provider is installed, and the probe below names its provider, so nothing here installs one.
//!
//! With TLS 1.3 the server checks the client certificate after the client has finished its
//! handshake, so a refusal can reach the gRPC call as a bare "connection closed"; and a TLS
//! port spoken to in plain text just closes the connection. So a connection that broke without
//! a reason is probed once with a handshake of our own: with the same files, it hears etcd's
//! alert and names it; in plain text, one trusting no CA tells whether the port speaks TLS.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, Identity, TlsOptions};
use rustls::CertificateError;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::StoreError;

/// TLS settings for etcd's client port: the CA that signed etcd's server certificate and, for an
/// etcd started with `--client-cert-auth`, this component's client certificate and its key. All
/// three are paths to PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// The CA certificate(s) that may sign etcd's server certificate (a PEM bundle). Required:
    /// no system roots are trusted for etcd.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This component's client certificate (PEM; a chain may follow it); needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The private key of `cert_file` (PEM, PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl EtcdTls {
    /// Whether no file is set (then the settings mean "no TLS").
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }

    /// Reads and checks the files: each must exist and hold what its role needs, and the key
    /// must belong to the certificate. Gives the client's TLS options and what explaining a
    /// failure against `endpoints` needs.
    pub(crate) fn load(&self, endpoints: &[String]) -> Result<(TlsOptions, Transport), StoreError> {
        let Some(ca_file) = &self.ca_file else {
            return Err(StoreError::Tls(
                "no CA bundle is given to verify etcd's server certificate; give the CA that signed it"
                    .into(),
            ));
        };
        let ca = read_pem("CA bundle", ca_file)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("CA bundle", ca_file, &ca)? {
            roots.add(cert).map_err(|e| {
                StoreError::Tls(format!(
                    "the etcd CA bundle {} holds a certificate that cannot be used: {e}",
                    ca_file.display()
                ))
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Tls(format!("no TLS version is available: {e}")))?
            .with_root_certificates(roots);
        let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(&ca));
        let config = match (&self.cert_file, &self.key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert_file), None) => {
                return Err(StoreError::Tls(format!(
                    "the client certificate {} is given without its key",
                    cert_file.display()
                )));
            }
            (None, Some(key_file)) => {
                return Err(StoreError::Tls(format!(
                    "the client key {} is given without its certificate",
                    key_file.display()
                )));
            }
            (Some(cert_file), Some(key_file)) => {
                let cert = read_pem("client certificate", cert_file)?;
                let key = read_pem("client key", key_file)?;
                let chain = certificates("client certificate", cert_file, &cert)?;
                let key_der = private_key(key_file, &key)?;
                // Checks that the key is usable and belongs to the certificate.
                rustls::sign::CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider)
                    .map_err(|e| mismatch(cert_file, key_file, e))?;
                options = options.identity(Identity::from_pem(cert, key));
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| mismatch(cert_file, key_file, e))?
            }
        };
        let transport = Transport::tls(endpoints, self.cert_file.is_some(), config);
        Ok((options, transport))
    }
}

fn read_pem(role: &str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| {
        StoreError::Tls(format!(
            "cannot read the etcd {role} {}: {e}",
            path.display()
        ))
    })
}

fn certificates(
    role: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            StoreError::Tls(format!(
                "the etcd {role} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(StoreError::Tls(format!(
            "the etcd {role} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, StoreError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        StoreError::Tls(match e {
            pem::Error::NoItemsFound => format!(
                "the etcd client key {} holds no PEM private key",
                path.display()
            ),
            e => format!(
                "the etcd client key {} is not valid PEM: {e}",
                path.display()
            ),
        })
    })
}

fn mismatch(cert_file: &Path, key_file: &Path, e: rustls::Error) -> StoreError {
    StoreError::Tls(match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "the etcd client key {} does not belong to the certificate {}",
            key_file.display(),
            cert_file.display()
        ),
        e => format!(
            "the etcd client certificate {} and key {} cannot be used: {e}",
            cert_file.display(),
            key_file.display()
        ),
    })
}

/// How a store talks to etcd, for explaining its failures: where etcd is and, over TLS, the
/// same settings as the client's.
#[derive(Clone)]
pub(crate) struct Transport(Arc<Inner>);

struct Inner {
    endpoints: Vec<String>,
    tls: Option<TlsSide>,
}

struct TlsSide {
    client_cert: bool,
    config: Arc<rustls::ClientConfig>,
}

/// How long one step of a probe (connect, handshake, answer) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a failed call may spend probing, over all endpoints.
const PROBE_BUDGET: Duration = Duration::from_secs(3);

/// The most endpoints one failure probes.
const PROBE_ENDPOINTS: usize = 3;

impl Transport {
    /// Plain HTTP/2 to `endpoints`.
    pub(crate) fn plain(endpoints: &[String]) -> Transport {
        Transport(Arc::new(Inner {
            endpoints: endpoints.to_vec(),
            tls: None,
        }))
    }

    /// TLS to `endpoints` with `config`.
    fn tls(endpoints: &[String], client_cert: bool, config: rustls::ClientConfig) -> Transport {
        Transport(Arc::new(Inner {
            endpoints: endpoints.to_vec(),
            tls: Some(TlsSide {
                client_cert,
                config: Arc::new(config),
            }),
        }))
    }

    /// Over TLS: whether a client certificate is presented.
    fn client_cert(&self) -> Option<bool> {
        self.0.tls.as_ref().map(|t| t.client_cert)
    }

    /// Why a connection broke without saying, found by one handshake of our own per endpoint:
    /// over TLS, the alert etcd sends or the certificate we refuse; in plain text, whether the
    /// port speaks TLS.
    async fn probe(&self) -> Option<String> {
        for endpoint in self.0.endpoints.iter().take(PROBE_ENDPOINTS) {
            let found = match &self.0.tls {
                Some(tls) => probe_tls(&tls.config, endpoint)
                    .await
                    .map(|e| describe_rustls(self, &e)),
                None => probe_plain(endpoint).await,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// The TLS error a handshake with `endpoint` meets, and the alert etcd sends right after it
/// (TLS 1.3 checks the client certificate then).
async fn probe_tls(config: &Arc<rustls::ClientConfig>, endpoint: &str) -> Option<rustls::Error> {
    let mut config = (**config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut stream = match handshake(config, endpoint).await? {
        Ok(stream) => stream,
        Err(e) => return rustls_error(&e).cloned(),
    };
    // The HTTP/2 preface and an empty SETTINGS frame: a server that accepted us answers with
    // its own SETTINGS; one that refused our certificate sends an alert instead.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let exchange = async {
        stream.write_all(&hello).await?;
        let mut buf = [0u8; 64];
        stream.read(&mut buf).await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, exchange).await {
        Ok(Err(e)) => rustls_error(&e).cloned(),
        Ok(Ok(_)) | Err(_) => None,
    }
}

/// Whether `endpoint`, spoken to in plain text, serves TLS: a handshake trusting no CA at all
/// fails on the server's certificate only if the server sent one.
async fn probe_plain(endpoint: &str) -> Option<String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let failure = handshake(config, endpoint).await?.err()?;
    match rustls_error(&failure)? {
        rustls::Error::InvalidCertificate(_) => Some(format!(
            "etcd at {endpoint} serves TLS: give https:// endpoints, its CA bundle and a client certificate"
        )),
        _ => None,
    }
}

/// A TLS handshake with `endpoint`: `None` when the connection or the handshake did not finish
/// in time or the endpoint is unusable; else the handshake's outcome.
async fn handshake(
    config: rustls::ClientConfig,
    endpoint: &str,
) -> Option<std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>> {
    let (host, port) = host_port(endpoint)?;
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let tcp = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .ok()?
        .ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(PROBE_TIMEOUT, connector.connect(name, tcp))
        .await
        .ok()
}

/// The host and port of an `https://host:port/…` endpoint (port 2379 when absent).
fn host_port(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => 2379,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, 2379)),
    }
}

/// A failed call whose cause is the TLS layer: says so first, with the client library's error
/// as the source.
#[derive(Debug)]
pub(crate) struct TlsFailure {
    message: String,
    source: etcd_client::Error,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TlsFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// The client library's error, explained when the TLS layer caused it: a client certificate
/// etcd refused (or did not get), a server certificate we refused, or a TLS port spoken to in
/// plain text. A connection that broke without saying why is probed once.
pub(crate) async fn explain(
    transport: &Transport,
    e: etcd_client::Error,
) -> Box<dyn StdError + Send + Sync> {
    let message = match describe(transport, &e) {
        Found::Message(message) => Some(message),
        Found::Nothing => None,
        Found::BrokenConnection => tokio::time::timeout(PROBE_BUDGET, transport.probe())
            .await
            .ok()
            .flatten(),
    };
    match message {
        Some(message) => Box::new(TlsFailure { message, source: e }),
        None => Box::new(e),
    }
}

/// What an error says about TLS.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// The TLS layer failed, as said.
    Message(String),
    /// The connection failed without a reason (it may be TLS).
    BrokenConnection,
    /// Nothing to do with TLS (etcd answered, or the error is not about the connection).
    Nothing,
}

fn describe(transport: &Transport, e: &etcd_client::Error) -> Found {
    // etcd_client::Error does not give its cause as `source()`: start from the inner errors.
    let root: &(dyn StdError + 'static) = match e {
        etcd_client::Error::GRpcStatus(status) => status,
        etcd_client::Error::TransportError(e) => e,
        etcd_client::Error::IoError(e) => e,
        _ => return Found::Nothing,
    };
    let mut current = Some(root);
    let mut texts = Vec::new();
    let mut kinds = Vec::new();
    // Whether the failure is the connection's (not an answer from etcd).
    let mut connection = false;
    while let Some(err) = current {
        if let Some(tls) = rustls_error(err) {
            return Found::Message(describe_rustls(transport, tls));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            kinds.push(io.kind());
        }
        connection |= err.is::<tonic::transport::Error>();
        texts.push(err.to_string());
        current = err.source();
    }
    // Alerts from the server reach us as text: h2 keeps an I/O error's kind and message only.
    if let Some(alert) = texts
        .iter()
        .find_map(|t| t.split("received fatal alert: ").nth(1))
    {
        let alert = alert
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or(alert);
        return Found::Message(describe_alert(transport, alert));
    }
    // Refused or unreachable: etcd is down or elsewhere, which a probe cannot improve on.
    let unreachable = kinds.iter().any(|k| {
        matches!(
            k,
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable
                | std::io::ErrorKind::TimedOut
        )
    });
    // Over TLS a refused client certificate, in plain text a TLS port, both drop the
    // connection without a word.
    if connection && !unreachable {
        Found::BrokenConnection
    } else {
        Found::Nothing
    }
}

/// The rustls error in `err`, directly or inside an `io::Error`.
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    err.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// An alert etcd sent, by its rustls name (`BadCertificate`).
fn describe_alert(transport: &Transport, alert: &str) -> String {
    let certificate_alert = matches!(
        alert,
        "CertificateRequired"
            | "BadCertificate"
            | "UnknownCA"
            | "CertificateUnknown"
            | "CertificateExpired"
            | "CertificateRevoked"
            | "UnsupportedCertificate"
            | "AccessDenied"
    );
    match transport.client_cert() {
        Some(false) if certificate_alert => format!(
            "TLS handshake refused by etcd (alert {alert}): it requires a client certificate and none was given"
        ),
        Some(true) if certificate_alert => format!(
            "TLS handshake refused by etcd (alert {alert}): it does not accept this client certificate (not signed by the CA etcd trusts, or expired)"
        ),
        _ => format!("TLS handshake refused by etcd (alert {alert})"),
    }
}

fn describe_rustls(transport: &Transport, e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(alert) => describe_alert(transport, &format!("{alert:?}")),
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!(
            "TLS handshake with etcd failed: etcd's server certificate is not signed by the given CA bundle ({e})"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS handshake with etcd failed: etcd's server certificate does not name the endpoint's host ({e})"
        ),
        rustls::Error::InvalidCertificate(_) => {
            format!("TLS handshake with etcd failed: etcd's server certificate was refused ({e})")
        }
        e => format!("TLS handshake with etcd failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(source: std::io::Error) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::from_error(Box::new(source)))
    }

    fn tls(client_cert: bool) -> Transport {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Transport::tls(&[], client_cert, config)
    }

    fn message(found: Found) -> String {
        match found {
            Found::Message(m) => m,
            other => panic!("no explanation: {other:?}"),
        }
    }

    #[test]
    fn an_alert_without_a_client_certificate_says_one_is_needed() {
        let e = status(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: BadCertificate",
        ));
        let without = message(describe(&tls(false), &e));
        assert!(
            without.contains("requires a client certificate"),
            "{without}"
        );
        let with = message(describe(&tls(true), &e));
        assert!(
            with.contains("does not accept this client certificate"),
            "{with}"
        );
    }

    #[test]
    fn an_unknown_server_certificate_is_blamed_on_the_ca_bundle() {
        let e = status(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ));
        let m = message(describe(&tls(true), &e));
        assert!(m.contains("not signed by the given CA bundle"), "{m}");
    }

    #[test]
    fn a_refused_connection_is_not_a_tls_failure() {
        let e = status(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(describe(&Transport::plain(&[]), &e), Found::Nothing);
        assert_eq!(describe(&tls(true), &e), Found::Nothing);
    }

    #[test]
    fn endpoints_give_their_host_and_port() {
        assert_eq!(
            host_port("https://127.0.0.1:2379"),
            Some(("127.0.0.1", 2379))
        );
        assert_eq!(host_port("https://[::1]:23"), Some(("::1", 23)));
        assert_eq!(host_port("https://etcd.local/"), Some(("etcd.local", 2379)));
        assert_eq!(host_port("https://etcd:x"), None);
    }
}
