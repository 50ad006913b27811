//! The Docker Swarm backend (cluster mode): each process type of a release is a replicated
//! service `{app}_v{N}_{type}`, whose task in slot `k` is the container `{app}_v{N}.{type}.{k}`.
//! Traffic ports are published in host mode, so every task has its own `node:port`, which is
//! its route. Tags become placement constraints (`node.labels.<tag>==<value>`). With
//! `DockerConfig::network` set, tasks join that network (on a Swarm, a `SwarmAppNetwork`:
//! each host's isolated bridge); else Docker's default bridge of their host.
//!
//! `converge` creates or scales the release's services, waits until every task runs and
//! answers, publishes the routes, then withdraws the old services' routes, waits the drain
//! period and removes them. Swarm restarts failed tasks itself; routes follow at the next
//! convergence (the controller reconciles periodically).

mod slots;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, Limit,
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task,
    TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use deis_store::ConfigStore;
use deis_types::{AppName, ContainerName, ProcessType, ReleaseVersion};
use tokio_util::sync::CancellationToken;

use deis_docker::labels::{APP as LABEL_APP, RELEASE as LABEL_RELEASE, TYPE as LABEL_TYPE};

use crate::container_spec::ContainerSpec;
use crate::docker::container::Engine;
use crate::docker::{DockerConfig, docker_error};
use crate::health;
use crate::pull::Pulls;
use crate::routes::Routes;
use slots::{awaited, live_tasks, numbered, task_ports, wanted_slots};

use crate::spec::{
    ContainerState, ContainerStatus, Desired, ReleaseSpec, Scheduler, SchedulerError,
};

/// The Swarm backend. Its engine must be a swarm manager.
pub struct SwarmScheduler {
    docker: Docker,
    engine: Engine,
    routes: Routes,
    tasks: crate::tasks::Tasks,
    config: DockerConfig,
    pulls: Pulls,
}

/// How long running tasks may go without a port before they are restarted to learn it.
const PORTS_GRACE: Duration = Duration::from_secs(10);

/// A service of an app as Swarm reports it.
struct Svc {
    name: String,
    id: String,
    version: u64,
    spec: ServiceSpec,
    release: u32,
    ptype: String,
    replicas: u32,
}

fn service_name(app: &AppName, version: u32, ptype: &str) -> String {
    format!("{app}_v{version}_{ptype}")
}

/// The image a service's tasks run.
fn image_of(spec: &ServiceSpec) -> Option<&str> {
    spec.task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .image
        .as_deref()
}

