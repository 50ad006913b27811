//! The Docker Engine backend: app containers on one engine (the single-host mode).
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

/// How the Docker backend runs containers.
#[derive(Debug, Clone)]
pub struct DockerConfig {
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
    /// Labels added to every container (tests label theirs for clean-up).
    pub extra_labels: HashMap<String, String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            bind_ip: "127.0.0.1".into(),
            advertise_host: "127.0.0.1".into(),
            health_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            run_timeout: Duration::from_secs(20 * 60),
            extra_labels: HashMap::new(),
        }
    }
}

/// The Docker backend.
pub struct DockerScheduler {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    engine: Engine,
    routes: Routes,
    config: DockerConfig,
    book: Mutex<supervise::Book>,
}

/// A Docker API error as a scheduler error.
pub(crate) fn docker_error(what: &str, e: bollard::errors::Error) -> SchedulerError {
    SchedulerError(format!("{what}: {e}"))
}

impl DockerScheduler {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket).
    pub async fn connect(
        store: Arc<dyn ConfigStore>,
        config: DockerConfig,
        shutdown: CancellationToken,
    ) -> Result<DockerScheduler, SchedulerError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| docker_error("cannot reach the Docker engine", e))?
            .negotiate_version()
            .await
            .map_err(|e| docker_error("cannot reach the Docker engine", e))?;
        let inner = Arc::new(Inner {
            engine: Engine::new(docker, config.clone()),
            routes: Routes::new(store, shutdown.clone()),
            config,
            book: Mutex::new(supervise::Book::default()),
        });
        tokio::spawn(supervise::supervise(inner.clone(), shutdown));
        Ok(DockerScheduler { inner })
    }
}

impl Inner {
    /// Starts one container (creating it when `existing` is `None`) and waits until it is
    /// healthy; returns its route if it serves traffic.
    async fn start_healthy(
        &self,
        name: &ContainerName,
        release: &ReleaseSpec,
        existing: Option<&Existing>,
    ) -> Result<Option<String>, SchedulerError> {
        let id = match existing {
            Some(e) => e.id.clone(),
            None => self.engine.create(name, release).await?,
        };
        self.start_and_check(name, &id).await
    }

    /// Starts an existing container and waits until it is healthy; returns its route.
    pub(crate) async fn start_and_check(
        &self,
        name: &ContainerName,
        id: &str,
    ) -> Result<Option<String>, SchedulerError> {
        self.engine.start(id).await?;
        let env = self.engine.env(id).await?;
        let port = self.engine.host_port(id).await?;
        let Some(port) = port else {
            return Ok(None);
        };
        let (probe_host, probe_port) = match self.engine.inner_addr(id).await? {
            Some(addr) => addr,
            None => (self.config.bind_ip_for_checks(), port),
        };
        let target = health::Target::from_config(probe_host, probe_port, false, |k| {
            env.get(k).map(String::as_str)
        });
        health::wait(&target, self.config.health_timeout, || {
            self.engine.is_running(id)
        })
        .await
        .map_err(|e| SchedulerError(format!("{name}: {e}")))?;
        Ok(Some(format!("{}:{port}", self.config.advertise_host)))
    }
}

impl DockerConfig {
    fn bind_ip_for_checks(&self) -> String {
        if self.bind_ip == "0.0.0.0" {
            "127.0.0.1".into()
        } else {
            self.bind_ip.clone()
        }
    }
}

/// Whether containers of this process type receive traffic.
pub(crate) fn serves_traffic(name: &ContainerName) -> bool {
    matches!(name.process_type.as_str(), "web" | "cmd")
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
        self.inner.engine.run_once(app, release, command).await
    }

    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError> {
        self.inner.restart(containers).await
    }

    async fn states(&self, containers: &[ContainerName]) -> Vec<ContainerStatus> {
        let names: Vec<String> = containers.iter().map(|n| n.to_string()).collect();
        let states = join_all(names.iter().map(|n| self.inner.engine.state(n))).await;
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
    async fn converge(&self, desired: &Desired) -> Result<(), SchedulerError> {
        let existing: BTreeMap<String, Existing> = self
            .engine
            .list(&desired.app)
            .await?
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
        let started = join_all(
            to_start
                .iter()
                .map(|n| self.start_healthy(n, &desired.release, existing.get(&n.to_string()))),
        )
        .await;
        if let Some(Err(e)) = started.iter().find(|r| r.is_err()) {
            let failure = e.clone();
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
            join_all(names.iter().map(|n| self.engine.remove(n))).await;
            {
                let mut book = supervise::lock(&self.book);
                book.remove_desired(desired.app.as_str(), &names);
                names.iter().for_each(|n| book.stopping(n, false));
            }
            return Err(SchedulerError(format!(
                "aborting, app containers failed to become healthy ({failure})"
            )));
        }
        for (name, route) in to_start.iter().zip(started) {
            {
                let mut book = supervise::lock(&self.book);
                book.mark_started(&name.to_string());
                if serves_traffic(name) {
                    book.mark_healthy(&name.to_string());
                }
            }
            if let Ok(Some(route)) = route
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
                    .publish(name, &format!("{}:{port}", self.config.advertise_host))
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
        if !old.is_empty() {
            tokio::time::sleep(self.config.drain).await;
        }
        for e in &old {
            supervise::lock(&self.book).stopping(&e.name, true);
        }
        let stopped = join_all(old.iter().map(|e| self.engine.stop_and_remove(&e.id))).await;
        for e in &old {
            supervise::lock(&self.book).stopping(&e.name, false);
        }
        if let Some(Err(e)) = stopped.into_iter().find(|r| r.is_err()) {
            return Err(SchedulerError(format!(
                "aborting, failed to destroy some containers ({e})"
            )));
        }
        Ok(())
    }

    async fn destroy(&self, app: &AppName) -> Result<(), SchedulerError> {
        supervise::lock(&self.book).forget_app(app.as_str());
        self.routes.withdraw_app(app).await?;
        let all = self.engine.list(app).await?;
        let removed = join_all(all.iter().map(|e| self.engine.remove(&e.id))).await;
        removed.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError> {
        for name in containers {
            let text = name.to_string();
            if serves_traffic(name) {
                self.routes.withdraw(name).await?;
            }
            supervise::lock(&self.book).stopping(&text, true);
            let restarted = self.engine.restart(&text).await;
            supervise::lock(&self.book).stopping(&text, false);
            let Some(port) = restarted? else {
                continue;
            };
            if serves_traffic(name) {
                self.routes
                    .publish(name, &format!("{}:{port}", self.config.advertise_host))
                    .await?;
            }
        }
        Ok(())
    }
}
