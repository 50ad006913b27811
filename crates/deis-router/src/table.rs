//! The routing table: which backends serve a request's host, built from the config store's
//! keys (`/deis/services/`, `/deis/domains/`, `/deis/certs/`, `/deis/config/<app>/deis_whitelist`,
//! `/deis/controller/`, `/deis/router/`, `/deis/platform/domain`). A table is immutable; the
//! watcher builds a new one on every change and swaps it in whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deis_store::keys::{CertPart, Component, Key};
use rustls::sign::CertifiedKey;

use crate::settings::{AllowList, Settings};
use crate::tls::certified_key;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// To one of the target's backends (none means it exists but has nowhere to go: 503).
    Backends(Target<'a>),
    /// No app or domain has this host.
    Unknown,
}

/// An app, or the controller, with its backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// The app's name (`deis` for the controller).
    pub(crate) app: &'a str,
    /// `host:port` of each backend.
    pub(crate) backends: &'a [String],
    /// Only these clients may pass, if set.
    pub(crate) whitelist: Option<&'a AllowList>,
    /// Whether this is the controller (its own timeouts).
    pub(crate) controller: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct App {
    backends: Vec<String>,
    whitelist: Option<AllowList>,
}

/// A certificate as stored, and parsed once (`None` if it could not be used).
#[derive(Debug, Clone)]
struct Cert {
    pem: (String, String),
    key: Option<Arc<CertifiedKey>>,
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.pem == other.pem
    }
}

impl Eq for Cert {}

/// An immutable routing table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// The platform domain.
    pub(crate) domain: String,
    /// The controller's subdomain (`deis`).
    subdomain: String,
    /// The controller's `host:port`, if published.
    controller: Vec<String>,
    /// Each app's healthy web backends and allow-list.
    apps: HashMap<String, App>,
    /// Custom domains (lower-case) and their app.
    domains: HashMap<String, String>,
    /// Certificates by common name (lower-case, maybe `*.`).
    certs: HashMap<String, Cert>,
    /// The platform's certificate.
    platform_cert: Option<Cert>,
    /// The builder's SSH `host:port`, if published: where `git push` connections are relayed.
    pub(crate) builder: Option<String>,
    /// Router settings.
    pub(crate) settings: Settings,
}

