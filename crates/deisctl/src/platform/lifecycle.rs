//! `install`, `start`, `stop`, `restart`, `uninstall` and `scale`: the platform's containers in
//! the order of §17.3, each command undoing its own work when it fails half-way so that
//! nothing half-installed is left running.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::component::{Component, START_ORDER, Target, Unit};
use super::settings::{self, Settings};
use super::spec::{self, Context};
use super::state::UnitState;
use super::{Platform, ports};
use crate::Error;

/// Seconds a component gets to exit on `stop`.
const STOP_SECONDS: i32 = 15;

/// The units `targets` name, in start order; `routers` is the router count for `platform`.
fn wanted(targets: &[Target], routers: u32, installed: &BTreeSet<Unit>) -> BTreeSet<Unit> {
    let mut units = BTreeSet::new();
    for target in targets {
        match target {
            Target::Platform { .. } => {
                for c in START_ORDER
                    .into_iter()
                    .filter(|c| !c.swarm_only() && target.covers(Unit::single(*c)))
                {
                    if c.scalable() {
                        units.extend((1..=routers.max(1)).map(|n| Unit {
                            component: c,
                            instance: Some(n),
                        }));
                    } else {
                        units.insert(Unit::single(c));
                    }
                }
            }
            Target::Component {
                component,
                instance,
            } => match instance {
                Some(n) => {
                    units.insert(Unit {
                        component: *component,
                        instance: Some(*n),
                    });
                }
                None => {
                    let present: Vec<Unit> = installed
                        .iter()
                        .copied()
                        .filter(|u| u.component == *component)
                        .collect();
                    if present.is_empty() {
                        units.insert(Unit::single(*component));
                    } else {
                        units.extend(present);
                    }
                }
            },
        }
    }
    units
}

fn is_platform(targets: &[Target]) -> bool {
    targets.iter().any(|t| matches!(t, Target::Platform { .. }))
}

impl Platform {
    async fn installed(&self) -> Result<BTreeSet<Unit>, Error> {
        Ok(self
            .engine
            .units()
            .await?
            .into_iter()
            .map(|(u, _)| u)
            .collect())
    }

    /// Installed units the targets name, in start order; an error names a target with none.
    async fn installed_targets(&self, targets: &[Target]) -> Result<Vec<Unit>, Error> {
        let installed = self.installed().await?;
        let mut units = BTreeSet::new();
        for target in targets {
            let matching: Vec<Unit> = installed
                .iter()
                .copied()
                .filter(|u| target.covers(*u))
                .collect();
            if matching.is_empty() {
                return Err(Error::Message(format!(
                    "{target} is not installed; run deisctl install {target}"
                )));
            }
            units.extend(matching);
        }
        Ok(units.into_iter().collect())
    }

    async fn state(&self, unit: Unit) -> Result<Option<UnitState>, Error> {
        let name = unit.container_name(&self.prefix);
        Ok(self.engine.inspect(&name).await?.map(|c| UnitState::of(&c)))
    }

    /// Starts the platform's etcd if it is installed here and not running, so that settings
    /// can be read.
    async fn ensure_store(&self, installed: &BTreeSet<Unit>) -> Result<(), Error> {
        let etcd = Unit::single(Component::Etcd);
        if installed.contains(&etcd) && !self.state(etcd).await?.is_some_and(|s| s.ready()) {
            self.start_unit(etcd, &mut Vec::new()).await?;
        }
        Ok(())
    }

    pub(crate) async fn install(&self, targets: &[Target], routers: u32) -> Result<(), Error> {
        let installed = self.installed().await?;
        let mut units = wanted(targets, routers, &installed);
        if let Some(unit) = units.iter().find(|u| u.component.swarm_only()) {
            return Err(Error::Message(format!(
                "{} runs only on a Swarm (DEISCTL_SCHEDULER=swarm): on one host the controller keeps the apps' firewall and there is no other host to copy the data to",
                unit.component.name()
            )));
        }
        if self.etcd.is_none() && units.remove(&Unit::single(Component::Etcd)) {
            println!(
                "etcd at {} is not on this host; the platform uses it as it is",
                self.store.endpoints
            );
        }
        if is_platform(targets) {
            println!("Installing Deis...");
        }
        let volumes_before: BTreeSet<String> = self.engine.volumes().await?.into_iter().collect();
        let mut created = Vec::new();
        let result = self.install_units(&units, &installed, &mut created).await;
        if let Err(e) = result {
            self.roll_back(&created, &volumes_before).await;
            return Err(e);
        }
        if is_platform(targets) {
            println!("Done.");
            println!("Please run `deisctl start platform` to boot up Deis.");
        }
        Ok(())
    }

