//! The Docker Engine backend: app containers on the local engine (the single-host mode) or on
//! a list of engines, each new container placed on the engine running the fewest of its app.
//!
//! `converge` starts the containers the release needs, waits until each web container answers
//! (its `HEALTHCHECK_URL`, or its port accepting connections), publishes their routes, then
//! withdraws the routes of the containers it replaces and stops them. If a new container never
//! becomes healthy, the new ones are removed and the old ones keep serving.

pub(crate) mod container;
mod supervise;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use deis_store::ConfigStore;
use deis_types::{AppName, ContainerName};
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::health;
use crate::routes::Routes;
use crate::spec::{ContainerStatus, Desired, ReleaseSpec, Scheduler, SchedulerError};
use container::{Engine, Existing};

/// One engine of the Docker backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEndpoint {
    /// `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2375`, or empty for the local default
    /// (`DOCKER_HOST` or the default socket).
    pub url: String,
    /// The host name or IP routes to this engine's containers point at.
    pub advertise_host: String,
    /// The address this engine binds host ports on.
    pub bind_ip: String,
}

impl std::str::FromStr for EngineEndpoint {
    type Err = String;

    /// `ADVERTISE_HOST=URL` (`10.0.0.5=tcp://10.0.0.5:2375`): host ports are bound on all
    /// addresses and routes point at the advertised host.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, url) = s
            .split_once('=')
            .filter(|(h, u)| !h.is_empty() && !u.is_empty())
            .ok_or_else(|| format!("{s:?} is not an engine; write ADVERTISE_HOST=URL, e.g. 10.0.0.5=tcp://10.0.0.5:2375"))?;
        Ok(EngineEndpoint {
            url: url.to_owned(),
            advertise_host: host.to_owned(),
            bind_ip: "0.0.0.0".to_owned(),
        })
    }
}

/// How the Docker backend runs containers.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The engines to run containers on; empty means the local engine with `bind_ip` and
    /// `advertise_host` below. The Swarm backend uses the first as its manager.
    pub engines: Vec<EngineEndpoint>,
    /// The address host ports are bound on (`127.0.0.1` on one host, `0.0.0.0` to be reachable).
    pub bind_ip: String,
    /// The host name or IP routes point at.
    pub advertise_host: String,
    /// How long a new container may take to become healthy.
    pub health_timeout: Duration,
    /// How long a stopped container may take to exit before it is killed.
    pub stop_timeout: Duration,
    /// How long to wait between withdrawing old routes and stopping their containers, so that
    /// routers stop sending them requests and finish the ones in flight.
    pub drain: Duration,
    /// How long a one-off `run` may take.
    pub run_timeout: Duration,
    /// How long a finished one-off container is kept before it is removed, so that the log
    /// shipper reads its last lines (a removed container's log is gone with it).
    pub run_keep: Duration,
    /// Labels added to every container (tests label theirs for clean-up).
    pub extra_labels: HashMap<String, String>,
    /// The Docker network app and one-off containers join (see `AppNetwork`; on a Swarm,
    /// services' tasks too, a `SwarmAppNetwork`); the engine's default bridge when absent.
    pub network: Option<String>,
    /// Memory, process and log limits of every app and one-off container.
    pub limits: crate::spec::ContainerLimits,
    /// Registries (`host:port`) besides the one published at `/deis/registry/{host,port}` whose
    /// images are pulled with the app's credential (each host's registry proxy in a cluster);
    /// images from any other registry are pulled anonymously.
    pub registries: Vec<String>,
    /// The router's ports: when set, `network` and its firewall (see `AppNetwork`) are made on
    /// the local engine when the scheduler connects, so that they come back with a controller
    /// Docker restarted after a reboot (the kernel's rules did not survive it).
    pub firewall_ports: Option<Vec<u16>>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            engines: Vec::new(),
            bind_ip: "127.0.0.1".into(),
            advertise_host: "127.0.0.1".into(),
            health_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            run_timeout: Duration::from_secs(20 * 60),
            run_keep: Duration::from_secs(30),
            extra_labels: HashMap::new(),
            limits: crate::spec::ContainerLimits::default(),
            network: None,
            registries: Vec::new(),
            firewall_ports: None,
        }
    }
}

