//! Validation of user names, custom domains, SSH keys and certificates, with the messages of
//! the Deis API (§4.11, §4.12, §5.4, §5.6).

use base64::Engine;
use md5::{Digest, Md5};
use x509_parser::error::{PEMError, X509Error};
use x509_parser::nom;

/// Why a user name, custom domain, SSH key or certificate is refused; the text is the Deis
/// API's, under the request field [`Invalid::field`] names.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Invalid {
    #[error("This field may not be blank.")]
    UsernameBlank,
    #[error("Ensure this value has at most 30 characters (it has {length}).")]
    UsernameTooLong { length: usize },
    #[error(
        "Enter a valid username. This value may contain only letters, numbers and @/./+/-/_ characters."
    )]
    UsernameCharacters { username: String },
    #[error("Hostname must be 255 characters or less.")]
    HostnameTooLong { length: usize },
    #[error("Adding a wildcard subdomain is currently not supported.")]
    Wildcard { domain: String },
    #[error("Hostname does not look valid.")]
    Hostname { domain: String },
    #[error("Key must have a type and a base64-encoded body")]
    KeyParts,
    #[error("Incorrect padding")]
    KeyLength { length: usize },
    #[error("Incorrect padding")]
    KeyBase64(#[source] base64::DecodeError),
    #[error("Could not load certificate: {0}")]
    CertificatePem(#[source] nom::Err<PEMError>),
    #[error("Could not load certificate: {0}")]
    CertificateDer(#[source] nom::Err<X509Error>),
    #[error("Could not load certificate: {0}")]
    CertificateChain(#[source] rustls_pki_types::pem::Error),
    #[error("Could not load the private key: {0}")]
    PrivateKey(#[source] rustls_pki_types::pem::Error),
    #[error("The key does not belong to the certificate")]
    KeyMismatch,
    #[error("The certificate and key are not usable together: {0}")]
    Unusable(#[source] rustls::Error),
}

impl Invalid {
    /// The request field the refusal is about.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            Invalid::UsernameBlank
            | Invalid::UsernameTooLong { .. }
            | Invalid::UsernameCharacters { .. } => "username",
            Invalid::HostnameTooLong { .. }
            | Invalid::Wildcard { .. }
            | Invalid::Hostname { .. } => "domain",
            Invalid::KeyParts | Invalid::KeyLength { .. } | Invalid::KeyBase64(_) => "public",
            Invalid::CertificatePem(_)
            | Invalid::CertificateDer(_)
            | Invalid::CertificateChain(_) => "certificate",
            Invalid::PrivateKey(_) | Invalid::KeyMismatch | Invalid::Unusable(_) => "key",
        }
    }
}

/// Checks a user name.
pub(crate) fn username(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::UsernameBlank);
    }
    let length = name.chars().count();
    if length > 30 {
        return Err(Invalid::UsernameTooLong { length });
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '+' | '-'))
    {
        return Err(Invalid::UsernameCharacters {
            username: name.to_owned(),
        });
    }
    Ok(())
}

/// Normalises a custom domain (lower case, no trailing dot), or says why it is not one (§5.4;
/// uniqueness and ownership are checked by the caller). Deis accepted anything containing
/// `xip.io` unchecked; here such names only may have all-digit labels (an IP address).
pub(crate) fn domain(input: &str) -> Result<String, Invalid> {
    if input.len() > 255 {
        return Err(Invalid::HostnameTooLong {
            length: input.len(),
        });
    }
    let d = input
        .strip_suffix('.')
        .unwrap_or(input)
        .to_ascii_lowercase();
    let xip = d.ends_with(".xip.io");
    let labels: Vec<&str> = d.split('.').collect();
    if labels.first() == Some(&"*") {
        return Err(Invalid::Wildcard { domain: d });
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
            && !l.contains("--")
            && (xip || !l.bytes().all(|b| b.is_ascii_digit()))
    };
    let single_with_digit = labels.len() == 1 && d.bytes().any(|b| b.is_ascii_digit());
    if d.is_empty() || !labels.iter().all(|l| label_ok(l)) || single_with_digit {
        return Err(Invalid::Hostname { domain: d });
    }
    Ok(d)
}

