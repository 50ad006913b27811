//! The routing table: which backends serve a request's host, built from the config store's
//! keys (`/deis/services/`, `/deis/domains/`, `/deis/controller/`, `/deis/platform/domain`).
//! A table is immutable; the watcher builds a new one on every change and swaps it in whole.

use std::collections::{BTreeMap, HashMap};

use deis_store::keys::{Component, Key};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// To one of these backends (`host:port`); empty means the target exists but has none.
    Backends {
        app: &'a str,
        backends: &'a [String],
    },
    /// No app or domain has this host.
    Unknown,
}

/// An immutable routing table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// The platform domain.
    pub(crate) domain: String,
    /// The controller's subdomain (`deis`).
    subdomain: String,
    /// The controller's `host:port`, if published.
    controller: Vec<String>,
    /// Each app's healthy web backends.
    apps: HashMap<String, Vec<String>>,
    /// Custom domains (lower-case) and their app.
    domains: HashMap<String, String>,
}

impl Table {
    /// A table from the store's keys and values under `/deis/`.
    pub(crate) fn build(kvs: &BTreeMap<String, String>, default_domain: &str) -> Table {
        let mut table = Table {
            domain: default_domain.to_owned(),
            subdomain: "deis".to_owned(),
            ..Table::default()
        };
        let (mut controller_host, mut controller_port) = (None, None);
        for (key, value) in kvs {
            match Key::parse(key) {
                Ok(Key::App(app)) => {
                    table.apps.entry(app.to_string()).or_default();
                }
                Ok(Key::Route(container)) => {
                    table
                        .apps
                        .entry(container.app.to_string())
                        .or_default()
                        .push(value.clone());
                }
                Ok(Key::Domain(domain)) => {
                    table
                        .domains
                        .insert(domain.as_str().to_ascii_lowercase(), value.clone());
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
                    _ => {}
                },
                _ => {}
            }
        }
        if let (Some(host), Some(port)) = (controller_host, controller_port) {
            table.controller = vec![format!("{host}:{port}")];
        }
        table
    }

    /// Where a request for `host` (without port, lower-case) goes: a custom domain, the
    /// controller's `{subdomain}.{anything}`, or an app's `{app}.{anything}` (as Deis matched the
    /// first label, so any parent domain works).
    pub(crate) fn route(&self, host: &str) -> Decision<'_> {
        if let Some(app) = self.domains.get(host)
            && let Some(backends) = self.apps.get(app)
        {
            return Decision::Backends { app, backends };
        }
        let Some((first, rest)) = host.split_once('.') else {
            return Decision::Unknown;
        };
        if rest.is_empty() {
            return Decision::Unknown;
        }
        if first == self.subdomain {
            return Decision::Backends {
                app: "deis",
                backends: &self.controller,
            };
        }
        match self.apps.get_key_value(first) {
            Some((app, backends)) => Decision::Backends { app, backends },
            None => Decision::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Table {
        let kvs: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Table::build(&kvs, "local.test")
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
        assert_eq!(
            t.route("go.example.com"),
            Decision::Backends {
                app: "go",
                backends: &go
            }
        );
        assert_eq!(
            t.route("go.other.net"),
            Decision::Backends {
                app: "go",
                backends: &go
            },
            "any parent domain"
        );
        assert_eq!(
            t.route("www.example.org"),
            Decision::Backends {
                app: "go",
                backends: &go
            }
        );
        assert_eq!(
            t.route("idle.example.com"),
            Decision::Backends {
                app: "idle",
                backends: &[]
            }
        );
        assert_eq!(t.route("nope.example.com"), Decision::Unknown);
        assert_eq!(t.route("localhost"), Decision::Unknown);
        let controller = vec!["10.0.0.1:8000".to_owned()];
        assert_eq!(
            t.route("deis.example.com"),
            Decision::Backends {
                app: "deis",
                backends: &controller
            }
        );
    }
}