impl Table {
    /// A table from the store's keys and values under `/deis/`. Certificates unchanged since
    /// `previous` are reused rather than parsed again.
    pub(crate) fn build(
        kvs: &BTreeMap<String, String>,
        default_domain: &str,
        previous: &Table,
    ) -> Table {
        let mut table = Table {
            domain: default_domain.to_owned(),
            subdomain: "deis".to_owned(),
            ..Table::default()
        };
        let (mut controller_host, mut controller_port) = (None, None);
        let (mut builder_host, mut builder_port) = (None, None);
        let mut router_settings = BTreeMap::new();
        let mut cert_parts: BTreeMap<String, (Option<&str>, Option<&str>)> = BTreeMap::new();
        for (key, value) in kvs {
            match Key::parse(key) {
                Ok(Key::App(app)) => {
                    table.apps.entry(app.to_string()).or_default();
                }
                Ok(Key::Route(container)) => {
                    let app = table.apps.entry(container.app.to_string()).or_default();
                    app.backends.push(value.clone());
                }
                Ok(Key::AppConfig { app, key }) if key.as_str() == "deis_whitelist" => {
                    let list = AllowList::parse(value).unwrap_or_else(|| {
                        tracing::warn!(app = %app, value, "DEIS_WHITELIST not understood; denying every client");
                        AllowList::default()
                    });
                    table.apps.entry(app.to_string()).or_default().whitelist = Some(list);
                }
                Ok(Key::Domain(domain)) => {
                    table
                        .domains
                        .insert(domain.as_str().to_ascii_lowercase(), value.clone());
                }
                Ok(Key::Cert { common_name, part }) => {
                    let entry = cert_parts
                        .entry(common_name.as_str().to_ascii_lowercase())
                        .or_default();
                    match part {
                        CertPart::Cert => entry.0 = Some(value),
                        CertPart::Key => entry.1 = Some(value),
                    }
                }
                Ok(Key::Setting { component, name }) => match (component, name.as_str()) {
                    (Component::Platform, "domain") if !value.is_empty() => {
                        table.domain = value.to_ascii_lowercase()
                    }
                    (Component::Controller, "subdomain") if !value.is_empty() => {
                        table.subdomain = value.clone()
                    }
                    (Component::Controller, "host") => controller_host = Some(value.clone()),
                    (Component::Controller, "port") => controller_port = Some(value.clone()),
                    (Component::Builder, "host") => builder_host = Some(value.trim()),
                    (Component::Builder, "port") => builder_port = Some(value.trim()),
                    (Component::Router, name) => {
                        router_settings.insert(name.to_owned(), value.clone());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if let (Some(host), Some(port)) = (controller_host, controller_port) {
            table.controller = vec![format!("{host}:{port}")];
        }
        table.builder = builder_address(builder_host, builder_port);
        table.settings = Settings::parse(&router_settings);
        for (name, parts) in cert_parts {
            if let (Some(cert), Some(key)) = parts {
                let old = previous.certs.get(&name);
                table
                    .certs
                    .insert(name.clone(), load_cert(&name, cert, key, old));
            }
        }
        if let Some((cert, key)) = &table.settings.ssl_cert {
            let old = previous.platform_cert.as_ref();
            table.platform_cert = Some(load_cert("platform (sslCert)", cert, key, old));
        }
        table
    }

    /// Where a request for `host` (without port, lower-case) goes. The platform's own names
    /// come first, so no custom domain can take them: `{subdomain}.{domain}` is the controller
    /// and `{app}.{domain}` the app. Then custom domains; then, as Deis matched the first label
    /// under any parent domain, `{subdomain}.*` and `{app}.*`.
    pub(crate) fn route(&self, host: &str) -> Decision<'_> {
        let labels = host.split_once('.');
        if let Some((first, rest)) = labels
            && rest == self.domain
            && let Some(decision) = self.by_first_label(first)
        {
            return decision;
        }
        if let Some(name) = self.domains.get(host)
            && let Some((name, app)) = self.apps.get_key_value(name)
        {
            return Decision::Backends(app.target(name));
        }
        let Some((first, rest)) = labels else {
            return Decision::Unknown;
        };
        if rest.is_empty() {
            return Decision::Unknown;
        }
        self.by_first_label(first).unwrap_or(Decision::Unknown)
    }

    /// The controller for its subdomain, else the app of that name.
    fn by_first_label(&self, first: &str) -> Option<Decision<'_>> {
        if first == self.subdomain {
            return Some(Decision::Backends(Target {
                app: "deis",
                backends: &self.controller,
                whitelist: self.settings.controller_whitelist.as_ref(),
                controller: true,
            }));
        }
        self.apps
            .get_key_value(first)
            .map(|(name, app)| Decision::Backends(app.target(name)))
    }

    /// The certificate for a TLS handshake naming `server_name` (lower-case): the custom
    /// domain's, a wildcard covering it, or the platform's.
    pub(crate) fn certificate(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let custom = server_name.and_then(|name| {
            let exact = self.certs.get(name);
            let wildcard = || {
                let (_, parent) = name.split_once('.')?;
                self.certs.get(&format!("*.{parent}"))
            };
            exact.or_else(wildcard).and_then(|c| c.key.clone())
        });
        custom.or_else(|| self.platform_cert.as_ref().and_then(|c| c.key.clone()))
    }

    /// Whether `backend` is still one of some app's (or the controller's) backends.
    pub(crate) fn has_backend(&self, backend: &str) -> bool {
        self.controller.iter().any(|b| b == backend)
            || self
                .apps
                .values()
                .any(|app| app.backends.iter().any(|b| b == backend))
    }
}

impl App {
    fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        Target {
            app: name,
            backends: &self.backends,
            whitelist: self.whitelist.as_ref(),
            controller: false,
        }
    }
}

/// The builder's `host:port` for a connect (an IPv6 address in brackets), if both keys are
/// there and the port is one.
fn builder_address(host: Option<&str>, port: Option<&str>) -> Option<String> {
    let (host, port) = (host.filter(|h| !h.is_empty())?, port?);
    let Ok(port) = port.parse::<u16>() else {
        tracing::warn!(port, "The builder's port is not a port; not relaying to it");
        return None;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    })
}

