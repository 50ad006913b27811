//! The controller: the platform's brain. It serves the Deis v1 REST API (API 1.7) that the
//! unmodified Deis v1.13 `deis` client speaks, keeps users, apps, configs, builds, releases and
//! desired containers in its database (SQLite by default, PostgreSQL with `DATABASE_URL`), mirrors
//! what the router and builder need into the config store, and asks a [`deis_scheduler::Scheduler`]
//! to run releases.
//!
//! It is not the scheduler's backends (Docker, Swarm), the router, or the logger: it talks to
//! them through the scheduler interface, the config store and the logger's gRPC API.
//!
//! The same binary is the host agent of a Swarm cluster (`deis-controller host-agent`, see
//! [`run_host_agent`]): on every host, it keeps app containers off the platform's ports.

pub(crate) mod api;
mod config;
mod dashboard;
mod db;
pub(crate) mod domain;
mod events;
mod grpc;
mod host_agent;
mod images;
mod leader;
mod login_limit;
mod logs;
mod mirror;
mod passwords;
#[cfg(test)]
mod props;
mod reconcile;
mod report;
mod state;
mod time;

use std::sync::Arc;

use deis_runtime::{BindError, HttpComponent, bind, serve_component};
use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, Txn};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{AppLimits, Config, SchedulerKind};
pub use db::DbError;
pub use grpc::BUILDER_AUTH;
pub use host_agent::{HostAgentConfig, HostAgentError, run_host_agent};

/// The sockets the controller serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    /// The REST API.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub async fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Listeners {
            http: bind(config.listen).await?,
        })
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// The configured scheduler cannot be used.
    #[error(
        "{0}; start the Docker engine (for swarm: docker swarm init), or run with --scheduler none to only record desired state"
    )]
    Scheduler(#[source] deis_scheduler::SchedulerError),
    /// Serving the API failed.
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Creates the controller's secrets in the store when they are missing (first start).
async fn ensure_defaults(store: &Arc<dyn ConfigStore>) {
    let key = Key::setting(Component::Controller, "builderKey").map(|k| k.path());
    if let Ok(path) = key
        && let Err(e) = store.txn(Txn::create(path, passwords::new_token())).await
    {
        tracing::warn!(error = %e, "Could not create the builder key");
    }
}

/// The scheduler the configuration asks for.
async fn scheduler(
    config: &Config,
    engines: Vec<deis_scheduler::EngineEndpoint>,
    store: &Arc<dyn ConfigStore>,
    shutdown: &CancellationToken,
) -> Result<Arc<dyn deis_scheduler::Scheduler>, Error> {
    let advertise_host = config
        .advertise_host
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    // Routes point at the advertised host, so app ports must be bound where it is: on that
    // loopback address, or on every address for one other hosts reach.
    let bind_ip = match advertise_host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => ip.to_string(),
        _ => "0.0.0.0".to_owned(),
    };
    let docker = deis_scheduler::DockerConfig {
        engines,
        extra_labels: config.container_labels.clone(),
        advertise_host,
        bind_ip,
        limits: config.limits.containers(),
        network: config.app_network.clone(),
        firewall_ports: (!config.app_firewall_ports.is_empty())
            .then(|| config.app_firewall_ports.clone()),
        registries: config.registries.clone(),
        ..Default::default()
    };
    Ok(match config.scheduler {
        SchedulerKind::None => Arc::new(deis_scheduler::RecordOnlyScheduler),
        SchedulerKind::Docker => Arc::new(
            deis_scheduler::DockerScheduler::connect(store.clone(), docker, shutdown.clone())
                .await
                .map_err(Error::Scheduler)?,
        ),
        SchedulerKind::Swarm => Arc::new(
            deis_scheduler::SwarmScheduler::connect(store.clone(), docker, shutdown.clone())
                .await
                .map_err(Error::Scheduler)?,
        ),
    })
}

/// The engine `deis pull` copies images with: the first of the scheduler's engines, else the
/// local one.
fn image_engine(config: &Config) -> String {
    config
        .docker_engines
        .first()
        .and_then(|e| e.parse::<deis_scheduler::EngineEndpoint>().ok())
        .map(|e| e.url)
        .unwrap_or_default()
}

/// Runs the controller until `shutdown` is cancelled, then drains and returns.
pub async fn run(
    config: Config,
    store: Arc<dyn ConfigStore>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // A bad engine list is refused before anything is started or opened.
    let engines = config
        .docker_engines
        .iter()
        .map(|e| e.parse::<deis_scheduler::EngineEndpoint>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Config)?;
    // One controller leads at a time; the others stand by on their listener (see `leader`).
    let me = match (&config.advertise_host, listeners.http.local_addr()) {
        (Some(host), Ok(addr)) => format!("{host}:{}", addr.port()),
        (None, Ok(addr)) => addr.to_string(),
        (_, Err(_)) => String::new(),
    };
    let Some(lease) = leader::campaign(&store, &listeners.http, &me, &shutdown).await else {
        return Ok(());
    };
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(leader::hold(store.clone(), lease, shutdown.clone()));
    // The scheduler first: it takes over the routes the last leader published before their
    // lease lapses, even while the database is out of reach (the apps keep serving).
    let scheduler = scheduler(&config, engines, &store, &shutdown).await?;
    let opened = leader::refuse_until(
        &listeners.http,
        leader::DATABASE_AWAY,
        &shutdown,
        db::DbError::is_unreachable,
        || db::Db::open(config.database_url.as_deref(), &config.data_dir),
    )
    .await;
    let Some(db) = opened.transpose()? else {
        tasks.close();
        tasks.wait().await;
        scheduler.drain().await;
        return Ok(());
    };
    ensure_defaults(&store).await;
    let backend = scheduler.clone();
    let state = state::AppState {
        db: db.clone(),
        mirror: mirror::Mirror::new(store.clone()),
        scheduler,
        images: Arc::new(images::Images::new(
            image_engine(&config),
            config.pull_timeout,
            config.scheduler != SchedulerKind::None,
        )),
        locks: Arc::default(),
        default_domain: config.platform_domain.clone(),
        events: events::Events::start(store.clone(), shutdown.clone(), &tasks),
        login_limits: Arc::default(),
        limits: config.limits.clone(),
    };
    // What the scheduler does that a user should see (an image pulled onto a host) goes to the
    // app's events, as the controller's own lines.
    let events = state.events.clone();
    backend.report_to(deis_scheduler::Progress::new(move |app, line| {
        events.emit(app.as_str(), line);
    }));
    if let Err(e) = state.mirror.republish(&db).await {
        tracing::warn!(error = %e, "Republishing the database to the config store failed");
    }
    let spec = HttpComponent {
        component: Component::Controller,
        publish: true,
        advertise_host: config.advertise_host.clone(),
        drain: config.drain,
        own_health: true,
    };
    tasks.spawn(reconcile::run(
        state.clone(),
        config.reconcile_interval,
        shutdown.clone(),
    ));
    // The dashboard answers its own paths and passes everything else to the API.
    let rest = api::router(state.clone());
    let served = serve_component(
        spec,
        listeners.http,
        dashboard::router(state, rest),
        store,
        shutdown.clone(),
    )
    .await
    .map_err(Error::Serve);
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    // The backend's own tasks (supervisors, lease keep-alive, clean-ups) end with `shutdown`.
    backend.drain().await;
    served
}
