//! `install`, `start`, `stop`, `restart`, `uninstall` and `scale` with `systemctl`, in the
//! order of §17.3. `install` writes the rendered unit files (fleet's "loaded"); `start` enables
//! and starts each unit (fleet's "launched": it comes back when the host boots) and waits for
//! `active/running`; `stop` disables and stops; a command that fails half-way undoes its work.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::host::quote;
use super::state::{self, UnitState};
use super::{PREFIX, SystemdPlatform, UNIT_DIR, template_of, unit_name, unit_of_file};
use crate::Error;
use crate::platform::component::{Component, START_ORDER, Target, Unit};
use crate::platform::settings;
use crate::units::{self, Rendered};

/// What a host needs before the units can run there, each check with what to do about it.
const PREFLIGHT: &str = r#"
test -x /usr/bin/docker || { echo "it has no /usr/bin/docker, which the units run: install the docker CLI there" >&2; exit 1; }
test -x /usr/bin/etcdctl || { echo "it has no /usr/bin/etcdctl, with which the database and controller units read their password: install etcd-client there" >&2; exit 1; }
[ -r /etc/environment ] && . /etc/environment
[ -n "${COREOS_PRIVATE_IPV4:-}" ] || { echo "/etc/environment does not set COREOS_PRIVATE_IPV4, the address the units give their containers: add COREOS_PRIVATE_IPV4=<the host's address> there" >&2; exit 1; }
/usr/bin/docker version >/dev/null 2>&1 || { echo "docker cannot reach the host's engine at /var/run/docker.sock: start Docker there" >&2; exit 1; }
"#;

fn is_platform(targets: &[Target]) -> bool {
    targets.iter().any(|t| matches!(t, Target::Platform { .. }))
}

