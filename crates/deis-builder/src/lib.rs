//! The builder: an SSH server (russh) that accepts `git push` of an app from users the
//! controller knows and allows, receives it with the real `git-receive-pack` into a bare
//! repository per app, builds the pushed commit (its `Dockerfile` through the Docker API, or the
//! Heroku buildpack API in a build container on the stack image), pushes the image to the registry
//! when there is one, and has the controller release and deploy it, streaming progress to the
//! client all along. A push succeeds only when the new release serves.
//!
//! It is not a registry and does not run app containers (the scheduler does).

mod build;
mod command;
mod config;
mod controller;
mod forget;
mod hostkey;
mod output;
mod pipe;
#[cfg(test)]
mod props;
mod push;
mod repo;
mod ssh;

use std::sync::Arc;
use std::time::Duration;

use deis_runtime::{BindError, Endpoint, HttpComponent, bind, publish_endpoint, serve_component};
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use hostkey::HostKeyError;

/// The sockets the builder serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// SSH, for `git push`.
    pub ssh: TcpListener,
    /// Health.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            ssh: bind(config.ssh_listen).await?,
            http: bind(config.http_listen).await?,
        })
    }
}

/// Why the builder stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving a listener failed.
    #[error("serving failed")]
    Serve(#[source] std::io::Error),
    /// No SSH host key.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The Docker engine cannot be used.
    #[error("{0}; start it or set DOCKER_HOST")]
    Docker(#[from] deis_docker::DockerError),
}

/// Runs the builder until `shutdown` is cancelled, then lets pushes in progress finish within
/// the drain period.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let docker = deis_docker::connect("").await?;
    let host_key = hostkey::load_or_create(&store, &config.data_dir).await?;
    let ssh_addr = listeners.ssh.local_addr().map_err(Error::Serve)?;
    let config = Arc::new(config);
    let ssh_config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(config.build_timeout + Duration::from_secs(60)),
        nodelay: true,
        ..Default::default()
    });
    let controller = controller::Controller::new(store.clone(), config.controller_url.clone());
    // What runs beside the servers until they stop: forgetting destroyed apps, the endpoint.
    let background = TaskTracker::new();
    let stopping = shutdown.child_token();
    background.spawn(forget::run(
        store.clone(),
        docker.clone(),
        config.data_dir.join("repos"),
        stopping.clone(),
    ));
    background.spawn(forget::sweep(
        controller.clone(),
        docker.clone(),
        config.data_dir.join("repos"),
        stopping.clone(),
    ));
    let builds = build::Builds {
        config: config.clone(),
        docker,
        store: store.clone(),
        controller,
        tasks: TaskTracker::new(),
    };
    builds.clean_up().await;
    let shared = Arc::new(push::Shared::new(builds, ssh_addr));
    background.spawn(publish_endpoint(
        store.clone(),
        Component::Builder,
        Endpoint::for_listener(ssh_addr, config.advertise_host.as_deref()),
        stopping.clone(),
    ));
    tracing::info!(listen.addr = %ssh_addr, "SSH listening for git push");
    let spec = HttpComponent {
        component: Component::Builder,
        publish: false,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: false,
    };
    let (ssh, http) = tokio::join!(
        ssh::serve(
            listeners.ssh,
            ssh_config,
            shared,
            shutdown.clone(),
            config.drain
        ),
        serve_component(
            spec,
            listeners.http,
            axum::Router::new(),
            store,
            shutdown.clone()
        ),
    );
    stopping.cancel();
    background.close();
    background.wait().await;
    ssh.and(http).map_err(Error::Serve)
}
