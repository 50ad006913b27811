//! The whole platform in one process: controller, builder, router, logger and registry proxy
//! started together on one shared config store (in-process by default, etcd when configured).
//! This is the single-host mode; the cluster mode runs the same components as separate
//! processes from their own binaries.
//!
//! This crate only composes: it owns no component logic. If one component stops with an error,
//! the others are shut down and the error is returned.

use std::sync::Arc;

use deis_runtime::BindError;
use deis_store::{ConfigStore, StoreConfig, StoreError};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The configuration of every component, plus the store they share.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The shared config store.
    pub store: StoreConfig,
    /// The controller.
    pub controller: deis_controller::Config,
    /// The builder.
    pub builder: deis_builder::Config,
    /// The router.
    pub router: deis_router::Config,
    /// The logger.
    pub logger: deis_logger::Config,
    /// The registry proxy.
    pub registry_proxy: deis_registry_proxy::Config,
    /// A registry (`http://host:port`, CNCF distribution) this host keeps its images in: the
    /// registry proxy fronts it (it becomes `registry_proxy.upstream`) and the builder pushes
    /// to the proxy (`builder.registry` becomes the proxy's address). Absent, built images
    /// stay on the local engine.
    pub registry_upstream: Option<String>,
    /// Runs app containers on Docker's default bridge, without the platform's own network and
    /// firewall (`deis_scheduler::AppNetwork`), which otherwise keep them from each other and
    /// from every port of this host but the router's.
    pub no_app_isolation: bool,
}

/// Every component's listeners, bound before [`run`].
pub struct Listeners {
    /// The controller's.
    pub controller: deis_controller::Listeners,
    /// The builder's.
    pub builder: deis_builder::Listeners,
    /// The router's.
    pub router: deis_router::Listeners,
    /// The logger's.
    pub logger: deis_logger::Listeners,
    /// The registry proxy's.
    pub registry_proxy: deis_registry_proxy::Listeners,
}

impl Listeners {
    /// Binds every component's addresses.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            controller: deis_controller::Listeners::bind(&config.controller).await?,
            builder: deis_builder::Listeners::bind(&config.builder).await?,
            router: deis_router::Listeners::bind(&config.router).await?,
            logger: deis_logger::Listeners::bind(&config.logger).await?,
            registry_proxy: deis_registry_proxy::Listeners::bind(&config.registry_proxy).await?,
        })
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("{path} is not a valid platform configuration: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        #[source]
        source: ParseError,
    },
}

impl Config {
    /// Reads a TOML configuration file; absent fields keep their defaults, unknown ones are
    /// rejected.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        toml::from_str(text).map_err(ParseError)
    }
}