    async fn install_units(
        &self,
        units: &BTreeSet<Unit>,
        installed: &BTreeSet<Unit>,
        created: &mut Vec<Unit>,
    ) -> Result<(), Error> {
        let mut phase = "";
        let etcd = Unit::single(Component::Etcd);
        if units.contains(&etcd) {
            phase = Component::Etcd.phase();
            println!("{phase}");
            if !installed.contains(&etcd) {
                let (host, port) = self.etcd.clone().unwrap_or_default();
                let image = format!("deis/etcd:{}", self.tag);
                self.require_image(&image).await?;
                ports::require_free(&host, port, false, "etcd", "--endpoint")?;
                ports::require_free(&host, port.saturating_add(1), false, "etcd", "--endpoint")?;
                created.push(etcd);
                self.create_unit(etcd, spec::etcd(&self.prefix, &self.tag, &host, port))
                    .await?;
            }
            println!("{}: loaded", etcd.unit_name(&self.prefix));
            // deisctl keeps the platform's settings in it: it runs from now on.
            self.start_unit(etcd, &mut Vec::new()).await?;
        } else {
            self.ensure_store(installed).await?;
        }
        let rest: Vec<Unit> = units.iter().copied().filter(|u| *u != etcd).collect();
        if rest.is_empty() {
            return Ok(());
        }
        let store = self.connect_store().await?;
        let settings = settings::load(store.as_ref()).await?;
        // Check everything before creating anything.
        for unit in rest.iter().filter(|u| !installed.contains(u)) {
            self.require_image(&settings.image(unit.component, &self.tag))
                .await?;
            let shares_ports = unit.instance.is_some_and(|n| n > 1);
            if !shares_ports {
                ports::require_all_free(&settings, unit.component)?;
            }
        }
        let cache_installed = installed.contains(&Unit::single(Component::Cache))
            || units.contains(&Unit::single(Component::Cache));
        let database_installed = installed.contains(&Unit::single(Component::Database))
            || units.contains(&Unit::single(Component::Database));
        let router_ports = [
            settings.port(Component::Router, "listenPort"),
            settings.port(Component::Router, "httpsListenPort"),
        ];
        let app_network = self.engine.app_network(&router_ports);
        if rest
            .iter()
            .any(|u| matches!(u.component, Component::Controller | Component::Builder))
        {
            self.engine.isolate_apps(&app_network).await?;
        }
        for unit in rest {
            if unit.component.phase() != phase {
                phase = unit.component.phase();
                println!("{phase}");
            }
            if !installed.contains(&unit) {
                let ctx = Context {
                    prefix: &self.prefix,
                    tag: &self.tag,
                    store: &self.store,
                    settings: &settings,
                    database_installed,
                    cache_installed,
                    app_network: &app_network.name,
                    cluster: None,
                };
                // Recorded first: a failed create still has volumes to take back.
                created.push(unit);
                self.create_unit(unit, spec::component(&ctx, unit)).await?;
            }
            println!("{}: loaded", unit.unit_name(&self.prefix));
        }
        Ok(())
    }

    async fn require_image(&self, image: &str) -> Result<(), Error> {
        if self.engine.has_image(image).await? {
            return Ok(());
        }
        Err(Error::Message(format!(
            "image {image} is not on the Docker engine; build the images with deploy/images/build (after cargo build --release --workspace)"
        )))
    }

