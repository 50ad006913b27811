//! Typed keys of the store's namespace. Every key the platform reads or writes is built and
//! parsed here, so no component formats a key path by hand. What each key means, who writes it
//! and who reads it is documented once, in `ARCHITECTURE.md` ("The key schema"); a test checks
//! that every key listed there parses.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use deis_types::{AppName, ContainerName};

/// The root of the platform's keys.
pub const ROOT: &str = "/deis/";

/// Key prefixes to list or watch.
pub mod prefix {
    use deis_types::AppName;

    /// Every key of the platform.
    pub const ALL: &str = "/deis/";
    /// Apps and their routes.
    pub const SERVICES: &str = "/deis/services/";
    /// Custom domains.
    pub const DOMAINS: &str = "/deis/domains/";
    /// Certificates of custom domains.
    pub const CERTS: &str = "/deis/certs/";
    /// App config mirrors.
    pub const CONFIG: &str = "/deis/config/";
    /// Router settings.
    pub const ROUTER: &str = "/deis/router/";
    /// Users' SSH keys.
    pub const USER_KEYS: &str = "/deis/builder/users/";
    /// The cluster's hosts, as their host agents register them.
    pub const HOSTS: &str = "/deis/hosts/";

    /// The routes of one app.
    pub fn app_routes(app: &AppName) -> String {
        format!("{SERVICES}{app}/")
    }

    /// The config mirror of one app.
    pub fn app_config(app: &AppName) -> String {
        format!("{CONFIG}{app}/")
    }

    /// The SSH keys of one user.
    pub fn user_keys(user: &str) -> String {
        format!("{USER_KEYS}{user}/")
    }
}

/// A key path that is not part of the namespace, or a part that cannot go into one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is not a valid store key: {reason}")]
pub struct KeyError {
    /// The rejected path or segment.
    pub path: String,
    /// Why.
    pub reason: String,
}