/// Whether `name` (lower case) is the platform's own: the platform domain or a name under it,
/// where the controller and every app answer.
pub(crate) fn is_platform_name(name: &str, platform_domain: &str) -> bool {
    let platform = platform_domain.trim_end_matches('.').to_ascii_lowercase();
    !platform.is_empty()
        && (name == platform
            || name
                .strip_suffix(platform.as_str())
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The MD5 fingerprint of an `authorized_keys` line (`aa:bb:...`), or the reason it is not a key.
pub(crate) fn key_fingerprint(public: &str) -> Result<String, Invalid> {
    let Some(body) = public.split_whitespace().nth(1) else {
        return Err(Invalid::KeyParts);
    };
    // Like Python's b64decode: characters outside the alphabet are skipped; the length must fit.
    let cleaned: String = body
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    if !cleaned.len().is_multiple_of(4) {
        return Err(Invalid::KeyLength {
            length: cleaned.len(),
        });
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(Invalid::KeyBase64)?;
    let digest = Md5::digest(&blob);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// What a certificate says of itself.
pub(crate) struct CertInfo {
    pub(crate) common_name: String,
    /// Every name it is valid for, lower case: the subject's common name and the DNS names of
    /// its subject alternative names.
    pub(crate) names: Vec<String>,
    pub(crate) expires_micros: i64,
}

/// Reads a PEM certificate's subject common name, names and expiry.
pub(crate) fn certificate(pem: &str) -> Result<CertInfo, Invalid> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(Invalid::CertificatePem)?;
    let cert = pem.parse_x509().map_err(Invalid::CertificateDer)?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut names: Vec<String> = Vec::new();
    if !common_name.is_empty() {
        names.push(common_name.to_ascii_lowercase());
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    names.sort();
    names.dedup();
    let expires_micros = cert
        .validity()
        .not_after
        .timestamp()
        .saturating_mul(1_000_000);
    Ok(CertInfo {
        common_name,
        names,
        expires_micros,
    })
}

/// Checks that `key_pem` is the private key of the (first) certificate in `cert_pem`.
pub(crate) fn key_matches(cert_pem: &str, key_pem: &str) -> Result<(), Invalid> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Invalid::CertificateChain)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(Invalid::PrivateKey)?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map(|_| ())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => Invalid::KeyMismatch,
            other => Invalid::Unusable(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_follow_the_reference() {
        for ok in [
            "test-domain.example.com",
            "django.paas-sandbox",
            "domain",
            "3com.com",
            "w3.example.com",
            "MYDOMAIN.NET",
            "autotest.127.0.0.1.xip.io",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "this_is_an.invalid.domain",
            "this-is-an.invalid.1",
            "django.pass--sandbox",
            "domain1",
            "3333.com",
            &format!("{}.com", "a".repeat(64)),
            "*.deis.example.com",
        ] {
            assert!(domain(bad).is_err(), "{bad}");
        }
        for (input, normalised) in [
            ("example.com.", "example.com"),
            ("MYDOMAIN.NET", "mydomain.net"),
            ("Shop.Example.ORG", "shop.example.org"),
        ] {
            assert_eq!(domain(input).ok().as_deref(), Some(normalised));
        }
        assert!(
            domain("x_y<script>.xip.io").is_err(),
            "xip.io names are checked too"
        );
        assert_eq!(
            domain("*.deis.example.com")
                .expect_err("wildcard")
                .to_string(),
            "Adding a wildcard subdomain is currently not supported."
        );
    }

    #[test]
    fn platform_names() {
        for (name, platform, theirs) in [
            ("deis.example.com", "example.com", true),
            ("example.com", "example.com", true),
            ("shop.example.com", "Example.COM.", true),
            ("a.b.example.com", "example.com", true),
            ("notexample.com", "example.com", false),
            ("example.com.evil.org", "example.com", false),
            ("shop.example.org", "example.com", false),
        ] {
            assert_eq!(
                is_platform_name(name, platform),
                theirs,
                "{name} / {platform}"
            );
        }
    }

    #[test]
    fn key_fingerprints() {
        // The fingerprint of a known key blob ("hello" base64), and a padding error.
        assert_eq!(
            key_fingerprint("ssh-rsa aGVsbG8= me@host").ok().as_deref(),
            Some("5d:41:40:2a:bc:4b:2a:76:b9:71:9d:91:10:17:c5:92")
        );
        assert_eq!(
            key_fingerprint("ssh-rsa aGVsbG8 me")
                .expect_err("bad padding")
                .to_string(),
            "Incorrect padding"
        );
        assert!(key_fingerprint("ssh-rsa").is_err());
    }

    #[test]
    fn usernames() {
        assert!(username("alice.b+c@d-e_f").is_ok());
        assert!(username("a b").is_err());
        assert_eq!(
            username(&"a".repeat(31)).expect_err("too long").to_string(),
            "Ensure this value has at most 30 characters (it has 31)."
        );
    }
}