/// The Docker backend.
pub struct DockerScheduler {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    engines: Vec<Engine>,
    routes: Routes,
    tasks: crate::tasks::Tasks,
    pulls: crate::pull::Pulls,
    config: DockerConfig,
    book: Mutex<supervise::Book>,
    /// Per app, the previous release's containers being drained and stopped after a deploy
    /// switched traffic away from them. The next change to the app waits for it first.
    retiring: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// A Docker API error as a scheduler error.
pub(crate) fn docker_error(what: &str, e: bollard::errors::Error) -> SchedulerError {
    SchedulerError::docker(what, e)
}

impl DockerScheduler {
    /// Connects to the configured engines (by default the local one).
    pub async fn connect(
        store: Arc<dyn ConfigStore>,
        config: DockerConfig,
        shutdown: CancellationToken,
    ) -> Result<DockerScheduler, SchedulerError> {
        let endpoints = if config.engines.is_empty() {
            vec![EngineEndpoint {
                url: String::new(),
                advertise_host: config.advertise_host.clone(),
                bind_ip: config.bind_ip.clone(),
            }]
        } else {
            config.engines.clone()
        };
        let tasks = crate::tasks::Tasks::new(shutdown.clone());
        let pulls = crate::pull::Pulls::new(store.clone(), config.registries.clone());
        let mut engines = Vec::new();
        for (index, endpoint) in endpoints.into_iter().enumerate() {
            let docker = connect_engine(&endpoint.url).await?;
            if let (Some(ports), Some(name), true) = (
                &config.firewall_ports,
                &config.network,
                endpoint.url.is_empty(),
            ) {
                crate::AppNetwork::new(name, &crate::bridge_name(name), ports)
                    .set_up(&docker, &config.extra_labels)
                    .await
                    .map_err(SchedulerError::Isolation)?;
                tracing::info!(network = %name, ports = ?ports, "App containers are isolated");
            }
            engines.push(Engine::new(
                docker,
                config.clone(),
                index,
                endpoint,
                tasks.clone(),
                pulls.clone(),
            ));
        }
        let inner = Arc::new(Inner {
            engines,
            routes: Routes::new(store, tasks.clone()),
            tasks: tasks.clone(),
            pulls,
            config,
            book: Mutex::new(supervise::Book::default()),
            retiring: Mutex::default(),
        });
        for engine in 0..inner.engines.len() {
            tasks.spawn(supervise::supervise(
                inner.clone(),
                engine,
                shutdown.clone(),
            ));
        }
        Ok(DockerScheduler { inner })
    }
}

/// A client for one engine URL (empty: the local default).
async fn connect_engine(url: &str) -> Result<Docker, SchedulerError> {
    Ok(deis_docker::connect(url).await?)
}

impl Inner {
    pub(crate) fn engine(&self, index: usize) -> &Engine {
        &self.engines[index.min(self.engines.len() - 1)]
    }

