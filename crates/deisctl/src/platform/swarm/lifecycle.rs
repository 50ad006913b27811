//! `install`, `start`, `stop`, `restart`, `uninstall` and `scale` on a Swarm, in the order of
//! §17.3: etcd's members first (all at once: a member is healthy only with a quorum), then each
//! component when the ones before it run on every host they should.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bollard::models::{ServiceSpec, Task, TaskState};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::nodes::{self, Node};
use super::services::{self, LABEL_DESIRED, Mode, Placement, Plan};
use super::{SwarmPlatform, certs, images};
use crate::Error;
use crate::platform::component::{
    Component, LABEL_COMPONENT, LABEL_PLATFORM, START_ORDER, Target, Unit,
};
use crate::platform::settings::{self, Settings};
use crate::platform::spec::{self, ClusterPlaces, Context, StoreAddr};

/// A service of the platform as the Swarm reports it.
#[derive(Debug, Clone)]
pub(super) struct Svc {
    pub(super) unit: Unit,
    pub(super) id: String,
    pub(super) version: u64,
    pub(super) spec: ServiceSpec,
    pub(super) launched: bool,
}

impl Svc {
    /// The host a pinned service runs on (its `node.id==` constraint).
    pub(super) fn pinned_to(&self) -> Option<&str> {
        self.spec
            .task_template
            .as_ref()?
            .placement
            .as_ref()?
            .constraints
            .as_ref()?
            .iter()
            .find_map(|c| c.strip_prefix("node.id=="))
    }

    pub(super) fn placement(&self) -> Placement {
        let task = self.spec.task_template.clone().unwrap_or_default();
        let placement = task.placement.unwrap_or_default();
        let mode = match self.spec.mode.as_ref().and_then(|m| m.replicated.as_ref()) {
            Some(r) => {
                Mode::Replicated(r.replicas.and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
            }
            None => Mode::Global,
        };
        Placement {
            mode,
            constraints: placement.constraints.unwrap_or_default(),
            one_per_host: placement.max_replicas == Some(1),
        }
    }
}

fn failed(what: &str, e: bollard::errors::Error) -> Error {
    Error::Message(format!("the Swarm could not {what}: {e}"))
}

/// The hosts of the database and the registry: where their services are pinned, else (not
/// installed yet) the first etcd host.
pub(super) fn data_hosts<'a>(
    installed: &BTreeMap<Unit, Svc>,
    nodes: &'a [Node],
    etcd_hosts: &'a [Node],
) -> (Option<&'a Node>, Option<&'a Node>) {
    let pinned = |component| {
        installed
            .get(&Unit::single(component))
            .and_then(Svc::pinned_to)
            .and_then(|id| nodes.iter().find(|n| n.id == id))
            .or(etcd_hosts.first())
    };
    (pinned(Component::Database), pinned(Component::Registry))
}

fn is_platform(targets: &[Target]) -> bool {
    targets.iter().any(|t| matches!(t, Target::Platform { .. }))
}

/// Whether a task is up (and, with a health check, passing it).
fn running(task: &Task) -> bool {
    task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
}

fn task_state(task: &Task) -> String {
    let status = task.status.clone().unwrap_or_default();
    let state = status.state.map_or("unknown".to_owned(), |s| s.to_string());
    match status.err.filter(|e| !e.is_empty()) {
        Some(err) => format!("{state} ({err})"),
        None => state,
    }
}