/// TOML that is not a [`Config`]: the parser's message on one line, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.to_string().trim().replace('\n', " "))]
pub struct ParseError(#[source] toml::de::Error);

/// Why the platform stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config store could not be opened.
    #[error("opening the config store failed")]
    Store(#[from] StoreError),
    /// A component failed.
    #[error("the {component} stopped with an error")]
    Component {
        /// Which one.
        component: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    component: &'static str,
) -> impl FnOnce(E) -> Error {
    move |e| Error::Component {
        component,
        source: Box::new(e),
    }
}

/// Runs every component on `store` until `shutdown`, then drains them all and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // One component failing stops the others, so the process never runs half a platform.
    let stop = shutdown.child_token();
    let guard = |result: Result<(), Error>| {
        if result.is_err() {
            stop.cancel();
        }
        result
    };
    // The shipper (Deis's logspout) follows this host's app containers into the logger.
    let shipper = deis_logger::shipper::ShipperConfig {
        host: "local".to_owned(),
        logger_url: None,
        state_file: config.controller.data_dir.join("shipper.json"),
        labels: config.controller.container_labels.clone(),
    };
    let docker = deis_docker::connect("").await;
    let mut config = config;
    use_registry(&mut config, &listeners)?;
    let isolation = match &docker {
        Ok(docker) if !config.no_app_isolation => {
            isolate_apps(docker, &mut config, &listeners).await
        }
        _ => None,
    };
    let shipping = match &docker {
        Ok(docker) => Some(tokio::spawn(deis_logger::shipper::run(
            shipper,
            docker.clone(),
            store.clone(),
            stop.clone(),
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "No Docker engine: app output will not reach the logs");
            None
        }
    };
    let (controller, builder, router, logger, registry_proxy) = tokio::join!(
        async {
            guard(
                deis_controller::run(
                    config.controller,
                    store.clone(),
                    listeners.controller,
                    stop.clone(),
                )
                .await
                .map_err(failed("controller")),
            )
        },
        async {
            guard(
                deis_builder::run(
                    config.builder,
                    store.clone(),
                    listeners.builder,
                    stop.clone(),
                )
                .await
                .map_err(failed("builder")),
            )
        },
        async {
            guard(
                deis_router::run(config.router, store.clone(), listeners.router, stop.clone())
                    .await
                    .map_err(failed("router")),
            )
        },
        async {
            guard(
                deis_logger::run(config.logger, store.clone(), listeners.logger, stop.clone())
                    .await
                    .map_err(failed("logger")),
            )
        },
        async {
            guard(
                deis_registry_proxy::run(
                    config.registry_proxy,
                    store.clone(),
                    listeners.registry_proxy,
                    stop.clone(),
                )
                .await
                .map_err(failed("registry proxy")),
            )
        },
    );
    stop.cancel();
    if let Some(shipping) = shipping {
        let _ = shipping.await;
    }
    if let (Some(network), Ok(docker)) = (isolation, &docker) {
        network.tear_down(docker).await;
    }
    controller
        .and(builder)
        .and(router)
        .and(logger)
        .and(registry_proxy)
}

/// With a registry upstream, the registry proxy fronts it and the builder pushes to the proxy
/// on the address it listens on, the loopback address when it listens on all (the engine
/// speaks plain HTTP only to registries on loopback unless told otherwise).
fn use_registry(config: &mut Config, listeners: &Listeners) -> Result<(), Error> {
    let Some(upstream) = &config.registry_upstream else {
        // Nothing behind the proxy: it answers its health check but is not the platform's
        // registry, so images stay on the engine and `deis pull` uses the engine's.
        config.registry_proxy.publish = false;
        return Ok(());
    };
    let addr = listeners
        .registry_proxy
        .http
        .local_addr()
        .map_err(failed("registry proxy"))?;
    let proxy = deis_runtime::Endpoint::for_listener(addr, None);
    config.registry_proxy.upstream = upstream.clone();
    config.builder.registry = Some(format!("{}:{}", proxy.host, proxy.port));
    Ok(())
}

/// Puts app (and build) containers on a network of this platform's, firewalled so that they
/// reach this host only on the router's ports; `None` (and a warning) when that cannot be done.
async fn isolate_apps(
    docker: &bollard::Docker,
    config: &mut Config,
    listeners: &Listeners,
) -> Option<deis_scheduler::AppNetwork> {
    let labels = &config.controller.container_labels;
    let name = if labels.is_empty() {
        "deis-apps".to_owned()
    } else {
        let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        format!(
            "deis-apps-{}",
            deis_scheduler::bridge_name(&pairs.join(","))
        )
    };
    let ports: Vec<u16> = [
        listeners.router.http.local_addr().ok(),
        listeners
            .router
            .https
            .as_ref()
            .and_then(|l| l.local_addr().ok()),
    ]
    .into_iter()
    .flatten()
    .map(|a| a.port())
    .collect();
    let network =
        deis_scheduler::AppNetwork::new(&name, &deis_scheduler::bridge_name(&name), &ports);
    match network.set_up(docker, labels).await {
        Ok(()) => {
            tracing::info!(network = %name, bridge = %network.bridge, ports = ?ports, "App containers are isolated");
            config.controller.app_network = Some(name.clone());
            config.builder.network = Some(name);
            Some(network)
        }
        Err(e) => {
            tracing::warn!(error = %e, "App containers are NOT isolated from each other and from this host; run as root with iptables, or pass --no-app-isolation to silence this");
            None
        }
    }
}

/// Opens the configured store, binds every listener, says where everything is, and runs the
/// platform. `domain`, when given, becomes the platform domain (`/deis/platform/domain`).
pub async fn start(
    mut config: Config,
    domain: Option<String>,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = deis_store::connect(&config.store).await?;
    if let Some(domain) = domain {
        let key = deis_store::keys::Key::platform_domain().path();
        store.put(&key, &domain, None).await?;
        config.controller.platform_domain = domain.clone();
        config.router.platform_domain = domain;
    }
    let listeners = Listeners::bind(&config).await?;
    let domain = match store
        .get(&deis_store::keys::Key::platform_domain().path())
        .await
    {
        Ok(Some(kv)) => kv.value,
        _ => config.controller.platform_domain.clone(),
    };
    let banner = banner(&config, &listeners, &domain)?;
    tracing::info!("The platform is up");
    #[allow(clippy::print_stdout)] // the one thing the operator needs to read
    {
        println!("{banner}");
    }
    run(config, store, listeners, shutdown).await?;
    Ok(())
}

/// Where to reach the platform: the controller, the `git` remote and the apps.
pub fn banner(config: &Config, listeners: &Listeners, domain: &str) -> std::io::Result<String> {
    let host = |addr: std::net::SocketAddr| {
        if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        }
    };
    let controller = listeners.controller.http.local_addr()?;
    let router = listeners.router.http.local_addr()?;
    let ssh = listeners.builder.ssh.local_addr()?;
    let port = |p: u16, default: u16| {
        if p == default {
            String::new()
        } else {
            format!(":{p}")
        }
    };
    let router_port = port(router.port(), 80);
    let registry = match &config.registry_upstream {
        Some(upstream) => {
            let proxy = listeners.registry_proxy.http.local_addr()?;
            format!(
                "\n  registry:    images pushed through {}:{} to {upstream}",
                host(proxy),
                proxy.port()
            )
        }
        None => String::new(),
    };
    Ok(format!(
        "Deis is running on this host (data in {data}).\n\
         \x20 controller:  http://{ch}:{cp}  (or http://deis.{domain}{router_port} through the router)\n\
         \x20 get started: deis register http://{ch}:{cp}\n\
         \x20 git remote:  ssh://git@{sh}:{sp}/<app>.git\n\
         \x20 apps:        http://<app>.{domain}{router_port}  (without DNS for {domain}: curl -H 'Host: <app>.{domain}' http://{rh}{router_port}/){registry}",
        data = config.controller.data_dir.display(),
        ch = host(controller),
        cp = controller.port(),
        sh = host(ssh),
        sp = ssh.port(),
        rh = host(router),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listener on a free loopback port, and `extra` (top-level settings) on top.
    fn on_free_ports(extra: &str) -> Config {
        let any = "\"127.0.0.1:0\"";
        Config::parse(&format!(
            "{extra}\n[controller]\nlisten = {any}\n[builder]\nssh_listen = {any}\nhttp_listen = {any}\n\
             [router]\nlisten = {any}\nhttps_listen = {any}\nadmin_listen = {any}\n\
             [logger]\nlisten = {any}\nsyslog_udp = {any}\nsyslog_tcp = {any}\n\
             [registry_proxy]\nlisten = {any}\n"
        ))
        .expect("a valid configuration")
    }

    #[tokio::test]
    async fn with_a_registry_upstream_the_builder_pushes_through_the_proxy() {
        let mut config = on_free_ports("registry_upstream = \"http://10.0.0.9:5001\"");
        let listeners = Listeners::bind(&config).await.expect("bind");
        let proxy = listeners.registry_proxy.http.local_addr().expect("address");
        use_registry(&mut config, &listeners).expect("a registry");
        assert_eq!(config.registry_proxy.upstream, "http://10.0.0.9:5001");
        assert_eq!(config.builder.registry, Some(proxy.to_string()));
        let text = banner(&config, &listeners, "example.com").expect("banner");
        assert!(
            text.contains(&format!(
                "registry:    images pushed through {proxy} to http://10.0.0.9:5001"
            )),
            "{text}"
        );

        // Without one, images stay on the engine.
        let mut config = on_free_ports("");
        let listeners = Listeners::bind(&config).await.expect("bind");
        use_registry(&mut config, &listeners).expect("no registry");
        assert_eq!(config.builder.registry, None);
        assert!(
            !banner(&config, &listeners, "example.com")
                .expect("banner")
                .contains("registry:")
        );
    }
}
