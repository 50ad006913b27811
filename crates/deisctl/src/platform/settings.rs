//! The settings a platform's containers are created with, read from the config store when they
//! are installed (`deisctl config <component> set ...` before `install`).

use deis_store::ConfigStore;
use deis_store::keys::{self, Key};

use super::component::Component;
use crate::Error;
use crate::config::{store_failed, value as get};

/// A listening port and the key that changes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port {
    pub(crate) component: Component,
    pub(crate) key: &'static str,
    pub(crate) number: u16,
    pub(crate) udp: bool,
}

/// Every port setting: `(component, key under /deis/<component>/, default, udp too)`.
const PORTS: [(Component, &str, u16, bool); 14] = [
    (Component::Cache, "listenPort", 6379, false),
    (Component::Logger, "listenPort", 8088, false),
    (Component::Logger, "syslogPort", 514, true),
    (Component::Database, "listenPort", 5432, false),
    (Component::Registry, "listenPort", 5001, false),
    (Component::Backup, "registryPort", 5002, false),
    (Component::Backup, "cachePort", 6380, false),
    (Component::RegistryProxy, "listenPort", 5000, false),
    (Component::Controller, "listenPort", 8000, false),
    (Component::Builder, "listenPort", 2222, false),
    (Component::Builder, "healthPort", 2224, false),
    (Component::Router, "listenPort", 80, false),
    (Component::Router, "httpsListenPort", 443, false),
    (Component::Router, "adminListenPort", 9090, false),
];

/// What deisctl reads before creating containers.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The address components listen on (`/deis/platform/bindHost`, default every address).
    pub(crate) bind_host: String,
    /// How components reach each other and how health checks reach them: the bind address, or
    /// 127.0.0.1 when that is every address.
    pub(crate) local_host: String,
    pub(crate) domain: String,
    pub(crate) ports: Vec<Port>,
    /// `/deis/database/password`, made up on the first install.
    pub(crate) database_password: String,
    /// `/deis/cache/password`, made up on the first install.
    pub(crate) cache_password: String,
    /// `/deis/database/url`: an external PostgreSQL instead of the platform's.
    pub(crate) database_url: Option<String>,
    /// `/deis/builder/stackImage`, `/deis/builder/runnerImage`.
    pub(crate) stack_image: Option<String>,
    pub(crate) runner_image: Option<String>,
    /// `/deis/<component>/image` overrides.
    pub(crate) images: Vec<(Component, String)>,
    /// The controller's limits for apps (`/deis/controller/{defaultMemory,maxMemory,maxCpu,
    /// pidsLimit,maxScale}`), as the environment variables its flags read.
    pub(crate) app_limits: Vec<(&'static str, String)>,
}

/// The controller settings that limit apps, and the environment variable each becomes.
const APP_LIMITS: [(&str, &str); 5] = [
    ("defaultMemory", "DEIS_DEFAULT_MEMORY"),
    ("maxMemory", "DEIS_MAX_MEMORY"),
    ("maxCpu", "DEIS_MAX_CPU"),
    ("pidsLimit", "DEIS_PIDS_LIMIT"),
    ("maxScale", "DEIS_MAX_SCALE"),
];

impl Settings {
    pub(crate) fn port(&self, component: Component, key: &str) -> u16 {
        self.ports
            .iter()
            .find(|p| p.component == component && p.key == key)
            .map_or(0, |p| p.number)
    }

    /// `host:port` to listen on.
    pub(crate) fn listen(&self, component: Component, key: &str) -> String {
        format!("{}:{}", self.bind_host, self.port(component, key))
    }

    /// `host:port` to reach.
    pub(crate) fn local(&self, component: Component, key: &str) -> String {
        format!("{}:{}", self.local_host, self.port(component, key))
    }

    pub(crate) fn image(&self, component: Component, tag: &str) -> String {
        // The host agent is the controller's binary.
        let component = match component {
            Component::HostAgent => Component::Controller,
            other => other,
        };
        self.images
            .iter()
            .find(|(c, _)| *c == component)
            .map(|(_, image)| image.clone())
            .unwrap_or_else(|| format!("deis/{}:{tag}", component.image_name()))
    }
}

/// Where a component's settings are (`/deis/<component>/`).
fn store_component(component: Component) -> Result<keys::Component, Error> {
    component
        .name()
        .parse()
        .map_err(|e: keys::KeyError| Error::Message(e.to_string()))
}

/// `/deis/<component>/<name>`.
fn key(component: Component, name: &str) -> Result<Key, Error> {
    Key::setting(store_component(component)?, name).map_err(|e| Error::Message(e.to_string()))
}

/// Reads the settings, writing the ones a first install makes up (domain, database password).
pub(crate) async fn load(store: &dyn ConfigStore) -> Result<Settings, Error> {
    let bind_host = get(store, &Key::bind_host())
        .await?
        .unwrap_or_else(|| "0.0.0.0".to_owned());
    if bind_host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(Error::Message(format!(
            "{} is '{bind_host}', not an IPv4 address; deisctl config platform set bindHost=<ipv4>",
            Key::bind_host()
        )));
    }
    let local_host = match bind_host.as_str() {
        "0.0.0.0" => "127.0.0.1".to_owned(),
        other => other.to_owned(),
    };
    let domain = match get(store, &Key::platform_domain()).await? {
        Some(domain) => domain,
        None => {
            println!(
                "No platform domain set: apps answer on <app>.localhost. Set yours with: deisctl config platform set domain=<your-domain>"
            );
            store
                .put(&Key::platform_domain().path(), "localhost", None)
                .await
                .map_err(store_failed)?;
            "localhost".to_owned()
        }
    };
    let mut ports = Vec::with_capacity(PORTS.len());
    for (component, key, default, udp) in PORTS {
        let path = self::key(component, key)?;
        let number = match get(store, &path).await? {
            Some(value) => value
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    Error::Message(format!(
                        "{path} is '{value}', not a port; deisctl config {} set {key}=<1-65535>",
                        component.name()
                    ))
                })?,
            None => default,
        };
        ports.push(Port {
            component,
            key,
            number,
            udp,
        });
    }
    let database_password = made_up(store, &Key::database_password()).await?;
    let cache_password = made_up(store, &Key::cache_password()).await?;
    let mut images = Vec::new();
    for component in super::component::START_ORDER {
        // etcd has no settings: it holds them, and its image is always the platform's tag.
        if matches!(component, Component::Etcd | Component::HostAgent) {
            continue;
        }
        if let Some(image) = get(store, &Key::image(store_component(component)?)).await? {
            images.push((component, image));
        }
    }
    let mut app_limits = Vec::new();
    for (key, variable) in APP_LIMITS {
        if let Some(value) = get(store, &self::key(Component::Controller, key)?).await? {
            app_limits.push((variable, value));
        }
    }
    Ok(Settings {
        app_limits,
        bind_host,
        local_host,
        domain,
        ports,
        database_password,
        cache_password,
        database_url: get(store, &Key::database_url()).await?,
        stack_image: get(store, &Key::stack_image()).await?,
        runner_image: get(store, &Key::runner_image()).await?,
        images,
    })
}

/// The secret at `key`, made up and written there the first time.
async fn made_up(store: &dyn ConfigStore, key: &Key) -> Result<String, Error> {
    if let Some(secret) = get(store, key).await? {
        return Ok(secret);
    }
    let secret = uuid::Uuid::new_v4().simple().to_string();
    store
        .put(&key.path(), &secret, None)
        .await
        .map_err(store_failed)?;
    Ok(secret)
}