fn key_error(path: &str, reason: impl Into<String>) -> KeyError {
    KeyError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The part of the platform a setting belongs to: the second segment of `/deis/<component>/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// Platform-wide settings (`domain`, `version`, ...).
    Platform,
    /// The controller.
    Controller,
    /// The builder.
    Builder,
    /// The routers.
    Router,
    /// The registry (its endpoint is published by the registry-proxy in front of it).
    Registry,
    /// The registry-proxy's own settings (its image).
    RegistryProxy,
    /// The database.
    Database,
    /// Where logs go (published by the logger).
    Logs,
    /// The logger's own settings (its image).
    Logger,
    /// The log shipper deisctl runs beside the logger (its image).
    Logspout,
    /// Redis, where the loggers keep the apps' lines (Deis's `/deis/cache`).
    Cache,
    /// The continuous copy of the database and the registry on another host (its image).
    Backup,
}

impl Component {
    /// Every component, in the order of the schema table.
    pub const ALL: [Component; 12] = [
        Component::Platform,
        Component::Controller,
        Component::Builder,
        Component::Router,
        Component::Registry,
        Component::RegistryProxy,
        Component::Database,
        Component::Logs,
        Component::Logger,
        Component::Logspout,
        Component::Cache,
        Component::Backup,
    ];

    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Platform => "platform",
            Component::Controller => "controller",
            Component::Builder => "builder",
            Component::Router => "router",
            Component::Registry => "registry",
            Component::RegistryProxy => "registry-proxy",
            Component::Database => "database",
            Component::Logs => "logs",
            Component::Logger => "logger",
            Component::Logspout => "logspout",
            Component::Cache => "cache",
            Component::Backup => "backup",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Component {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| key_error(s, "unknown component"))
    }
}

/// One path segment: non-empty, printable ASCII without `/` or spaces, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment(String);

impl Segment {
    /// The segment as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Segment {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s == "." || s == ".." {
            return Err(key_error(s, "a key segment cannot be empty, '.' or '..'"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            return Err(key_error(
                s,
                "a key segment holds printable ASCII without '/' or spaces",
            ));
        }
        Ok(Segment(s.to_owned()))
    }
}

/// A setting name under a component: one or more segments joined by `/` (`hsts/maxAge`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingName(String);

impl SettingName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SettingName {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        for part in s.split('/') {
            part.parse::<Segment>()
                .map_err(|e| key_error(s, format!("setting name: {}", e.reason)))?;
        }
        Ok(SettingName(s.to_owned()))
    }
}

/// The two halves of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertPart {
    /// The PEM certificate chain.
    Cert,
    /// The PEM private key.
    Key,
}

/// A key of the namespace. See `ARCHITECTURE.md` for what each one holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `/deis/<component>/<name>`: a setting, or an endpoint a component publishes.
    Setting {
        /// The component.
        component: Component,
        /// The setting, possibly with `/` inside.
        name: SettingName,
    },
    /// `/deis/builder/users/<user>/<fingerprint>`: a user's SSH public key.
    UserKey {
        /// The user name.
        user: Segment,
        /// The key's fingerprint.
        fingerprint: Segment,
    },
    /// `/deis/services/<app>`: the app exists (its value is the owner).
    App(AppName),
    /// `/deis/services/<app>/<container>`: a healthy web container's `host:port`.
    Route(ContainerName),
    /// `/deis/config/<app>/<key>`: a config value of the app's current release.
    AppConfig {
        /// The app.
        app: AppName,
        /// The config key, lowercase.
        key: Segment,
    },
    /// `/deis/domains/<domain>`: a custom domain, its value the app.
    Domain(Segment),
    /// `/deis/certs/<common name>/{cert,key}`: a custom domain's certificate.
    Cert {
        /// The certificate's common name.
        common_name: Segment,
        /// Which half.
        part: CertPart,
    },
    /// `/deis/hosts/<address>`: a host of the cluster, registered by its host agent under a
    /// lease (its value: the host's name); every host agent keeps app containers off the
    /// platform's ports of the others.
    Host(IpAddr),
}

impl Key {
    /// A setting of a component, e.g. `Key::setting(Component::Router, "hsts/maxAge")`.
    pub fn setting(component: Component, name: &str) -> Result<Key, KeyError> {
        Ok(Key::Setting {
            component,
            name: name.parse()?,
        })
    }

    /// `/deis/logs/secret`: what every client of the logger's APIs presents (made by the
    /// first component that needs it).
    pub fn logger_secret() -> Key {
        Key::known(Component::Logs, "secret")
    }

    /// `/deis/registry/pushSecret`: the password of the registry proxy's `deis-builder` user,
    /// the only one that may push or delete (made by the first component that needs it).
    pub fn registry_push_secret() -> Key {
        Key::known(Component::Registry, "pushSecret")
    }

    /// `/deis/registry/pullSecret`: the key of the HMAC that makes an app's pull password
    /// for the registry proxy (made by the first component that needs it).
    pub fn registry_pull_secret() -> Key {
        Key::known(Component::Registry, "pullSecret")
    }

    /// `/deis/platform/domain`: the platform's domain.
    pub fn platform_domain() -> Key {
        Key::known(Component::Platform, "domain")
    }

    /// `/deis/platform/version`: the tag of the platform's component images.
    pub fn platform_version() -> Key {
        Key::known(Component::Platform, "version")
    }

    /// `/deis/platform/bindHost`: the address deisctl's containers listen on.
    pub fn bind_host() -> Key {
        Key::known(Component::Platform, "bindHost")
    }

    /// `/deis/<component>/image`: an image in place of a component's default one.
    pub fn image(component: Component) -> Key {
        Key::known(component, "image")
    }

    /// `/deis/builder/stackImage`: the image buildpacks run on.
    pub fn stack_image() -> Key {
        Key::known(Component::Builder, "stackImage")
    }

    /// `/deis/builder/runnerImage`: the image slugs run on.
    pub fn runner_image() -> Key {
        Key::known(Component::Builder, "runnerImage")
    }

    /// `/deis/database/password`: the platform database's password.
    pub fn database_password() -> Key {
        Key::known(Component::Database, "password")
    }

    /// `/deis/controller/leader`: the controller that runs the API, reconciliation and deploys
    /// (its address), under its lease; the others stand by.
    pub fn controller_leader() -> Key {
        Key::known(Component::Controller, "leader")
    }

    /// `/deis/cache/password`: the password of the platform's Redis, made up on the first
    /// install.
    pub fn cache_password() -> Key {
        Key::known(Component::Cache, "password")
    }

    /// `/deis/database/url`: an external PostgreSQL in place of the platform's database.
    pub fn database_url() -> Key {
        Key::known(Component::Database, "url")
    }

    /// `/deis/<component>/host`: where a component listens.
    pub fn host(component: Component) -> Key {
        Key::known(component, "host")
    }

    /// `/deis/<component>/port`: the port a component listens on.
    pub fn port(component: Component) -> Key {
        Key::known(component, "port")
    }

    fn known(component: Component, name: &'static str) -> Key {
        Key::Setting {
            component,
            name: SettingName(name.to_owned()),
        }
    }

    /// The key's path in the store.
    pub fn path(&self) -> String {
        self.to_string()
    }

    /// Reads a key path back into its typed form.
    pub fn parse(path: &str) -> Result<Key, KeyError> {
        let rest = path
            .strip_prefix(ROOT)
            .ok_or_else(|| key_error(path, format!("keys start with {ROOT}")))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let seg = |s: &str| s.parse::<Segment>().map_err(|e| key_error(path, e.reason));
        let app = |s: &str| {
            s.parse::<AppName>()
                .map_err(|e| key_error(path, e.to_string()))
        };
        match parts.as_slice() {
            ["services", a] => Ok(Key::App(app(a)?)),
            ["services", a, container] => {
                let name: ContainerName = container
                    .parse()
                    .map_err(|e: deis_types::InvalidName| key_error(path, e.to_string()))?;
                if name.app.as_str() != *a {
                    return Err(key_error(path, "the container belongs to another app"));
                }
                Ok(Key::Route(name))
            }
            ["config", a, k] => Ok(Key::AppConfig {
                app: app(a)?,
                key: seg(k)?,
            }),
            ["domains", d] => Ok(Key::Domain(seg(d)?)),
            ["certs", cn, part] => Ok(Key::Cert {
                common_name: seg(cn)?,
                part: match *part {
                    "cert" => CertPart::Cert,
                    "key" => CertPart::Key,
                    _ => return Err(key_error(path, "a certificate has a cert and a key")),
                },
            }),
            ["hosts", address] => address
                .parse()
                .map(Key::Host)
                .map_err(|_| key_error(path, "a host is an IP address")),
            ["builder", "users", user, fingerprint] => Ok(Key::UserKey {
                user: seg(user)?,
                fingerprint: seg(fingerprint)?,
            }),
            ["services" | "config" | "domains" | "certs" | "hosts", ..]
            | ["builder", "users", ..] => Err(key_error(path, "wrong number of segments")),
            [component, name @ ..] if !name.is_empty() => Ok(Key::Setting {
                component: component
                    .parse()
                    .map_err(|e: KeyError| key_error(path, e.reason))?,
                name: name
                    .join("/")
                    .parse()
                    .map_err(|e: KeyError| key_error(path, e.reason))?,
            }),
            _ => Err(key_error(path, "no such key")),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Setting { component, name } => {
                write!(f, "{ROOT}{}/{}", component.as_str(), name.0)
            }
            Key::UserKey { user, fingerprint } => {
                write!(f, "{ROOT}builder/users/{}/{}", user.0, fingerprint.0)
            }
            Key::App(app) => write!(f, "{ROOT}services/{app}"),
            Key::Route(c) => write!(f, "{ROOT}services/{}/{c}", c.app),
            Key::AppConfig { app, key } => write!(f, "{ROOT}config/{app}/{}", key.0),
            Key::Domain(d) => write!(f, "{ROOT}domains/{}", d.0),
            Key::Cert { common_name, part } => {
                let part = match part {
                    CertPart::Cert => "cert",
                    CertPart::Key => "key",
                };
                write!(f, "{ROOT}certs/{}/{part}", common_name.0)
            }
            Key::Host(address) => write!(f, "{ROOT}hosts/{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expect: Option<&str>) {
        let parsed = Key::parse(path);
        match expect {
            Some(debug) => {
                let key = parsed.unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(key.path(), path, "round trip");
                assert!(format!("{key:?}").starts_with(debug), "{path}: {key:?}");
            }
            None => assert!(parsed.is_err(), "{path} should be rejected: {parsed:?}"),
        }
    }

    #[test]
    fn parses_every_kind_of_key() {
        check("/deis/platform/domain", Some("Setting"));
        check("/deis/router/hsts/maxAge", Some("Setting"));
        check("/deis/services/go", Some("App"));
        check("/deis/services/go/go_v2.web.1", Some("Route"));
        check("/deis/config/go/deis_whitelist", Some("AppConfig"));
        check("/deis/domains/example.com", Some("Domain"));
        check("/deis/certs/example.com/cert", Some("Cert"));
        check("/deis/certs/*.example.com/key", Some("Cert"));
        check("/deis/builder/users/bob/88:25:ed:0a", Some("UserKey"));
        check("/deis/hosts/10.0.0.1", Some("Host"));
        check("/deis/hosts/fd00::1", Some("Host"));
    }

    #[test]
    fn rejects_keys_outside_the_schema() {
        check("/other/platform/domain", None);
        check("/deis/platform", None);
        check("/deis/unknown/x", None);
        check("/deis/services/Go", None);
        check("/deis/services/go/other_v2.web.1", None);
        check("/deis/services/go/go_v2.web", None);
        check("/deis/certs/example.com/chain", None);
        check("/deis/domains/a/b", None);
        check("/deis/router/a//b", None);
        check("/deis/config/go/../x", None);
        check("/deis/hosts/node1", None);
        check("/deis/hosts/10.0.0.1/x", None);
        check("/deis/hosts", None);
    }

    #[test]
    fn helpers_build_the_documented_paths() {
        for (key, path) in [
            (Key::platform_domain(), "/deis/platform/domain"),
            (Key::platform_version(), "/deis/platform/version"),
            (Key::bind_host(), "/deis/platform/bindHost"),
            (Key::host(Component::Controller), "/deis/controller/host"),
            (Key::port(Component::Logs), "/deis/logs/port"),
            (
                Key::image(Component::RegistryProxy),
                "/deis/registry-proxy/image",
            ),
            (Key::stack_image(), "/deis/builder/stackImage"),
            (Key::runner_image(), "/deis/builder/runnerImage"),
            (Key::database_password(), "/deis/database/password"),
            (Key::database_url(), "/deis/database/url"),
            (Key::logger_secret(), "/deis/logs/secret"),
            (Key::registry_push_secret(), "/deis/registry/pushSecret"),
            (Key::registry_pull_secret(), "/deis/registry/pullSecret"),
        ] {
            assert_eq!(key.path(), path);
            assert_eq!(Key::parse(path), Ok(key), "{path} parses back");
        }
        let app: AppName = "go".parse().expect("valid app");
        assert_eq!(prefix::app_routes(&app), "/deis/services/go/");
        let host = Key::Host(IpAddr::from([10, 0, 0, 1]));
        assert!(host.path().starts_with(prefix::HOSTS));
        assert!(Key::setting(Component::Router, "a b").is_err());
    }

    #[test]
    fn components_parse_from_their_segment() {
        for component in Component::ALL {
            assert_eq!(component.as_str().parse(), Ok(component));
        }
        assert!("etcd".parse::<Component>().is_err());
    }
}