impl SwarmPlatform {
    /// The platform's services, by unit.
    pub(super) async fn services(&self) -> Result<BTreeMap<Unit, Svc>, Error> {
        let filters = std::collections::HashMap::from([(
            "label".to_owned(),
            vec![
                deis_docker::labels::filter(LABEL_PLATFORM, &self.prefix),
                LABEL_COMPONENT.to_owned(),
            ],
        )]);
        let listed = self
            .docker
            .list_services(Some(
                ListServicesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| failed("list services", e))?;
        let mut found = BTreeMap::new();
        for service in listed {
            let spec = service.spec.unwrap_or_default();
            let labels = spec.labels.clone().unwrap_or_default();
            let Some(unit) = Unit::from_labels(&labels) else {
                continue;
            };
            found.insert(
                unit,
                Svc {
                    unit,
                    id: service.id.unwrap_or_default(),
                    version: service.version.and_then(|v| v.index).unwrap_or(0),
                    launched: labels.get(LABEL_DESIRED).map(String::as_str) == Some("launched"),
                    spec,
                },
            );
        }
        Ok(found)
    }

    /// The tasks of a service the Swarm wants running.
    pub(super) async fn tasks(&self, service_id: &str) -> Result<Vec<Task>, Error> {
        let filters = std::collections::HashMap::from([
            ("service".to_owned(), vec![service_id.to_owned()]),
            ("desired-state".to_owned(), vec!["running".to_owned()]),
        ]);
        self.docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| failed("list tasks", e))
    }

    /// The units the targets name, in start order.
    fn wanted(&self, targets: &[Target], etcd_members: usize) -> BTreeSet<Unit> {
        let mut units = BTreeSet::new();
        for target in targets {
            for component in START_ORDER {
                for unit in services::units_of(component, etcd_members) {
                    if target.covers(unit) {
                        units.insert(unit);
                    }
                }
            }
        }
        units
    }

    async fn installed_targets(&self, targets: &[Target]) -> Result<Vec<Svc>, Error> {
        let installed = self.services().await?;
        let mut chosen = BTreeMap::new();
        for target in targets {
            let matching: Vec<&Svc> = installed
                .values()
                .filter(|s| target.covers(s.unit))
                .collect();
            if matching.is_empty() {
                return Err(Error::Message(format!(
                    "{target} is not installed; run deisctl install {target}"
                )));
            }
            for svc in matching {
                chosen.insert(svc.unit, svc.clone());
            }
        }
        Ok(chosen.into_values().collect())
    }

    /// Installs the targets' services; a failure half-way removes the ones this run made, so
    /// that nothing half-installed is left running.
    pub(crate) async fn install(
        &self,
        targets: &[Target],
        routers: Option<u32>,
    ) -> Result<(), Error> {
        let mut created = Vec::new();
        let result = self.install_services(targets, routers, &mut created).await;
        if result.is_err() {
            for id in created.iter().rev() {
                let _ = self.docker.delete_service(id).await;
            }
        }
        result
    }