    /// Every container of the app on every engine.
    async fn list(&self, app: &AppName) -> Result<Vec<Existing>, SchedulerError> {
        let lists = join_all(self.engines.iter().map(|e| e.list(app))).await;
        Ok(lists
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The engine that has the container `name`, if any.
    async fn find(&self, name: &str) -> Option<&Engine> {
        for engine in &self.engines {
            if engine.state(name).await != crate::spec::ContainerState::Destroyed {
                return Some(engine);
            }
        }
        None
    }

    /// Starts one container (creating it on `engine` when `existing` is `None`) and waits
    /// until it is healthy; returns its route if it serves traffic.
    async fn start_healthy(
        &self,
        name: &ContainerName,
        release: &ReleaseSpec,
        existing: Option<&Existing>,
        engine: usize,
    ) -> Result<Option<String>, SchedulerError> {
        let (engine, id) = match existing {
            Some(e) => (self.engine(e.engine), e.id.clone()),
            None => (
                self.engine(engine),
                self.engine(engine).create(name, release).await?,
            ),
        };
        self.start_and_check(engine, name, &id).await
    }

    /// Starts an existing container and waits until it is healthy; returns its route.
    pub(crate) async fn start_and_check(
        &self,
        engine: &Engine,
        name: &ContainerName,
        id: &str,
    ) -> Result<Option<String>, SchedulerError> {
        engine.start(id).await?;
        let env = engine.env(id).await?;
        let port = engine.host_port(id).await?;
        let Some(port) = port else {
            // A stopped container has no published port: one that should serve but already
            // exited failed, it is not a container without traffic.
            if serves_traffic(name) && !engine.is_running(id).await {
                return Err(SchedulerError::ExitedAtStart {
                    container: name.to_string(),
                });
            }
            return Ok(None);
        };
        // On the local engine the app is probed on its bridge address (the host port is
        // answered by Docker's proxy before the app listens); elsewhere through the host port,
        // where an HTTP answer is required.
        let inner = if engine.is_local() {
            engine.inner_addr(id).await?
        } else {
            None
        };
        let target = match inner {
            Some((host, inner_port)) => health::Target::from_config(host, inner_port, false, |k| {
                env.get(k).map(String::as_str)
            }),
            None => health::Target::from_config(engine.probe_host(), port, true, |k| {
                env.get(k).map(String::as_str)
            }),
        };
        health::wait(&target, self.config.health_timeout, || {
            engine.is_running(id)
        })
        .await
        .map_err(|source| SchedulerError::Unhealthy {
            container: name.to_string(),
            source,
        })?;
        Ok(Some(engine.route(port)))
    }
}

/// Whether containers of this process type receive traffic.
pub(crate) fn serves_traffic(name: &ContainerName) -> bool {
    deis_docker::labels::takes_traffic(name.process_type.as_str())
}

#[async_trait::async_trait]
impl Scheduler for DockerScheduler {
    async fn converge(&self, desired: &Desired) -> Result<(), SchedulerError> {
        self.inner.converge(desired).await
    }

    async fn destroy(&self, app: &AppName) -> Result<(), SchedulerError> {
        self.inner.destroy(app).await
    }

    async fn run(
        &self,
        app: &AppName,
        release: &ReleaseSpec,
        command: &str,
    ) -> Result<(i32, String), SchedulerError> {
        self.inner.engine(0).run_once(app, release, command).await
    }

    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError> {
        self.inner.restart(containers).await
    }

    async fn drain(&self) {
        self.inner.tasks.drain().await;
    }

    fn report_to(&self, progress: crate::spec::Progress) {
        self.inner.pulls.report_to(progress);
    }

    async fn states(&self, containers: &[ContainerName]) -> Vec<ContainerStatus> {
        let names: Vec<String> = containers.iter().map(|n| n.to_string()).collect();
        let states = join_all(names.iter().map(|n| async {
            match self.inner.find(n).await {
                Some(engine) => engine.state(n).await,
                None => crate::spec::ContainerState::Destroyed,
            }
        }))
        .await;
        let book = supervise::lock(&self.inner.book);
        names
            .iter()
            .zip(states)
            .map(|(n, state)| ContainerStatus {
                state,
                restarts: book.restarts(n),
            })
            .collect()
    }
}

impl Inner {
    /// Waits until the app's previous release, if being retired, is gone.
    async fn settle(&self, app: &AppName) {
        let pending = self
            .retiring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(app.as_str());
        if let Some(pending) = pending {
            let _ = pending.await;
        }
    }

    /// Drains and stops containers no release wants any more (their routes are withdrawn).
    async fn retire(&self, old: Vec<(String, String, usize)>) {
        tokio::time::sleep(self.config.drain).await;
        for (name, _, _) in &old {
            supervise::lock(&self.book).stopping(name, true);
        }
        let stopped = join_all(
            old.iter()
                .map(|(_, id, engine)| self.engine(*engine).stop_and_remove(id)),
        )
        .await;
        for (name, _, _) in &old {
            supervise::lock(&self.book).stopping(name, false);
        }
        for (result, (name, _, _)) in stopped.into_iter().zip(&old) {
            if let Err(e) = result {
                tracing::warn!(container = %name, error = %e, "Stopping an old container failed; reconciliation will retry");
            }
        }
    }

    /// Removes one-off containers that a crash left behind: created longer ago than a run may
    /// take plus the time a finished one is kept, and no longer running.
    async fn remove_finished_runs(&self, listed: &[Existing]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let age = i64::try_from((self.config.run_timeout + self.config.run_keep).as_secs())
            .unwrap_or(i64::MAX);
        for e in listed {
            if e.is_run && !e.running && e.created.saturating_add(age) < now {
                let _ = self.engine(e.engine).remove(&e.id).await;
            }
        }
    }

    async fn converge(self: &Arc<Self>, desired: &Desired) -> Result<(), SchedulerError> {
        self.settle(&desired.app).await;
        let listed = self.list(&desired.app).await?;
        self.remove_finished_runs(&listed).await;
        let existing: BTreeMap<String, Existing> = listed
            .into_iter()
            .filter(|e| !e.is_run)
            .map(|e| (e.name.clone(), e))
            .collect();
        let wanted: Vec<&ContainerName> = desired.containers.iter().collect();
        let to_start: Vec<&ContainerName> = wanted
            .iter()
            .copied()
            .filter(|n| !existing.get(&n.to_string()).is_some_and(|e| e.running))
            .collect();
        supervise::lock(&self.book)
            .add_desired(desired.app.as_str(), to_start.iter().map(|n| n.to_string()));
        // New containers go to the engine that runs the fewest of the app's wanted ones.
        let mut load = vec![0usize; self.engines.len()];
        for e in existing
            .values()
            .filter(|e| e.running && wanted.iter().any(|n| n.to_string() == e.name))
        {
            if let Some(l) = load.get_mut(e.engine) {
                *l += 1;
            }
        }
        let mut placement: HashMap<String, usize> = HashMap::new();
        for n in &to_start {
            let name = n.to_string();
            let engine = match existing.get(&name) {
                Some(e) => e.engine,
                None => {
                    let (best, _) = load
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, l)| **l)
                        .unwrap_or((0, &0));
                    load[best] += 1;
                    best
                }
            };
            placement.insert(name, engine);
        }
        let started = join_all(to_start.iter().map(|n| {
            let name = n.to_string();
            self.start_healthy(
                n,
                &desired.release,
                existing.get(&name),
                placement.get(&name).copied().unwrap_or(0),
            )
        }))
        .await;
        let started: Vec<Option<String>> = match started.into_iter().collect() {
            Ok(routes) => routes,
            Err(failure) => {
                // Take back what this attempt started; the old containers keep serving.
                let fresh: Vec<&ContainerName> = to_start
                    .iter()
                    .copied()
                    .filter(|n| !existing.contains_key(&n.to_string()))
                    .collect();
                let names: Vec<String> = fresh.iter().map(|n| n.to_string()).collect();
                {
                    let mut book = supervise::lock(&self.book);
                    names.iter().for_each(|n| book.stopping(n, true));
                }
                join_all(names.iter().map(|n| {
                    self.engine(placement.get(n).copied().unwrap_or(0))
                        .remove(n)
                }))
                .await;
                {
                    let mut book = supervise::lock(&self.book);
                    book.remove_desired(desired.app.as_str(), &names);
                    names.iter().for_each(|n| book.stopping(n, false));
                }
                return Err(failure.aborted());
            }
        };
        for (name, route) in to_start.iter().zip(started) {
            {
                let mut book = supervise::lock(&self.book);
                book.mark_started(&name.to_string());
                if serves_traffic(name) {
                    book.mark_healthy(&name.to_string());
                }
            }
            if let Some(route) = route
                && serves_traffic(name)
            {
                self.routes.publish(name, &route).await?;
            }
        }
        let wanted_set: HashSet<String> = wanted.iter().map(|n| n.to_string()).collect();
        supervise::lock(&self.book).set_desired(desired.app.as_str(), wanted_set);
        // Containers that were kept but lost their route (a restarted controller) get it back.
        for name in wanted
            .iter()
            .filter(|n| serves_traffic(n) && !to_start.contains(n))
        {
            if let Some(e) = existing.get(&name.to_string())
                && let Some(port) = e.host_port
            {
                self.routes
                    .publish(name, &self.engine(e.engine).route(port))
                    .await?;
            }
        }
        let wanted_names: Vec<String> = wanted.iter().map(|n| n.to_string()).collect();
        let old: Vec<&Existing> = existing
            .values()
            .filter(|e| !wanted_names.contains(&e.name))
            .collect();
        for e in &old {
            if let Ok(name) = e.name.parse::<ContainerName>() {
                self.routes.withdraw(&name).await?;
            }
        }
        // Traffic has moved to the new release: the old one drains and stops in the background,
        // so a deploy is done when the new release serves.
        if !old.is_empty() {
            let old: Vec<(String, String, usize)> = old
                .iter()
                .map(|e| (e.name.clone(), e.id.clone(), e.engine))
                .collect();
            let inner = self.clone();
            let pending = self
                .tasks
                .tracker
                .spawn(async move { inner.retire(old).await });
            self.retiring
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(desired.app.to_string(), pending);
        }
        Ok(())
    }

    async fn destroy(&self, app: &AppName) -> Result<(), SchedulerError> {
        self.settle(app).await;
        supervise::lock(&self.book).forget_app(app.as_str());
        self.routes.withdraw_app(app).await?;
        let all = self.list(app).await?;
        let removed = join_all(all.iter().map(|e| self.engine(e.engine).remove(&e.id))).await;
        removed.into_iter().collect::<Result<Vec<_>, _>>()?;
        join_all(self.engines.iter().map(|e| e.remove_app_images(app))).await;
        Ok(())
    }

    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError> {
        for name in containers {
            let text = name.to_string();
            if serves_traffic(name) {
                self.routes.withdraw(name).await?;
            }
            let Some(engine) = self.find(&text).await else {
                continue;
            };
            supervise::lock(&self.book).stopping(&text, true);
            let restarted = engine.restart(&text).await;
            supervise::lock(&self.book).stopping(&text, false);
            let Some(port) = restarted? else {
                continue;
            };
            if serves_traffic(name) {
                self.routes.publish(name, &engine.route(port)).await?;
            }
        }
        Ok(())
    }
}
