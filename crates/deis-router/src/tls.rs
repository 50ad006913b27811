//! TLS: certificates from the config store chosen by SNI. A custom domain's certificate
//! (`/deis/certs/<cn>/{cert,key}`) wins for its name (a `*.` common name covers one label); the
//! platform's certificate (`/deis/router/sslCert`, `sslKey`, usually a wildcard for the platform
//! domain) answers everything else. Both come from the current table, so a new certificate is
//! served on the next handshake: no reload, no file on disk.

use std::sync::Arc;

use rustls::CipherSuite;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::table::Table;

/// A certificate chain and key that could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertError {
    #[error("the certificate is not PEM: {0}")]
    Certificate(rustls_pki_types::pem::Error),
    #[error("the certificate PEM holds no certificate")]
    Empty,
    #[error("the key is not a PEM private key: {0}")]
    Key(rustls_pki_types::pem::Error),
    #[error("the key cannot be used: {0}")]
    Unusable(rustls::Error),
}

/// Parses a PEM chain and key into what rustls serves, checking that they belong together.
pub(crate) fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CertError::Certificate)?;
    if chain.is_empty() {
        return Err(CertError::Empty);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(CertError::Key)?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(CertError::Unusable)
}

/// Picks the certificate for a handshake from the current table.
#[derive(Debug)]
pub(crate) struct Resolver {
    tables: watch::Receiver<Arc<Table>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.tables.borrow().clone();
        let name = hello.server_name().map(str::to_ascii_lowercase);
        table.certificate(name.as_deref())
    }
}

/// The cipher suites chosen first, in this order when the client offers them.
const PREFERRED: [CipherSuite; 3] = [
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
];

/// The server configuration for the HTTPS listener: HTTP/2 and HTTP/1.1 by ALPN.
pub(crate) fn server_config(
    tables: watch::Receiver<Arc<Table>>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    // AES-128-GCM with SHA-256 first, whatever the client's order (as in Mozilla's recommended
    // TLS 1.3 order): with the clients' usual AES-256-GCM with SHA-384, the handshake's key
    // schedule runs on SHA-512, which has no instructions of its own, where SHA-256 and AES do.
    provider
        .cipher_suites
        .sort_by_key(|suite| !PREFERRED.contains(&suite.suite()));
    let provider = Arc::new(provider);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver { tables }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_certificate_and_key() {
        assert!(matches!(
            certified_key("not pem", "not pem"),
            Err(CertError::Empty)
        ));
        let cert =
            rcgen::generate_simple_self_signed(vec!["a.example.com".to_owned()]).expect("cert");
        let other =
            rcgen::generate_simple_self_signed(vec!["b.example.com".to_owned()]).expect("cert");
        let pem = cert.cert.pem();
        assert!(certified_key(&pem, &cert.signing_key.serialize_pem()).is_ok());
        assert!(matches!(
            certified_key(&pem, "junk"),
            Err(CertError::Key(_))
        ));
        assert!(matches!(
            certified_key(&pem, &other.signing_key.serialize_pem()),
            Err(CertError::Unusable(_))
        ));
    }
}