    async fn install_services(
        &self,
        targets: &[Target],
        routers: Option<u32>,
        created: &mut Vec<String>,
    ) -> Result<(), Error> {
        let nodes = self.nodes().await?;
        let etcd_hosts = nodes::etcd_hosts(&nodes);
        if etcd_hosts.is_empty() {
            return Err(Error::Message(
                "the Swarm has no ready manager; check docker node ls on a manager".to_owned(),
            ));
        }
        let ready: Vec<Node> = nodes.iter().filter(|n| n.ready).cloned().collect();
        let installed = self.services().await?;
        let (database, registry) = data_hosts(&installed, &nodes, &etcd_hosts);
        let plan = Plan {
            prefix: &self.prefix,
            etcd_hosts: &etcd_hosts,
            routers: routers.unwrap_or_else(|| u32::try_from(ready.len()).unwrap_or(1)),
            hosts: u32::try_from(ready.len()).unwrap_or(1),
            managers: u32::try_from(ready.iter().filter(|n| n.manager).count()).unwrap_or(1),
            database,
            registry,
        };
        let wanted = self.wanted(targets, etcd_hosts.len());
        if is_platform(targets) {
            println!("Installing Deis...");
            nodes::quicken_heartbeat(&self.docker).await?;
        }
        let (etcd, rest): (Vec<Unit>, Vec<Unit>) = wanted
            .iter()
            .copied()
            .partition(|u| u.component == Component::Etcd);
        if etcd.is_empty() {
            self.ensure_store(&installed).await?;
        } else {
            println!("{}", Component::Etcd.phase());
            let missing: Vec<Unit> = etcd
                .iter()
                .copied()
                .filter(|u| !installed.contains_key(u))
                .collect();
            if !missing.is_empty() {
                images::distribute(
                    &self.access,
                    &etcd_hosts,
                    &[format!("deis/etcd:{}", self.tag)],
                )
                .await?;
                let members: Vec<(String, String)> = etcd_hosts
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("{}-{}", self.prefix, i + 1), n.addr.clone()))
                    .collect();
                let secrets =
                    certs::ensure_members(&self.docker, &self.prefix, &etcd_hosts).await?;
                for unit in &missing {
                    let k = unit.instance.unwrap_or(1) as usize;
                    let Some(tls) = secrets.get(k.saturating_sub(1)) else {
                        continue;
                    };
                    let member = services::MemberSpec {
                        k,
                        me: members
                            .get(k.saturating_sub(1))
                            .cloned()
                            .unwrap_or_default(),
                        cluster: members.clone(),
                        join: services::Join::New,
                    };
                    let body = services::etcd_member(
                        &self.prefix,
                        &self.tag,
                        &member,
                        self.etcd_port,
                        (&tls[0].name, &tls[1].name, &tls[2].name),
                    );
                    let spec = services::service(
                        &self.prefix,
                        *unit,
                        body,
                        &services::placement(*unit, &plan),
                        tls,
                        true,
                    );
                    created.push(self.create(spec).await?);
                }
            }
            for unit in &etcd {
                println!("{}: loaded", unit.unit_name(&self.prefix));
            }
            let members: Vec<Svc> = self
                .services()
                .await?
                .into_values()
                .filter(|s| s.unit.component == Component::Etcd)
                .collect();
            self.launch_and_wait(&members).await?;
        }
        let rest: Vec<Unit> = rest
            .into_iter()
            .filter(|u| !installed.contains_key(u))
            .collect();
        if rest.is_empty() {
            if is_platform(targets) {
                println!("Done.");
            }
            return Ok(());
        }
        let store = self.connect_store().await?;
        let settings = settings::load(store.as_ref()).await?;
        let mut wanted_images: BTreeSet<String> = rest
            .iter()
            .map(|u| settings.image(u.component, &self.tag))
            .collect();
        if rest.iter().any(|u| u.component == Component::Builder) {
            wanted_images.insert(
                settings
                    .stack_image
                    .clone()
                    .unwrap_or_else(|| format!("deis/stack:{}", self.tag)),
            );
        }
        let images: Vec<String> = wanted_images.into_iter().collect();
        images::distribute(&self.access, &ready, &images).await?;
        let cache_installed = installed.contains_key(&Unit::single(Component::Cache))
            || rest.contains(&Unit::single(Component::Cache));
        let database_installed = installed.contains_key(&Unit::single(Component::Database))
            || rest.contains(&Unit::single(Component::Database));
        let store_addr = StoreAddr {
            endpoints: self.member_endpoints(&etcd_hosts),
            namespace: self.namespace.clone(),
        };
        let app_network = self.app_network();
        if rest.iter().any(|u| {
            matches!(
                u.component,
                Component::HostAgent | Component::Controller | Component::Builder
            )
        }) {
            let mut engines = Vec::new();
            for node in &ready {
                engines.push(self.access.node_engine(node).await?);
            }
            app_network
                .create(&engines, &self.docker)
                .await
                .map_err(|e| Error::Message(e.to_string()))?;
        }
        let mut phase = "";
        for unit in rest {
            if unit.component.phase() != phase {
                phase = unit.component.phase();
                println!("{phase}");
            }
            if unit.component == Component::Controller {
                let managers: Vec<Node> = ready.iter().filter(|n| n.manager).cloned().collect();
                nodes::pin_controllers(
                    &self.docker,
                    &services::controller_label(&self.prefix),
                    &managers,
                    plan.managers.clamp(1, 2) as usize,
                )
                .await?;
            }
            let secrets = certs::ensure_client(&self.docker, &self.prefix, unit.component).await?;
            let places = ClusterPlaces {
                database_host: database.map(|n| n.addr.clone()).unwrap_or_default(),
                registry_host: registry.map(|n| n.addr.clone()).unwrap_or_default(),
                etcd_tls_env: certs::tls_env(&secrets),
            };
            let ctx = Context {
                prefix: &self.prefix,
                tag: &self.tag,
                store: &store_addr,
                settings: &settings,
                database_installed,
                cache_installed,
                app_network: &app_network.name,
                cluster: Some(&places),
            };
            let body = spec::component(&ctx, unit);
            let spec = services::service(
                &self.prefix,
                unit,
                body,
                &services::placement(unit, &plan),
                &secrets,
                false,
            );
            created.push(self.create(spec).await?);
            println!("{}: loaded", unit.unit_name(&self.prefix));
        }
        if is_platform(targets) {
            println!("Done.");
            println!("Please run `deisctl start platform` to boot up Deis.");
        }
        Ok(())
    }

    /// The config store, installing and starting etcd's members first if they are not (the
    /// settings live there, and on a cluster deisctl runs etcd too).
    pub(crate) async fn store(&self) -> Result<std::sync::Arc<dyn deis_store::ConfigStore>, Error> {
        let installed = self.services().await?;
        if installed.keys().any(|u| u.component == Component::Etcd) {
            self.ensure_store(&installed).await?;
        } else {
            let etcd = Target::Component {
                component: Component::Etcd,
                instance: None,
            };
            self.install(&[etcd], None).await?;
        }
        self.connect_store().await
    }

    /// The apps' network: a Swarm network over a bridge of each host's own, firewalled by each
    /// host's agent.
    pub(super) fn app_network(&self) -> deis_scheduler::SwarmAppNetwork {
        let mut network = deis_scheduler::SwarmAppNetwork::new(&format!("{}-apps", self.prefix));
        network
            .labels
            .insert(LABEL_PLATFORM.to_owned(), self.prefix.clone());
        network
    }

    /// Creates a service; its id.
    async fn create(&self, spec: ServiceSpec) -> Result<String, Error> {
        let name = spec.name.clone().unwrap_or_default();
        self.docker
            .create_service(spec, None)
            .await
            .map(|created| created.id.unwrap_or(name.clone()))
            .map_err(|e| failed(&format!("create the service {name}"), e))
    }

    /// Starts etcd's members if they are installed and stopped, so that settings can be read.
    async fn ensure_store(&self, installed: &BTreeMap<Unit, Svc>) -> Result<(), Error> {
        let members: Vec<Svc> = installed
            .values()
            .filter(|s| s.unit.component == Component::Etcd)
            .cloned()
            .collect();
        if members.iter().any(|s| !s.launched) {
            self.launch_and_wait(&members).await?;
        }
        Ok(())
    }

    /// Updates a service to run (`launched`) or to be only loaded.
    async fn set_launched(&self, svc: &Svc, launched: bool) -> Result<(), Error> {
        let mut spec = svc.spec.clone();
        let stopped = services::stopped_constraint(&self.prefix);
        if let Some(placement) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.placement.as_mut())
        {
            let mut constraints = placement.constraints.take().unwrap_or_default();
            constraints.retain(|c| *c != stopped);
            if !launched {
                constraints.push(stopped);
            }
            placement.constraints = Some(constraints);
        }
        let value = if launched { "launched" } else { "loaded" };
        spec.labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_DESIRED.to_owned(), value.to_owned());
        self.update(svc, spec).await
    }

    pub(super) async fn update(&self, svc: &Svc, spec: ServiceSpec) -> Result<(), Error> {
        let version = i32::try_from(svc.version).unwrap_or(i32::MAX);
        self.docker
            .update_service(
                &svc.id,
                spec,
                UpdateServiceOptionsBuilder::new().version(version).build(),
                None,
            )
            .await
            .map(|_| ())
            .map_err(|e| failed(&format!("update {}", svc.unit.unit_name(&self.prefix)), e))
    }

    /// How many tasks `svc` should run now.
    async fn expected_tasks(&self, svc: &Svc) -> Result<usize, Error> {
        Ok(match svc.placement().mode {
            Mode::Replicated(n) => n as usize,
            Mode::Global => self.nodes().await?.iter().filter(|n| n.ready).count(),
        })
    }

    /// Launches every service of `group` that is loaded, then waits until each runs all its
    /// tasks, printing each task's state as it changes.
    pub(super) async fn launch_and_wait(&self, group: &[Svc]) -> Result<(), Error> {
        let mut before = BTreeMap::new();
        for svc in group {
            before.insert(svc.id.clone(), self.refused_ids(&svc.id).await?);
        }
        for svc in group.iter().filter(|s| !s.launched) {
            self.set_launched(svc, true).await?;
        }
        let deadline = Instant::now() + self.start_timeout;
        let nodes = self.nodes().await?;
        let host = |id: Option<&String>| {
            id.and_then(|id| nodes.iter().find(|n| &n.id == id))
                .map_or_else(|| "-".to_owned(), Node::machine)
        };
        let mut shown: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let mut waiting = Vec::new();
            for svc in group {
                let tasks = self.tasks(&svc.id).await?;
                for task in &tasks {
                    let state = task_state(task);
                    let id = task.id.clone().unwrap_or_default();
                    if shown.get(&id) != Some(&state) {
                        println!(
                            "{} on {}: {state}",
                            svc.unit.unit_name(&self.prefix),
                            host(task.node_id.as_ref())
                        );
                        shown.insert(id, state);
                    }
                }
                let up = tasks.iter().filter(|t| running(t)).count();
                // The Swarm retries a task that cannot start for ever: a few refusals say it
                // will not.
                let known = before.get(&svc.id).cloned().unwrap_or_default();
                if let Some(err) = self.refused(&svc.id, &known).await? {
                    return Err(Error::Message(format!(
                        "The service '{}' failed while starting: {err}; see deisctl status {}",
                        svc.unit.unit_name(&self.prefix),
                        svc.unit
                    )));
                }
                let expected = self.expected_tasks(svc).await?;
                if up < expected {
                    let last = tasks.iter().find(|t| !running(t)).map(task_state);
                    waiting.push((svc.unit, up, expected, last));
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let (unit, up, expected, last) = &waiting[0];
                return Err(Error::Message(format!(
                    "The service '{}' failed while starting: {up} of {expected} tasks run after {} s (last: {}); see deisctl status {unit} and deisctl journal {unit}",
                    unit.unit_name(&self.prefix),
                    self.start_timeout.as_secs(),
                    last.as_deref().unwrap_or("no task yet")
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub(crate) async fn start(&self, targets: &[Target]) -> Result<(), Error> {
        let svcs = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Starting Deis...");
        }
        for component in START_ORDER {
            let group: Vec<Svc> = svcs
                .iter()
                .filter(|s| s.unit.component == component)
                .cloned()
                .collect();
            if !group.is_empty() {
                self.launch_and_wait(&group).await?;
            }
        }
        if is_platform(targets) {
            println!("Done.");
            if let Ok(store) = self.connect_store().await
                && let Ok(settings) = settings::load(store.as_ref()).await
            {
                self.print_urls(&settings).await;
            }
        }
        Ok(())
    }

    async fn print_urls(&self, s: &Settings) {
        let hosts = self.nodes().await.unwrap_or_default();
        let any = hosts
            .first()
            .map_or("<host>".to_owned(), |n| n.addr.clone());
        let app_url = match s.port(Component::Router, "listenPort") {
            80 => format!("http://<app>.{}", s.domain),
            port => format!("http://<app>.{}:{port}", s.domain),
        };
        println!("Please set up an administrative account. See 'deis help register'");
        println!(
            "  deis register http://deis.{} (any host's router; e.g. {any})",
            s.domain
        );
        println!(
            "  git remote: ssh://git@deis.{}:{}/<app>.git",
            s.domain,
            s.port(Component::Builder, "listenPort")
        );
        println!("  apps answer on {app_url}");
    }

    pub(crate) async fn stop(&self, targets: &[Target]) -> Result<(), Error> {
        let svcs = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Stopping Deis...");
        }
        for component in START_ORDER.iter().rev() {
            let group: Vec<Svc> = svcs
                .iter()
                .filter(|s| s.unit.component == *component)
                .cloned()
                .collect();
            for svc in &group {
                if svc.launched {
                    self.set_launched(svc, false).await?;
                }
            }
            self.wait_stopped(&group).await?;
            for svc in &group {
                println!("{}: inactive/dead", svc.unit.unit_name(&self.prefix));
            }
        }
        if is_platform(targets) {
            println!("Done.");
        }
        Ok(())
    }

    /// Waits until none of `group`'s tasks runs.
    async fn wait_stopped(&self, group: &[Svc]) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut left = 0;
            for svc in group {
                left += self.running_tasks(&svc.id).await?;
            }
            if left == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Message(format!(
                    "{left} tasks of {} still run after 60 s; see deisctl list",
                    group
                        .first()
                        .map(|s| s.unit.to_string())
                        .unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The ids of a service's tasks the Swarm refused or saw fail.
    async fn refused_ids(&self, service_id: &str) -> Result<BTreeSet<String>, Error> {
        Ok(self
            .refused_tasks(service_id)
            .await?
            .into_iter()
            .filter_map(|t| t.id)
            .collect())
    }

    /// Why a service's tasks are refused, once the Swarm has refused or seen fail five of them
    /// besides the `known` ones.
    async fn refused(
        &self,
        service_id: &str,
        known: &BTreeSet<String>,
    ) -> Result<Option<String>, Error> {
        let refused: Vec<Task> = self
            .refused_tasks(service_id)
            .await?
            .into_iter()
            .filter(|t| t.id.as_ref().is_some_and(|id| !known.contains(id)))
            .collect();
        if refused.len() < 5 {
            return Ok(None);
        }
        Ok(refused.first().map(task_state))
    }

    /// Every task of a service the Swarm still lists, whatever it wants of them.
    pub(super) async fn all_tasks(&self, service_id: &str) -> Result<Vec<Task>, Error> {
        let filters =
            std::collections::HashMap::from([("service".to_owned(), vec![service_id.to_owned()])]);
        self.docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| failed("list tasks", e))
    }

    async fn refused_tasks(&self, service_id: &str) -> Result<Vec<Task>, Error> {
        let tasks = self.all_tasks(service_id).await?;
        Ok(tasks
            .into_iter()
            .filter(|t| {
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(TaskState::REJECTED | TaskState::FAILED)
                )
            })
            .collect())
    }

    /// Tasks of a service that still have a container up, whatever the Swarm wants of them.
    async fn running_tasks(&self, service_id: &str) -> Result<usize, Error> {
        let tasks = self.all_tasks(service_id).await?;
        Ok(tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(TaskState::RUNNING | TaskState::STARTING | TaskState::PREPARING)
                )
            })
            .count())
    }

    pub(crate) async fn restart(&self, targets: &[Target]) -> Result<(), Error> {
        self.stop(targets).await?;
        self.start(targets).await
    }

    pub(crate) async fn uninstall(&self, targets: &[Target], keep_data: bool) -> Result<(), Error> {
        let platform = is_platform(targets);
        let svcs: Vec<Svc> = if platform {
            self.services()
                .await?
                .into_values()
                .filter(|s| targets.iter().any(|t| t.covers(s.unit)))
                .collect()
        } else {
            self.installed_targets(targets).await?
        };
        if platform {
            println!("Uninstalling Deis...");
        }
        for svc in svcs.iter().rev() {
            match self.docker.delete_service(&svc.id).await {
                Ok(()) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(failed(&format!("remove {}", svc.unit), e)),
            }
            println!("{}: destroyed", svc.unit.unit_name(&self.prefix));
        }
        if platform && self.services().await?.is_empty() {
            let agent = svcs
                .iter()
                .find(|s| s.unit.component == Component::HostAgent)
                .map(|s| s.spec.clone());
            super::sweep::everything(self, keep_data, agent).await?;
        }
        if platform {
            println!("Done.");
        }
        Ok(())
    }

    /// `scale router=N`: the number of routers (one per host at most).
    pub(crate) async fn scale(&self, component: Component, count: u32) -> Result<(), Error> {
        component.require_scalable()?;
        let unit = Unit {
            component,
            instance: None,
        };
        let Some(svc) = self.services().await?.remove(&unit) else {
            return Err(Error::Message(format!(
                "{} is not installed; run deisctl install {}",
                component.name(),
                component.name()
            )));
        };
        let hosts = self.nodes().await?.iter().filter(|n| n.ready).count();
        if count as usize > hosts {
            return Err(Error::Message(format!(
                "cannot run {count} routers on {hosts} hosts: routers use the hosts' ports, one per host"
            )));
        }
        let mut spec = svc.spec.clone();
        if let Some(replicated) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
            replicated.replicas = Some(i64::from(count));
        }
        self.update(&svc, spec).await?;
        let svc = self.services().await?.remove(&unit).unwrap_or(svc);
        if svc.launched {
            self.launch_and_wait(std::slice::from_ref(&svc)).await?;
            self.wait_at_most(&svc, count as usize).await?;
        }
        println!("{}: scaled to {count}", unit.unit_name(&self.prefix));
        Ok(())
    }

    /// Waits until no more than `count` of `svc`'s tasks run.
    async fn wait_at_most(&self, svc: &Svc, count: usize) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.running_tasks(&svc.id).await? > count {
            if Instant::now() > deadline {
                return Err(Error::Message(format!(
                    "{} still runs more than {count} tasks after 60 s",
                    svc.unit
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{TaskSpec, TaskSpecPlacement};

    use super::*;

    fn node(id: &str, ready: bool) -> Node {
        Node {
            id: id.to_owned(),
            hostname: id.to_owned(),
            addr: format!("10.0.0.{}", id.len()),
            manager: true,
            ready,
        }
    }

    fn pinned(component: Component, to: &str) -> Svc {
        Svc {
            unit: Unit::single(component),
            id: component.name().to_owned(),
            version: 1,
            spec: ServiceSpec {
                task_template: Some(TaskSpec {
                    placement: Some(TaskSpecPlacement {
                        constraints: Some(vec![
                            "node.role==manager".to_owned(),
                            format!("node.id=={to}"),
                        ]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            launched: true,
        }
    }

    #[test]
    fn the_data_hosts_are_where_their_services_are_pinned_even_when_down() {
        let nodes = [node("a", true), node("bb", false), node("ccc", true)];
        let etcd_hosts = [nodes[0].clone()];
        let none = BTreeMap::new();
        let (database, registry) = data_hosts(&none, &nodes, &etcd_hosts);
        assert_eq!(database.map(|n| n.id.as_str()), Some("a"));
        assert_eq!(registry.map(|n| n.id.as_str()), Some("a"));
        let installed = BTreeMap::from([
            (
                Unit::single(Component::Database),
                pinned(Component::Database, "ccc"),
            ),
            (
                Unit::single(Component::Registry),
                pinned(Component::Registry, "bb"),
            ),
        ]);
        let (database, registry) = data_hosts(&installed, &nodes, &etcd_hosts);
        assert_eq!(database.map(|n| n.id.as_str()), Some("ccc"));
        assert_eq!(registry.map(|n| n.id.as_str()), Some("bb"));
    }
}