    async fn create_unit(
        &self,
        unit: Unit,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<(), Error> {
        for (suffix, _) in unit.component.volumes() {
            self.engine
                .create_volume(&spec::volume_name(&self.prefix, suffix))
                .await?;
        }
        self.engine
            .create(&unit.container_name(&self.prefix), body)
            .await
    }

    /// Removes what a failed install created.
    async fn roll_back(&self, created: &[Unit], volumes_before: &BTreeSet<String>) {
        for unit in created.iter().rev() {
            let _ = self.engine.remove(&unit.container_name(&self.prefix)).await;
            for (suffix, _) in unit.component.volumes() {
                let volume = spec::volume_name(&self.prefix, suffix);
                if !volumes_before.contains(&volume) {
                    let _ = self.engine.remove_volume(&volume).await;
                }
            }
        }
    }

    pub(crate) async fn start(&self, targets: &[Target]) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Starting Deis...");
        }
        let mut started = Vec::new();
        let mut isolated = false;
        for unit in &units {
            // The apps' firewall is in the kernel only: a reboot or a firewall reload takes it
            // away, so a start that brings up the controller or the builder puts it back first
            // (etcd, which holds the router's ports, is up by then: it starts first).
            let result = if !isolated
                && matches!(unit.component, Component::Controller | Component::Builder)
            {
                isolated = true;
                self.isolate_again().await
            } else {
                Ok(())
            };
            let result = match result {
                Ok(()) => self.start_unit(*unit, &mut started).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                for unit in started.iter().rev() {
                    let _ = self
                        .engine
                        .stop(&unit.container_name(&self.prefix), STOP_SECONDS)
                        .await;
                }
                return Err(e);
            }
        }
        if is_platform(targets) {
            println!("Done.");
            self.print_welcome().await;
        }
        Ok(())
    }

    /// Sets the apps' network firewall again, with the router's ports from the store.
    async fn isolate_again(&self) -> Result<(), Error> {
        let store = self.connect_store().await?;
        let settings = settings::load(store.as_ref()).await?;
        let network = self.engine.app_network(&[
            settings.port(Component::Router, "listenPort"),
            settings.port(Component::Router, "httpsListenPort"),
        ]);
        self.engine.isolate_apps(&network).await
    }

    /// Starts one unit unless it runs, and waits until it is healthy.
    async fn start_unit(&self, unit: Unit, started: &mut Vec<Unit>) -> Result<(), Error> {
        let unit_name = unit.unit_name(&self.prefix);
        let container = unit.container_name(&self.prefix);
        let Some(before) = self.state(unit).await? else {
            return Err(Error::Message(format!(
                "{unit_name} is not installed; run deisctl install {unit}"
            )));
        };
        if !before.running() {
            self.engine.start(&container).await?;
            started.push(unit);
        }
        let deadline = Instant::now() + self.start_timeout;
        let mut shown = String::new();
        loop {
            let Some(now) = self.state(unit).await? else {
                return Err(Error::Message(format!(
                    "The service '{unit_name}' failed while starting: its container was removed"
                )));
            };
            if now.label() != shown {
                shown = now.label();
                println!("{unit_name}: {shown}");
            }
            if now.ready() {
                return Ok(());
            }
            let failure = if now.restarts > before.restarts || now.sub == "failed" {
                Some(format!("it exited with code {}", now.exit_code))
            } else if now.sub == "unhealthy" {
                Some(format!(
                    "its health check fails ({})",
                    now.last_check.as_deref().unwrap_or("no output")
                ))
            } else if Instant::now() > deadline {
                Some(format!(
                    "it was not healthy after {} s (last check: {})",
                    self.start_timeout.as_secs(),
                    now.last_check.as_deref().unwrap_or("none yet")
                ))
            } else {
                None
            };
            if let Some(why) = failure {
                return Err(Error::Message(format!(
                    "The service '{unit_name}' failed while starting: {why}; see deisctl journal {unit}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn print_welcome(&self) {
        let Ok(store) = self.connect_store().await else {
            return;
        };
        let Ok(settings) = settings::load(store.as_ref()).await else {
            return;
        };
        print_urls(&settings);
    }

    pub(crate) async fn stop(&self, targets: &[Target]) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Stopping Deis...");
        }
        for unit in units.iter().rev() {
            self.stop_unit(*unit).await?;
        }
        if is_platform(targets) {
            println!("Done.");
        }
        Ok(())
    }

    async fn stop_unit(&self, unit: Unit) -> Result<(), Error> {
        let unit_name = unit.unit_name(&self.prefix);
        self.engine
            .stop(&unit.container_name(&self.prefix), STOP_SECONDS)
            .await
            .map_err(|e| {
                Error::Message(format!(
                    "The service '{unit_name}' failed while stopping: {e}"
                ))
            })?;
        // Stopped on purpose: whatever the exit code, the unit is inactive now.
        let label = match self.state(unit).await? {
            Some(s) if s.running() => s.label(),
            _ => "inactive/dead".to_owned(),
        };
        println!("{unit_name}: {label}");
        Ok(())
    }

    pub(crate) async fn restart(&self, targets: &[Target]) -> Result<(), Error> {
        self.stop(targets).await?;
        self.start(targets).await
    }

    pub(crate) async fn uninstall(&self, targets: &[Target], keep_data: bool) -> Result<(), Error> {
        let platform = is_platform(targets);
        // `platform` with nothing installed still sweeps what an interrupted uninstall left.
        let units = if platform {
            let installed = self.installed().await?;
            let mut units = Vec::new();
            for unit in installed {
                if targets.iter().any(|t| t.covers(unit)) {
                    units.push(unit);
                }
            }
            units
        } else {
            self.installed_targets(targets).await?
        };
        if platform {
            println!("Uninstalling Deis...");
        }
        for unit in units.iter().rev() {
            // Stopped first, so that each gets its drain (the database its clean shutdown).
            self.engine
                .stop(&unit.container_name(&self.prefix), STOP_SECONDS)
                .await?;
            self.engine
                .remove(&unit.container_name(&self.prefix))
                .await?;
            println!("{}: destroyed", unit.unit_name(&self.prefix));
        }
        if platform && self.installed().await?.is_empty() {
            // The apps' and the builder's containers carry the platform's label too.
            for id in self.engine.container_ids(&[]).await? {
                self.engine.remove(&id).await?;
            }
            self.engine.remove_app_network().await;
            if !keep_data {
                self.engine.remove_app_images().await;
            }
            if keep_data {
                println!("Kept the data volumes (--keep-data).");
            } else {
                for volume in self.engine.volumes().await? {
                    self.engine.remove_volume(&volume).await?;
                    println!("{volume}: removed");
                }
            }
        }
        if platform {
            println!("Done.");
        }
        Ok(())
    }

    /// `scale router=N`: starts `router@k` up to N, or removes the highest-numbered ones.
    pub(crate) async fn scale(&self, component: Component, count: u32) -> Result<(), Error> {
        component.require_scalable()?;
        let present: Vec<Unit> = self
            .installed()
            .await?
            .into_iter()
            .filter(|u| u.component == component)
            .collect();
        let highest = present.iter().filter_map(|u| u.instance).max().unwrap_or(0);
        if count as usize > present.len() {
            let mut added = Vec::new();
            let mut next = highest;
            while present.len() + added.len() < count as usize {
                next += 1;
                added.push(Target::Component {
                    component,
                    instance: Some(next),
                });
            }
            self.install(&added, 1).await?;
            return self.start(&added).await;
        }
        let mut doomed = present.clone();
        doomed.sort_by_key(|u| std::cmp::Reverse(u.instance));
        for unit in doomed.into_iter().take(present.len() - count as usize) {
            self.stop_unit(unit).await?;
            self.engine
                .remove(&unit.container_name(&self.prefix))
                .await?;
            println!("{}: destroyed", unit.unit_name(&self.prefix));
        }
        Ok(())
    }
}

/// The lines that tell a user where to go next.
pub(crate) fn print_urls(s: &Settings) {
    let controller = s.local(Component::Controller, "listenPort");
    let builder_port = s.port(Component::Builder, "listenPort");
    let router_port = s.port(Component::Router, "listenPort");
    let app_url = match router_port {
        80 => format!("http://<app>.{}", s.domain),
        port => format!("http://<app>.{}:{port}", s.domain),
    };
    println!("Please set up an administrative account. See 'deis help register'");
    println!("  deis register http://{controller}");
    println!(
        "  git remote: ssh://git@{}:{builder_port}/<app>.git",
        s.local_host
    );
    println!("  apps answer on {app_url}");
}
