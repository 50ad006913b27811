//! The certificates of a cluster's etcd: a CA made for the cluster, a server certificate per
//! etcd member (for its host's addresses) and a client certificate per component, so that
//! etcd (`--client-cert-auth`) lets in only what holds one. Everything is PEM text: ECDSA P-256
//! keys in PKCS#8, made with rcgen on ring.
//!
//! The CA lasts [`CA_DAYS`] days and may only sign end-entity certificates; those last
//! [`LEAF_DAYS`] days. A CA saved as PEM is loaded back with [`Pki::from_pem`] to add
//! certificates later (a new host, a new component). Each certificate's validity starts a day
//! back, so that a member whose clock is slightly behind accepts it.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How long the CA is valid.
pub(crate) const CA_DAYS: u32 = 3653;
/// How long a member's or a component's certificate is valid.
pub(crate) const LEAF_DAYS: u32 = 365;

/// A certificate or a key that could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PkiError {
    /// The request or the given PEM is wrong.
    #[error("{0}")]
    Invalid(String),
    /// rcgen refused.
    #[error("{0}")]
    Rcgen(#[from] rcgen::Error),
}

/// A certificate (PEM) and its private key (PEM, PKCS#8).
pub(crate) type CertAndKey = (String, String);

/// A cluster's certificate authority.
pub(crate) struct Pki {
    ca_pem: String,
    ca_key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// A new CA for the cluster `cluster_name` (common name `<cluster_name> etcd CA`).
    pub(crate) fn generate(cluster_name: &str) -> Result<Pki, PkiError> {
        if cluster_name.trim().is_empty() {
            return Err(PkiError::Invalid("the cluster has no name".into()));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cluster_name} etcd CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Deis");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_DAYS);
        let cert = params.self_signed(&key)?;
        Ok(Pki {
            ca_pem: cert.pem(),
            ca_key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA saved before: its certificate and its key, which must belong together.
    pub(crate) fn from_pem(ca_pem: &str, ca_key_pem: &str) -> Result<Pki, PkiError> {
        let der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| {
            PkiError::Invalid(format!("the CA certificate is not a PEM certificate: {e}"))
        })?;
        let key = KeyPair::from_pem(ca_key_pem)
            .map_err(|e| PkiError::Invalid(format!("the CA key is not a usable key: {e}")))?;
        // The certificate holds its subject's public key info verbatim.
        let spki = key.subject_public_key_info();
        if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(PkiError::Invalid(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        if !issuer.key_usages().is_empty()
            && !issuer.key_usages().contains(&KeyUsagePurpose::KeyCertSign)
        {
            return Err(PkiError::Invalid(
                "the CA certificate may not sign certificates (no keyCertSign usage)".into(),
            ));
        }
        Ok(Pki {
            ca_pem: ca_pem.to_owned(),
            ca_key_pem: ca_key_pem.to_owned(),
            issuer,
        })
    }

    /// The CA certificate: what etcd (`--trusted-ca-file`) and every client trust.
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA's private key: what signs more certificates later. Keep it private.
    pub(crate) fn ca_key_pem(&self) -> &str {
        &self.ca_key_pem
    }

    /// An etcd member's certificate, valid for each of `ips` and `dns` names. It allows client
    /// authentication too: etcd's gRPC gateway connects to its own client port with it.
    pub(crate) fn server_cert(
        &self,
        name: &str,
        ips: &[IpAddr],
        dns: &[&str],
    ) -> Result<CertAndKey, PkiError> {
        if ips.is_empty() && dns.is_empty() {
            return Err(PkiError::Invalid(format!(
                "the server certificate {name} needs an address or a host name"
            )));
        }
        let mut params = leaf_params(name)?;
        params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        for host in dns {
            let host = (*host).to_owned().try_into().map_err(|e| {
                PkiError::Invalid(format!("{host:?} cannot be a certificate's host name: {e}"))
            })?;
            params.subject_alt_names.push(SanType::DnsName(host));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params)
    }

    /// A component's (or deisctl's) client certificate, its common name `common_name`.
    pub(crate) fn client_cert(&self, common_name: &str) -> Result<CertAndKey, PkiError> {
        let mut params = leaf_params(common_name)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<CertAndKey, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn leaf_params(common_name: &str) -> Result<CertificateParams, PkiError> {
    if common_name.trim().is_empty() {
        return Err(PkiError::Invalid("a certificate needs a name".into()));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_DAYS);
    Ok(params)
}

/// From yesterday (UTC) for `days` days.
fn validity(params: &mut CertificateParams, days: u32) {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    let date = |day: i64| {
        let (y, m, d) = civil_from_days(day);
        rcgen::date_time_ymd(y, m, d)
    };
    params.not_before = date(today - 1);
    params.not_after = date(today + i64::from(days));
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    use super::*;

    /// Parses a PEM certificate and gives it to `check`.
    fn with_cert(pem: &str, check: impl FnOnce(&X509Certificate<'_>)) {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).expect("PEM");
        let cert = pem.parse_x509().expect("X.509");
        check(&cert);
    }

    /// Whether `pem` is signed by the CA in `ca_pem` and names it as its issuer.
    fn signed_by(pem: &str, ca_pem: &str) -> bool {
        let (_, ca) = parse_x509_pem(ca_pem.as_bytes()).expect("PEM");
        let ca = ca.parse_x509().expect("X.509");
        let (_, leaf) = parse_x509_pem(pem.as_bytes()).expect("PEM");
        let leaf = leaf.parse_x509().expect("X.509");
        leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
    }

    fn eku(cert: &X509Certificate<'_>) -> (bool, bool) {
        let eku = cert
            .extended_key_usage()
            .expect("valid extension")
            .expect("an extended key usage");
        (eku.value.server_auth, eku.value.client_auth)
    }

    fn days(cert: &X509Certificate<'_>) -> i64 {
        let v = cert.validity();
        (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400
    }

    #[test]
    fn the_ca_is_a_ca_for_ten_years_and_signs_itself() {
        let pki = Pki::generate("prod").expect("CA");
        assert!(signed_by(pki.ca_pem(), pki.ca_pem()));
        with_cert(pki.ca_pem(), |ca| {
            assert!(ca.is_ca());
            assert!(ca.validity().is_valid(), "valid now");
            assert!((3650..=3660).contains(&days(ca)), "{} days", days(ca));
            let subject = ca.subject().to_string();
            assert!(subject.contains("prod etcd CA"), "{subject}");
            let usage = ca.key_usage().expect("valid").expect("a key usage");
            assert!(usage.value.key_cert_sign());
        });
        assert!(pki.ca_key_pem().contains("PRIVATE KEY"));
    }

    #[test]
    fn a_server_certificate_names_its_addresses_and_serves() {
        let pki = Pki::generate("prod").expect("CA");
        let ip = IpAddr::from(Ipv4Addr::new(10, 0, 0, 5));
        let (cert, key) = pki
            .server_cert(
                "prod-1",
                &[ip, IpAddr::from([127, 0, 0, 1])],
                &["node-1", "localhost"],
            )
            .expect("server certificate");
        assert!(key.contains("PRIVATE KEY"));
        assert!(signed_by(&cert, pki.ca_pem()), "chains to the CA");
        with_cert(&cert, |c| {
            assert!(!c.is_ca());
            assert!(c.validity().is_valid());
            assert!((365..=367).contains(&days(c)), "{} days", days(c));
            let san = c.subject_alternative_name().expect("valid").expect("SANs");
            let names: Vec<String> = san
                .value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => (*d).to_owned(),
                    GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
                        Ok(v4) => IpAddr::from(v4).to_string(),
                        Err(_) => format!("{b:?}"),
                    },
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(names, ["10.0.0.5", "127.0.0.1", "node-1", "localhost"]);
            // Server auth, and client auth for etcd's gateway.
            assert_eq!(eku(c), (true, true));
            assert!(c.subject().to_string().contains("prod-1"));
        });
    }

    #[test]
    fn a_client_certificate_authenticates_clients_only() {
        let pki = Pki::generate("prod").expect("CA");
        let (cert, _key) = pki.client_cert("controller").expect("client certificate");
        assert!(signed_by(&cert, pki.ca_pem()));
        with_cert(&cert, |c| {
            assert_eq!(eku(c), (false, true));
            assert!(c.subject().to_string().contains("CN=controller"));
            assert!(c.subject_alternative_name().expect("valid").is_none());
            assert!((365..=367).contains(&days(c)));
        });
    }

    #[test]
    fn a_loaded_ca_signs_certificates_that_chain_to_the_original() {
        let pki = Pki::generate("prod").expect("CA");
        let again = Pki::from_pem(pki.ca_pem(), pki.ca_key_pem()).expect("load the CA");
        assert_eq!(again.ca_pem(), pki.ca_pem());
        let (cert, _) = again.client_cert("router").expect("client certificate");
        assert!(
            signed_by(&cert, pki.ca_pem()),
            "chains to the CA made first"
        );
        let other = Pki::generate("other").expect("CA");
        assert!(!signed_by(&cert, other.ca_pem()));
    }

    #[test]
    fn a_ca_with_the_wrong_key_or_no_pem_is_refused() {
        let pki = Pki::generate("prod").expect("CA");
        let other = Pki::generate("other").expect("CA");
        let err = Pki::from_pem(pki.ca_pem(), other.ca_key_pem())
            .err()
            .expect("the key of another CA");
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = Pki::from_pem("not a certificate", pki.ca_key_pem())
            .err()
            .expect("no PEM");
        assert!(err.to_string().contains("CA certificate"), "{err}");
        let err = Pki::from_pem(pki.ca_pem(), "not a key")
            .err()
            .expect("no key");
        assert!(err.to_string().contains("CA key"), "{err}");
        let (leaf, leaf_key) = pki.client_cert("x").expect("client certificate");
        let err = Pki::from_pem(&leaf, &leaf_key).err().expect("not a CA");
        assert!(err.to_string().contains("may not sign"), "{err}");
    }

    #[test]
    fn nameless_certificates_are_refused() {
        let pki = Pki::generate("prod").expect("CA");
        assert!(pki.client_cert(" ").is_err());
        assert!(pki.server_cert("prod-1", &[], &[]).is_err());
        assert!(pki.server_cert("prod-1", &[], &["bad host\u{e9}"]).is_err());
        assert!(Pki::generate("").is_err());
    }

    /// etcd started with the certificates `pki` makes takes clients with one of its client
    /// certificates (also from the CA loaded back) and refuses another CA's.
    #[tokio::test]
    async fn etcd_takes_its_certificates_and_refuses_another_cas() {
        use deis_store::{ConfigStore, EtcdStore, EtcdTls};
        use deis_testkit::{CertFiles, Etcd};

        let dir = tempfile::tempdir().expect("temporary directory");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        let pki = Pki::generate("test").expect("CA");
        let ca_file = write("ca.pem", pki.ca_pem());
        let (cert, key) = pki
            .server_cert("test-1", &[IpAddr::from([127, 0, 0, 1])], &["localhost"])
            .expect("server certificate");
        let server = CertFiles {
            cert_file: write("etcd.pem", &cert),
            key_file: write("etcd-key.pem", &key),
        };
        let etcd = Etcd::start_tls_with(&ca_file, &server).await;
        let client = |name: &str, pki: &Pki| {
            let (cert, key) = pki.client_cert(name).expect("client certificate");
            EtcdTls {
                ca_file: Some(ca_file.clone()),
                cert_file: Some(write(&format!("{name}.pem"), &cert)),
                key_file: Some(write(&format!("{name}-key.pem"), &key)),
            }
        };
        let loaded = Pki::from_pem(pki.ca_pem(), pki.ca_key_pem()).expect("load the CA");
        for tls in [client("controller", &pki), client("router", &loaded)] {
            let store = EtcdStore::connect_with_tls(&[etcd.endpoint()], "", Some(&tls))
                .await
                .expect("connect");
            store
                .put("/deis/pki-test", "ok", None)
                .await
                .expect("etcd takes the certificate");
        }
        let other = Pki::generate("other").expect("CA");
        let store =
            EtcdStore::connect_with_tls(&[etcd.endpoint()], "", Some(&client("intruder", &other)))
                .await
                .expect("connect");
        let err = store
            .put("/deis/pki-test", "no", None)
            .await
            .expect_err("another CA's certificate");
        assert!(err.to_string().contains("client certificate"), "{err}");
    }

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