impl SwarmScheduler {
    /// Connects to the first of `config.engines` if any (its URL), else to the local engine;
    /// it must be a swarm manager.
    pub async fn connect(
        store: Arc<dyn ConfigStore>,
        config: DockerConfig,
        shutdown: CancellationToken,
    ) -> Result<SwarmScheduler, SchedulerError> {
        let url = config
            .engines
            .first()
            .map(|e| e.url.clone())
            .unwrap_or_default();
        let docker = deis_docker::connect(&url).await?;
        deis_docker::manager_ready(&docker, deis_docker::MANAGER_WAIT)
            .await
            .map_err(|e| {
                docker_error(
                    "the Docker engine is not a swarm manager (docker swarm init)",
                    e,
                )
            })?;
        let tasks = crate::tasks::Tasks::new(shutdown);
        let pulls = Pulls::new(store.clone(), config.registries.clone());
        let scheduler = SwarmScheduler {
            engine: Engine::new(
                docker.clone(),
                config.clone(),
                0,
                crate::docker::EngineEndpoint {
                    url,
                    advertise_host: config.advertise_host.clone(),
                    bind_ip: config.bind_ip.clone(),
                },
                tasks.clone(),
                pulls.clone(),
            ),
            docker,
            routes: Routes::new(store, tasks.clone()),
            tasks,
            config,
            pulls,
        };
        // The routes of the controller that led before (its lease lapses): kept, not lost
        // until the first convergence.
        match scheduler.routes.adopt().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(routes = n, "Took over the routes in the config store"),
            Err(e) => {
                tracing::warn!(error = %e, "Taking over the routes in the config store failed")
            }
        }
        Ok(scheduler)
    }

    async fn services(&self, app: &AppName) -> Result<Vec<Svc>, SchedulerError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_APP}={app}")])]);
        let listed = self
            .docker
            .list_services(Some(
                ListServicesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| docker_error(&format!("listing the services of {app}"), e))?;
        Ok(listed
            .into_iter()
            .filter_map(|s| {
                let spec = s.spec?;
                let labels = spec.labels.clone().unwrap_or_default();
                Some(Svc {
                    name: spec.name.clone()?,
                    id: s.id?,
                    version: s.version.and_then(|v| v.index)?,
                    release: labels
                        .get(LABEL_RELEASE)?
                        .trim_start_matches('v')
                        .parse()
                        .ok()?,
                    ptype: labels.get(LABEL_TYPE)?.clone(),
                    replicas: spec
                        .mode
                        .as_ref()
                        .and_then(|m| m.replicated.as_ref())
                        .and_then(|r| r.replicas)
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(0),
                    spec,
                })
            })
            .collect())
    }

    /// The service of `ptype` in `release`, made from the same container spec as the Docker
    /// backend's containers.
    fn spec(
        &self,
        app: &AppName,
        spec: ContainerSpec,
        ptype: &str,
        version: u32,
        replicas: u32,
    ) -> ServiceSpec {
        let port = spec.port;
        let traffic = spec.traffic;
        ServiceSpec {
            name: Some(service_name(app, version, ptype)),
            labels: Some(spec.labels.clone()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(i64::from(replicas)),
                }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(spec.image),
                    command: spec.command,
                    env: Some(spec.env),
                    labels: Some(spec.labels),
                    init: Some(true),
                    ..Default::default()
                }),
                log_driver: Some(bollard::models::TaskSpecLogDriver {
                    name: Some("json-file".to_owned()),
                    options: self.config.limits.log_config().config,
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        memory_bytes: spec.memory,
                        pids: spec.pids,
                        // Swarm has no CPU shares; 1024 shares (a whole CPU's weight) map to
                        // one CPU.
                        nano_cpus: spec
                            .cpu_shares
                            .filter(|shares| *shares > 0)
                            .map(|shares| i64::from(shares) * 1_000_000_000 / 1024),
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                    delay: Some(500_000_000),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(spec.constraints),
                    ..Default::default()
                }),
                networks: self.config.network.as_ref().map(|network| {
                    vec![NetworkAttachmentConfig {
                        target: Some(network.clone()),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            endpoint_spec: traffic.then(|| EndpointSpec {
                ports: Some(vec![EndpointPortConfig {
                    target_port: Some(i64::from(port)),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn set_replicas(
        &self,
        app: &AppName,
        svc: &Svc,
        replicas: u32,
    ) -> Result<(), SchedulerError> {
        let mut spec = svc.spec.clone();
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(replicas)),
            }),
            ..Default::default()
        });
        self.update(app, &svc.name, spec, svc.version, "scale")
            .await
    }

    /// Updates the service `name` at `version` to `spec`, with `app`'s registry credentials
    /// so that the nodes that get new tasks can pull the image.
    async fn update(
        &self,
        app: &AppName,
        name: &str,
        spec: ServiceSpec,
        version: u64,
        what: &str,
    ) -> Result<(), SchedulerError> {
        let credentials = match image_of(&spec) {
            Some(image) => self.pulls.credentials(app, image).await?,
            None => None,
        };
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        self.docker
            .update_service(
                name,
                spec,
                UpdateServiceOptionsBuilder::new().version(version).build(),
                credentials,
            )
            .await
            .map_err(|e| docker_error(&format!("{name} ({what})"), e))?;
        Ok(())
    }

    /// The running tasks of a service that should run, by slot.
    async fn tasks(&self, service: &str) -> Result<Vec<Task>, SchedulerError> {
        let filters = HashMap::from([("service".to_owned(), vec![service.to_owned()])]);
        self.docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| docker_error(&format!("{service} (tasks)"), e))
    }

    /// The address of each node the Swarm knows to be up. A lost host's tasks may still be
    /// listed as running (the Swarm cannot hear from it), and are not counted.
    async fn node_addrs(&self) -> Result<HashMap<String, String>, SchedulerError> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| docker_error("listing the swarm's nodes", e))?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| {
                let status = n.status?;
                (status.state == Some(bollard::models::NodeState::READY))
                    .then_some((n.id?, status.addr?))
            })
            .collect())
    }

    /// Waits until the service runs exactly `replicas` tasks, each answering (with a published
    /// port when it takes `traffic`); their routes by container number (see [`numbered`]).
    /// `known` gives a container number's route as last published: the port of a task whose
    /// port the Swarm no longer reports (see [`task_ports`]).
    async fn wait_serving(
        &self,
        app: &AppName,
        service: &str,
        replicas: u32,
        release: &ReleaseSpec,
        traffic: bool,
        known: impl Fn(u32) -> Option<String>,
    ) -> Result<BTreeMap<u32, String>, SchedulerError> {
        let started = tokio::time::Instant::now();
        let until = started + self.config.health_timeout;
        let mut restarted = false;
        let (running, ports, nodes) = loop {
            let tasks = self.tasks(service).await?;
            let nodes = self.node_addrs().await?;
            if let Some(failed) = tasks.iter().find(|t| {
                matches!(t.desired_state, Some(TaskState::RUNNING))
                    && matches!(
                        t.status.as_ref().and_then(|s| s.state),
                        Some(TaskState::REJECTED | TaskState::FAILED)
                    )
            }) {
                let why = failed
                    .status
                    .as_ref()
                    .and_then(|s| s.err.clone())
                    .unwrap_or_default();
                return Err(SchedulerError::TaskFailed {
                    service: service.to_owned(),
                    why,
                });
            }
            let wanted = wanted_slots(&tasks, &nodes);
            let running = live_tasks(tasks, &nodes);
            let ports = task_ports(&running, &nodes, &known);
            let Some(waiting) = awaited(&wanted, &running, &ports, replicas, traffic) else {
                break (running, ports, nodes);
            };
            // Running tasks whose ports the Swarm forgot and no route remembers: their new
            // tasks will say. Once, after the Swarm had time to report them.
            let all_run = running.len() == replicas as usize && wanted.len() == running.len();
            if traffic
                && all_run
                && !restarted
                && started.elapsed() >= PORTS_GRACE
                && ports.iter().any(Option::is_none)
            {
                restarted = true;
                tracing::warn!(
                    service,
                    waiting,
                    "The Swarm reports no port for running tasks and none is known; restarting them"
                );
                self.force_update(app, service, true).await?;
            }
            if tokio::time::Instant::now() >= until {
                return Err(SchedulerError::TasksNotRunning {
                    service: service.to_owned(),
                    running: running.len(),
                    wanted: replicas,
                    after: self.config.health_timeout,
                    waiting,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut routes = BTreeMap::new();
        if !traffic {
            return Ok(routes);
        }
        for ((num, task), port) in numbered(running).zip(ports) {
            let node = task
                .node_id
                .as_ref()
                .and_then(|n| nodes.get(n))
                .cloned()
                .unwrap_or_else(|| self.config.advertise_host.clone());
            let Some(port) = port else {
                continue;
            };
            let target = health::Target::from_config(node.clone(), port, true, |k| {
                release.env.get(k).map(String::as_str)
            });
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let slot = task.slot.unwrap_or(0);
            health::wait(&target, left, || async { true })
                .await
                .map_err(|source| SchedulerError::Unhealthy {
                    container: format!("{service} slot {slot}"),
                    source,
                })?;
            routes.insert(num, format!("{node}:{port}"));
        }
        Ok(routes)
    }

    /// Replaces every task of the service `name` (a rolling restart); with `unless_updating`,
    /// not while an update of it is still rolling.
    async fn force_update(
        &self,
        app: &AppName,
        name: &str,
        unless_updating: bool,
    ) -> Result<(), SchedulerError> {
        let svc = self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
            .map_err(|e| docker_error(&format!("{name} (restart)"), e))?;
        let rolling = svc
            .update_status
            .as_ref()
            .and_then(|u| u.state)
            .is_some_and(|state| {
                matches!(
                    state,
                    bollard::models::ServiceUpdateStatusStateEnum::UPDATING
                        | bollard::models::ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                )
            });
        if unless_updating && rolling {
            return Ok(());
        }
        let (Some(mut spec), Some(version)) = (svc.spec, svc.version.and_then(|v| v.index)) else {
            return Ok(());
        };
        if let Some(task) = spec.task_template.as_mut() {
            task.force_update = Some(task.force_update.unwrap_or(0) + 1);
        }
        self.update(app, name, spec, version, "restart").await
    }

    fn container(app: &AppName, version: u32, ptype: &str, slot: u32) -> Option<ContainerName> {
        Some(ContainerName {
            app: app.clone(),
            version: ReleaseVersion(version),
            process_type: ptype.parse::<ProcessType>().ok()?,
            num: slot,
        })
    }

    async fn withdraw_slots(
        &self,
        app: &AppName,
        version: u32,
        ptype: &str,
        slots: impl Iterator<Item = u32>,
    ) -> Result<(), SchedulerError> {
        for slot in slots {
            if let Some(name) = Self::container(app, version, ptype, slot) {
                self.routes.withdraw(&name).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Scheduler for SwarmScheduler {
    async fn converge(&self, desired: &Desired) -> Result<(), SchedulerError> {
        let app = &desired.app;
        let version = desired.release.version;
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for c in &desired.containers {
            let n = counts.entry(c.process_type.to_string()).or_default();
            *n = (*n).max(c.num);
        }
        let existing = self.services(app).await?;
        let mut created = Vec::new();
        let mut published: BTreeSet<String> = BTreeSet::new();
        for (ptype, count) in &counts {
            let name = service_name(app, version, ptype);
            let traffic = deis_docker::labels::takes_traffic(ptype);
            match existing.iter().find(|s| s.name == name) {
                Some(svc) if svc.replicas != *count => {
                    if *count < svc.replicas {
                        self.withdraw_slots(app, version, ptype, *count + 1..=svc.replicas)
                            .await?;
                        tokio::time::sleep(self.config.drain).await;
                    }
                    self.set_replicas(app, svc, *count).await?;
                }
                Some(_) => {}
                None => {
                    // The manager reads the image's port and labels (pulling it if need be);
                    // every node pulls with the app's credentials given with the service.
                    let image = &desired.release.image;
                    let facts = self.engine.image_facts(app, image).await?;
                    let credentials = self.pulls.credentials(app, image).await?;
                    let container = ContainerSpec::new(
                        app,
                        &desired.release,
                        ptype,
                        &facts,
                        &self.config.extra_labels,
                        &self.config.limits,
                    );
                    let service = self.spec(app, container, ptype, desired.release.version, *count);
                    self.docker
                        .create_service(service, credentials)
                        .await
                        .map_err(|e| docker_error(&format!("{name} (create)"), e))?;
                    created.push(name.clone());
                }
            }
            match self
                .wait_serving(app, &name, *count, &desired.release, traffic, |num| {
                    Self::container(app, version, ptype, num).and_then(|c| self.routes.current(&c))
                })
                .await
            {
                Ok(routes) => {
                    for (num, route) in routes {
                        if let Some(container) = Self::container(app, version, ptype, num) {
                            self.routes.publish(&container, &route).await?;
                            published.insert(container.to_string());
                        }
                    }
                }
                Err(e) => {
                    for name in &created {
                        let _ = self.docker.delete_service(name).await;
                    }
                    return Err(e.aborted());
                }
            }
        }
        let old: Vec<&Svc> = existing
            .iter()
            .filter(|s| s.release != version || !counts.contains_key(&s.ptype))
            .collect();
        for svc in &old {
            self.withdraw_slots(app, svc.release, &svc.ptype, 1..=svc.replicas.max(1))
                .await?;
        }
        if !old.is_empty() {
            tokio::time::sleep(self.config.drain).await;
        }
        for svc in old {
            self.docker
                .delete_service(&svc.id)
                .await
                .map_err(|e| docker_error(&format!("{} (destroy)", svc.name), e))?;
        }
        Ok(())
    }

    async fn destroy(&self, app: &AppName) -> Result<(), SchedulerError> {
        self.routes.withdraw_app(app).await?;
        for svc in self.services(app).await? {
            self.docker
                .delete_service(&svc.id)
                .await
                .map_err(|e| docker_error(&format!("{} (destroy)", svc.name), e))?;
        }
        Ok(())
    }

    async fn run(
        &self,
        app: &AppName,
        release: &ReleaseSpec,
        command: &str,
    ) -> Result<(i32, String), SchedulerError> {
        self.engine.run_once(app, release, command).await
    }

    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError> {
        let services: BTreeMap<String, &AppName> = containers
            .iter()
            .map(|c| {
                let name = service_name(&c.app, c.version.0, c.process_type.as_str());
                (name, &c.app)
            })
            .collect();
        for (name, app) in services {
            self.force_update(app, &name, false).await?;
        }
        Ok(())
    }

    async fn drain(&self) {
        self.tasks.drain().await;
    }

    fn report_to(&self, progress: crate::spec::Progress) {
        self.pulls.report_to(progress);
    }

    async fn states(&self, containers: &[ContainerName]) -> Vec<ContainerStatus> {
        let mut out = Vec::with_capacity(containers.len());
        // Per service: its tasks, and the slot of each container number.
        let mut cache: HashMap<String, (Vec<Task>, BTreeMap<u32, i64>)> = HashMap::new();
        for c in containers {
            let service = service_name(&c.app, c.version.0, c.process_type.as_str());
            if !cache.contains_key(&service) {
                let tasks = self.tasks(&service).await.unwrap_or_default();
                let slots: BTreeSet<i64> = tasks
                    .iter()
                    .filter(|t| matches!(t.desired_state, Some(TaskState::RUNNING)))
                    .filter_map(|t| t.slot)
                    .collect();
                let slots = numbered(slots).collect();
                cache.insert(service.clone(), (tasks, slots));
            }
            let (tasks, slots) = &cache[&service];
            let slot = slots.get(&c.num).copied();
            let tasks: Vec<&Task> = tasks
                .iter()
                .filter(|t| slot.is_some() && t.slot == slot)
                .collect();
            let current = tasks
                .iter()
                .find(|t| matches!(t.desired_state, Some(TaskState::RUNNING)));
            let state = match current
                .and_then(|t| t.status.as_ref())
                .and_then(|s| s.state)
            {
                Some(TaskState::RUNNING) => ContainerState::Up,
                Some(TaskState::FAILED | TaskState::REJECTED) => ContainerState::Crashed,
                Some(TaskState::COMPLETE | TaskState::SHUTDOWN) => ContainerState::Down,
                Some(_) => ContainerState::Created,
                None if tasks.is_empty() => ContainerState::Destroyed,
                None => ContainerState::Down,
            };
            let restarts = u32::try_from(tasks.len().saturating_sub(1)).unwrap_or(u32::MAX);
            out.push(ContainerStatus { state, restarts });
        }
        out
    }
}