fn load_cert(name: &str, cert: &str, key: &str, previous: Option<&Cert>) -> Cert {
    let pem = (cert.to_owned(), key.to_owned());
    if let Some(old) = previous
        && old.pem == pem
    {
        return old.clone();
    }
    let key = match certified_key(cert, key) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            tracing::warn!(certificate = name, error = %e, "Certificate not usable; not serving it");
            None
        }
    };
    Cert { pem, key }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Table {
        let kvs: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Table::build(&kvs, "local.test", &Table::default())
    }

    fn app<'a>(app: &'a str, backends: &'a [String]) -> Decision<'a> {
        Decision::Backends(Target {
            app,
            backends,
            whitelist: None,
            controller: false,
        })
    }

    #[test]
    fn routing_rules() {
        let t = table(&[
            ("/deis/platform/domain", "example.com"),
            ("/deis/controller/host", "10.0.0.1"),
            ("/deis/controller/port", "8000"),
            ("/deis/services/go", "alice"),
            ("/deis/services/go/go_v2.web.1", "10.0.0.2:5000"),
            ("/deis/services/go/go_v2.web.2", "10.0.0.3:5000"),
            ("/deis/services/idle", "bob"),
            ("/deis/domains/www.Example.org", "go"),
        ]);
        assert_eq!(t.domain, "example.com");
        let go = vec!["10.0.0.2:5000".to_owned(), "10.0.0.3:5000".to_owned()];
        assert_eq!(t.route("go.example.com"), app("go", &go));
        assert_eq!(t.route("go.other.net"), app("go", &go), "any parent domain");
        assert_eq!(t.route("www.example.org"), app("go", &go));
        assert_eq!(t.route("idle.example.com"), app("idle", &[]));
        assert_eq!(t.route("nope.example.com"), Decision::Unknown);
        assert_eq!(t.route("localhost"), Decision::Unknown);
        let controller = vec!["10.0.0.1:8000".to_owned()];
        assert_eq!(
            t.route("deis.example.com"),
            Decision::Backends(Target {
                app: "deis",
                backends: &controller,
                whitelist: None,
                controller: true,
            })
        );
        assert!(t.has_backend("10.0.0.3:5000"));
        assert!(!t.has_backend("10.0.0.9:5000"));
    }

    #[test]
    fn custom_domains_cannot_take_the_platforms_names() {
        // Domain keys as a hostile app's owner would like them: the controller's name, another
        // app's name, and a name whose first label is an app.
        let t = table(&[
            ("/deis/platform/domain", "example.com"),
            ("/deis/controller/host", "10.0.0.1"),
            ("/deis/controller/port", "8000"),
            ("/deis/services/victim", "alice"),
            ("/deis/services/victim/victim_v2.web.1", "10.0.0.2:5000"),
            ("/deis/services/evil", "mallory"),
            ("/deis/services/evil/evil_v2.web.1", "10.0.0.66:5000"),
            ("/deis/domains/deis.example.com", "evil"),
            ("/deis/domains/victim.example.com", "evil"),
            ("/deis/domains/victim.other.org", "evil"),
            ("/deis/domains/intranet", "evil"),
        ]);
        let Decision::Backends(controller) = t.route("deis.example.com") else {
            panic!("the controller routes")
        };
        assert!(controller.controller);
        let victim = vec!["10.0.0.2:5000".to_owned()];
        assert_eq!(t.route("victim.example.com"), app("victim", &victim));
        // Outside the platform domain a custom domain wins over Deis's first-label rule.
        let evil = vec!["10.0.0.66:5000".to_owned()];
        assert_eq!(t.route("victim.other.org"), app("evil", &evil));
        assert_eq!(
            t.route("intranet"),
            app("evil", &evil),
            "single-label domains"
        );
    }

    #[test]
    fn the_builder_is_where_it_said_it_listens() {
        assert_eq!(table(&[]).builder, None);
        let t = table(&[
            ("/deis/builder/host", "10.0.0.5"),
            ("/deis/builder/port", "2223"),
            ("/deis/builder/users/bob/88:25", "ssh-ed25519 AAAA"),
        ]);
        assert_eq!(t.builder.as_deref(), Some("10.0.0.5:2223"));
        let v6 = table(&[
            ("/deis/builder/host", "::1"),
            ("/deis/builder/port", "2223"),
        ]);
        assert_eq!(v6.builder.as_deref(), Some("[::1]:2223"));
        assert_eq!(table(&[("/deis/builder/host", "10.0.0.5")]).builder, None);
        let bad = table(&[("/deis/builder/host", "h"), ("/deis/builder/port", "ssh")]);
        assert_eq!(bad.builder, None);
    }

    #[test]
    fn whitelists_and_settings_come_from_the_store() {
        let t = table(&[
            ("/deis/services/go", "alice"),
            ("/deis/config/go/deis_whitelist", "10.0.0.0/8"),
            ("/deis/services/bad", "alice"),
            ("/deis/config/bad/deis_whitelist", "not an address"),
            ("/deis/router/bodySize", "2m"),
            ("/deis/router/hsts/enabled", "true"),
        ]);
        let Decision::Backends(go) = t.route("go.x") else {
            panic!("go routes")
        };
        let list = go.whitelist.expect("go has a whitelist");
        assert!(list.allows("10.1.1.1".parse().expect("ip")));
        assert!(!list.allows("192.0.2.1".parse().expect("ip")));
        let Decision::Backends(bad) = t.route("bad.x") else {
            panic!("bad routes")
        };
        let denied = bad.whitelist.expect("an unreadable whitelist denies");
        assert!(!denied.allows("10.1.1.1".parse().expect("ip")));
        assert_eq!(t.settings.body_size, Some(2 << 20));
        assert!(t.settings.enforce_https);
    }

    #[test]
    fn certificates_by_name_wildcard_then_platform() {
        let make = |name: &str| {
            let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
            (c.cert.pem(), c.signing_key.serialize_pem())
        };
        let (shop_cert, shop_key) = make("shop.example.org");
        let (wild_cert, wild_key) = make("*.example.net");
        let (platform_cert, platform_key) = make("*.example.com");
        let t = table(&[
            ("/deis/certs/shop.example.org/cert", &shop_cert),
            ("/deis/certs/shop.example.org/key", &shop_key),
            ("/deis/certs/*.example.net/cert", &wild_cert),
            ("/deis/certs/*.example.net/key", &wild_key),
            ("/deis/certs/broken.example.org/cert", "junk"),
            ("/deis/certs/broken.example.org/key", "junk"),
            ("/deis/router/sslCert", &platform_cert),
            ("/deis/router/sslKey", &platform_key),
        ]);
        let first = |name: Option<&str>| {
            let key = t.certificate(name).expect("a certificate");
            key.cert[0].as_ref().to_vec()
        };
        let der = |pem: &str| {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                .expect("pem")
                .as_ref()
                .to_vec()
        };
        assert_eq!(first(Some("shop.example.org")), der(&shop_cert));
        assert_eq!(first(Some("a.example.net")), der(&wild_cert));
        assert_eq!(first(Some("go.example.com")), der(&platform_cert));
        assert_eq!(first(Some("broken.example.org")), der(&platform_cert));
        assert_eq!(first(None), der(&platform_cert));
        let again = Table::build(
            &[
                ("/deis/certs/shop.example.org/cert", &shop_cert),
                ("/deis/certs/shop.example.org/key", &shop_key),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_string()))
            .collect(),
            "x",
            &t,
        );
        assert!(
            Arc::ptr_eq(
                &again.certificate(Some("shop.example.org")).expect("cert"),
                &t.certificate(Some("shop.example.org")).expect("cert")
            ),
            "an unchanged certificate is not parsed again"
        );
    }
}