/// The units `targets` name, in start order; `routers` is the router count for `platform`.
fn wanted(
    targets: &[Target],
    routers: u32,
    installed: &BTreeSet<Unit>,
) -> Result<BTreeSet<Unit>, Error> {
    let mut units = BTreeSet::new();
    for target in targets {
        match target {
            Target::Platform { .. } => {
                for c in START_ORDER {
                    if c == Component::Etcd || !target.covers(Unit::single(c)) {
                        continue;
                    }
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
                component: Component::Etcd,
                ..
            } => {
                return Err(Error::Message(
                    "etcd is the host's own service (etcd.service), not a unit deisctl installs: start it on the host with systemctl start etcd".to_owned(),
                ));
            }
            Target::Component {
                component,
                instance: Some(n),
            } => {
                units.insert(Unit {
                    component: *component,
                    instance: Some(*n),
                });
            }
            Target::Component {
                component,
                instance: None,
            } => {
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
        }
    }
    let routers = installed
        .union(&units)
        .filter(|u| u.component == Component::Router)
        .count();
    if routers > 1 {
        return Err(Error::Message(
            "a host runs one router (every deis-router@N runs the container deis-router on the same ports): install router@1 only, with --router-mesh-size=1".to_owned(),
        ));
    }
    Ok(units)
}

/// `/etc/systemd/system/deis-controller.service`.
fn path_of(unit: Unit) -> String {
    format!("{UNIT_DIR}/{}", unit_name(unit))
}

impl SystemdPlatform {
    /// The platform's units whose files are on the host, in start order.
    pub(super) async fn installed(&self) -> Result<BTreeSet<Unit>, Error> {
        let out = self
            .host
            .ok(&format!("ls -1 {UNIT_DIR}"), "listing the unit files")
            .await?;
        Ok(out.lines().filter_map(|l| unit_of_file(l.trim())).collect())
    }

    /// Installed units the targets name, in start order; an error names a target with none.
    pub(super) async fn installed_targets(&self, targets: &[Target]) -> Result<Vec<Unit>, Error> {
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
                    "{target} is not installed on {}; run deisctl install {target}",
                    self.host.name()
                )));
            }
            units.extend(matching);
        }
        Ok(units.into_iter().collect())
    }

    async fn daemon_reload(&self) -> Result<(), Error> {
        self.host
            .ok("systemctl daemon-reload", "systemctl daemon-reload")
            .await
            .map(drop)
    }

    pub(crate) async fn install(
        &self,
        targets: &[Target],
        routers: Option<u32>,
    ) -> Result<(), Error> {
        let installed = self.installed().await?;
        let mut units = wanted(targets, routers.unwrap_or(1), &installed)?;
        let ran = self.host.run(PREFLIGHT).await?;
        if !ran.success() {
            return Err(Error::Message(format!(
                "{} cannot run the units yet: {}",
                self.host.name(),
                ran.last_words()
            )));
        }
        let store = self.store().await?;
        // Makes up what a first install does (the database password the units read).
        settings::load(store.as_ref()).await?;
        let (_, rendered) = units::render(store.as_ref(), Some(self.tag.clone())).await?;
        let has_file =
            |unit: &Unit| template_of(*unit).is_some_and(|t| rendered.iter().any(|r| r.file == t));
        for unit in units.clone().iter().filter(|u| !has_file(u)) {
            let named = targets.iter().any(|t| {
                matches!(t, Target::Component { component, .. } if *component == unit.component)
            });
            if named {
                return Err(Error::Message(format!(
                    "there is no unit file for {} in systemd-units/: it runs with DEISCTL_SCHEDULER=docker or swarm only",
                    unit.component.name()
                )));
            }
            units.remove(unit);
            if !unit.component.swarm_only() {
                println!(
                    "{}: not in the unit files (systemd-units/), left out",
                    unit.component.name()
                );
            }
        }
        let mut files = Vec::new();
        for unit in units.iter().filter(|u| !installed.contains(u)) {
            let template = template_of(*unit).unwrap_or_default();
            let Some(file) = rendered.iter().find(|r| r.file == template) else {
                return Err(Error::Message(format!(
                    "this deisctl has no unit file {template} for {unit}"
                )));
            };
            files.push((*unit, file));
        }
        let images: BTreeSet<&str> = files.iter().map(|(_, f)| f.image.as_str()).collect();
        self.require_images(&images).await?;
        if is_platform(targets) {
            println!("Installing Deis...");
        }
        let mut created = Vec::new();
        let result = self.write_units(&units, &files, &mut created).await;
        if let Err(e) = result {
            for unit in &created {
                let _ = self
                    .host
                    .run(&format!("rm -f {}", quote(&path_of(*unit))))
                    .await;
            }
            let _ = self.daemon_reload().await;
            return Err(e);
        }
        if is_platform(targets) {
            println!("Done.");
            println!("Please run `deisctl start platform` to boot up Deis.");
        }
        Ok(())
    }

    /// Fails naming the first of `images` the host's engine lacks.
    async fn require_images(&self, images: &BTreeSet<&str>) -> Result<(), Error> {
        if images.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = images.iter().map(|i| quote(i)).collect();
        let missing = self
            .host
            .ok(
                &format!(
                    "for i in {}; do /usr/bin/docker image inspect --format . \"$i\" >/dev/null 2>&1 || echo \"$i\"; done",
                    names.join(" ")
                ),
                "docker image inspect",
            )
            .await?;
        match missing.lines().map(str::trim).find(|l| !l.is_empty()) {
            None => Ok(()),
            Some(image) => Err(Error::Message(format!(
                "image {image} is not on the Docker engine of {host}; load it there (docker save {image} | ssh {host} docker load) or build it there with deploy/images/build",
                host = self.host.name()
            ))),
        }
    }

    /// Writes the files of the units not yet installed (recorded in `created`), printing
    /// `<unit>: loaded` for every unit, then reloads systemd.
    async fn write_units(
        &self,
        units: &BTreeSet<Unit>,
        files: &[(Unit, &Rendered)],
        created: &mut Vec<Unit>,
    ) -> Result<(), Error> {
        let mut phase = "";
        for unit in units {
            if unit.component.phase() != phase {
                phase = unit.component.phase();
                println!("{phase}");
            }
            if let Some((_, file)) = files.iter().find(|(u, _)| u == unit) {
                let path = path_of(*unit);
                let partial = quote(&format!("{path}.deisctl"));
                created.push(*unit);
                let ran = self
                    .host
                    .run_with_input(
                        &format!("cat > {partial} && mv {partial} {}", quote(&path)),
                        file.text.as_bytes(),
                    )
                    .await?;
                if !ran.success() {
                    return Err(Error::Message(format!(
                        "cannot write {path} on {}: {}",
                        self.host.name(),
                        ran.last_words()
                    )));
                }
            }
            println!("{}: loaded", unit_name(*unit));
        }
        self.daemon_reload().await
    }

    pub(crate) async fn start(&self, targets: &[Target]) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Starting Deis...");
        }
        let mut started = Vec::new();
        for unit in &units {
            if let Err(e) = self.start_unit(*unit, &mut started).await {
                for unit in started.iter().rev() {
                    let _ = self.stop_unit(*unit).await;
                }
                return Err(e);
            }
        }
        if is_platform(targets) {
            println!("Done.");
            println!("Please set up an administrative account. See 'deis help register'");
            println!("  deis register http://{}:8000", self.address().await?);
        }
        Ok(())
    }

    /// Enables and starts one unit unless it runs, and waits until it is `active/running`,
    /// printing each state it passes through.
    async fn start_unit(&self, unit: Unit, started: &mut Vec<Unit>) -> Result<(), Error> {
        let name = unit_name(unit);
        let q = quote(&name);
        let fail = |why: String| {
            Error::Message(format!(
                "The service '{name}' failed while starting: {why}; see deisctl journal {unit}"
            ))
        };
        let before = state::one(&self.host, &name).await?;
        if before.load != "loaded" {
            return Err(Error::Message(format!(
                "{name} is not installed ({}); run deisctl install {unit}",
                before.load
            )));
        }
        if !before.running() {
            let seconds = self.start_timeout.as_secs().max(1);
            started.push(unit);
            let ran = self
                .host
                .run(&format!(
                    "systemctl reset-failed {q} 2>/dev/null; systemctl enable --quiet {q} && timeout {seconds} systemctl start {q}"
                ))
                .await?;
            match ran.status {
                0 => {}
                124 => return Err(fail(format!("systemctl start took over {seconds} s"))),
                _ => return Err(fail(ran.last_words())),
            }
        }
        let deadline = Instant::now() + self.start_timeout;
        let mut shown = String::new();
        loop {
            let now = state::one(&self.host, &name).await?;
            if now.label() != shown {
                shown = now.label();
                println!("{name}: {shown}");
            }
            if now.running() {
                return Ok(());
            }
            if now.failed() {
                return Err(fail(format!("it exited ({})", now.result)));
            }
            if Instant::now() > deadline {
                return Err(fail(format!(
                    "it was {shown} after {} s",
                    self.start_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) async fn stop(&self, targets: &[Target]) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        if is_platform(targets) {
            println!("Stopping Deis...");
        }
        for unit in units.iter().rev() {
            let now = self.stop_unit(*unit).await?;
            println!("{}: {}", unit_name(*unit), now.label());
        }
        if is_platform(targets) {
            println!("Done.");
        }
        Ok(())
    }

    /// Disables and stops one unit (`systemctl stop` returns once its container has stopped);
    /// its state then.
    async fn stop_unit(&self, unit: Unit) -> Result<UnitState, Error> {
        let name = unit_name(unit);
        let q = quote(&name);
        let ran = self
            .host
            .run(&format!(
                "systemctl disable --quiet {q}; systemctl stop {q}"
            ))
            .await?;
        if !ran.success() {
            return Err(Error::Message(format!(
                "The service '{name}' failed while stopping: {}; see deisctl journal {unit}",
                ran.last_words()
            )));
        }
        let now = state::one(&self.host, &name).await?;
        if !now.stopped() {
            return Err(Error::Message(format!(
                "The service '{name}' failed while stopping: it is {}; see deisctl status {unit}",
                now.label()
            )));
        }
        Ok(now)
    }

    pub(crate) async fn restart(&self, targets: &[Target]) -> Result<(), Error> {
        self.stop(targets).await?;
        self.start(targets).await
    }

    pub(crate) async fn uninstall(&self, targets: &[Target], keep_data: bool) -> Result<(), Error> {
        let platform = is_platform(targets);
        // `platform` with nothing installed still removes what an interrupted one left.
        let units: Vec<Unit> = if platform {
            self.installed()
                .await?
                .into_iter()
                .filter(|u| targets.iter().any(|t| t.covers(*u)))
                .collect()
        } else {
            self.installed_targets(targets).await?
        };
        if platform {
            println!("Uninstalling Deis...");
        }
        for unit in units.iter().rev() {
            self.stop_unit(*unit).await?;
            let name = unit_name(*unit);
            self.host
                .ok(
                    &format!(
                        "rm -f {} && {{ systemctl reset-failed {} 2>/dev/null; true; }}",
                        quote(&path_of(*unit)),
                        quote(&name)
                    ),
                    &format!("removing {name}"),
                )
                .await?;
            println!("{name}: destroyed");
        }
        self.daemon_reload().await?;
        if platform && self.installed().await?.is_empty() {
            if keep_data {
                println!("Kept the data volumes (--keep-data).");
            } else {
                self.remove_volumes().await?;
            }
        }
        if platform {
            println!("Done.");
        }
        Ok(())
    }

    /// Removes the volumes the units keep their data in (`deis-database-data`, ...).
    async fn remove_volumes(&self) -> Result<(), Error> {
        // etcd is the host's own, its data not in a volume of the platform's.
        for component in START_ORDER.into_iter().filter(|c| *c != Component::Etcd) {
            for (suffix, _) in component.volumes() {
                let volume = format!("{PREFIX}-{suffix}");
                let q = quote(&volume);
                let removed = self
                    .host
                    .ok(
                        &format!(
                            "if /usr/bin/docker volume inspect {q} >/dev/null 2>&1; then /usr/bin/docker volume rm {q}; fi"
                        ),
                        &format!("removing the volume {volume}"),
                    )
                    .await?;
                if !removed.trim().is_empty() {
                    println!("{volume}: removed");
                }
            }
        }
        Ok(())
    }

    /// `scale router=N`: a host runs one router, so N is 0 or 1.
    pub(crate) async fn scale(&self, component: Component, count: u32) -> Result<(), Error> {
        component.require_scalable()?;
        let target = Target::Component {
            component,
            instance: None,
        };
        let present = self
            .installed()
            .await?
            .into_iter()
            .any(|u| u.component == component);
        match count {
            0 if present => self.uninstall(&[target], true).await,
            0 => Ok(()),
            1 => {
                if !present {
                    self.install(std::slice::from_ref(&target), Some(1)).await?;
                }
                self.start(&[target]).await
            }
            _ => Err(Error::Message(format!(
                "a host runs one {} (the units share a container name and ports): scale {}=1, or add hosts",
                component.name(),
                component.name()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_is_every_unit_but_etcd_with_one_router() {
        let units =
            wanted(&[Target::Platform { stateful: true }], 1, &BTreeSet::new()).expect("wanted");
        assert!(!units.contains(&Unit::single(Component::Etcd)));
        assert_eq!(units.len(), START_ORDER.len() - 1);
        assert!(units.contains(&Unit {
            component: Component::Router,
            instance: Some(1)
        }));
        assert!(wanted(&[Target::Platform { stateful: true }], 2, &BTreeSet::new()).is_err());
        let etcd = Target::Component {
            component: Component::Etcd,
            instance: None,
        };
        assert!(wanted(&[etcd], 1, &BTreeSet::new()).is_err());
    }
}
