//! `deisctl restore database <host>` and `deisctl restore registry <host>`: the database (with
//! Redis, which sits with it) or the registry of a lost host started again on another host from
//! the backup's copies (`deploy/images/backup-entrypoint`: a base backup and the WAL streamed
//! since, a Redis replica's append-only file, a registry's storage).
//!
//! The copy travels through deisctl: a tar stream out of the backup's volume on its host and
//! into a new data volume on the chosen one (each through that host's own engine). The
//! database's entrypoint recovers from it (the base backup, then every WAL record streamed
//! after it); the registry's storage is the copy itself. Then the services that use the moved
//! one are updated with its new address (the controllers, the loggers, the registry proxies),
//! and the backup starts a new copy from the restored data, on a host other than theirs.

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt;

use super::lifecycle::{Svc, data_hosts};
use super::nodes::{self, Node};
use super::replace::installed_members;
use super::services::{self, Plan};
use super::{SwarmPlatform, certs};
use crate::Error;
use crate::platform::component::{Component, LABEL_PLATFORM, Unit};
use crate::platform::settings::{self, Settings};
use crate::platform::spec::{self, BACKUP_DIR, ClusterPlaces, Context, StoreAddr};

/// What a restore moves: the copies it brings, the services it moves and the ones that reach
/// them.
struct Restored {
    component: Component,
    copies: &'static [Copy],
    moved: &'static [Component],
    users: &'static [Component],
}

/// One copy in the backup's volume and the component whose volume it goes to.
struct Copy {
    to: Component,
    /// Under the backup's volume.
    from: &'static str,
    /// The shell that puts the copy (uploaded into the volume's root, `/data`) in place.
    place: &'static str,
}

const DATABASE: Restored = Restored {
    component: Component::Database,
    copies: &[
        Copy {
            to: Component::Database,
            from: "pg/current",
            // The entrypoint recovers from restore/{base,wal}.
            place: "mv /data/current /data/restore && chown 999:999 /data && chmod 0700 /data",
        },
        Copy {
            to: Component::Cache,
            from: "redis",
            // The replica's append-only file (and snapshot) are the new Redis's.
            place: "cd /data/redis && for f in *; do mv \"$f\" /data/; done && cd / && rmdir /data/redis",
        },
    ],
    moved: &[Component::Database, Component::Cache],
    users: &[Component::Controller, Component::Logger, Component::Backup],
};

const REGISTRY: Restored = Restored {
    component: Component::Registry,
    copies: &[Copy {
        to: Component::Registry,
        from: "registry",
        // The backup's registry storage is the registry's.
        place: "mv /data/registry/docker /data/docker && rmdir /data/registry",
    }],
    moved: &[Component::Registry],
    users: &[Component::RegistryProxy, Component::Backup],
};

fn docker_failed(what: &str, node: &Node, e: bollard::errors::Error) -> Error {
    Error::Message(format!(
        "could not {what} on {} ({e}); see docker info there",
        node.machine()
    ))
}

impl SwarmPlatform {
    /// Restores `component` (the database or the registry) from the backup onto `host`; the
    /// other one too when its host is lost as well (the backup moves with the first, and the
    /// copy of the second would stay behind on its old host).
    pub(crate) async fn restore(&self, component: Component, host: &str) -> Result<(), Error> {
        let installed = self.services().await?;
        let nodes = self.nodes().await?;
        let lost = |c: Component| -> Result<bool, Error> {
            let Some(svc) = installed.get(&Unit::single(c)) else {
                return Ok(false);
            };
            match svc
                .pinned_to()
                .and_then(|id| nodes.iter().find(|n| n.id == id))
                .filter(|n| n.ready)
            {
                Some(up) if c == component => Err(Error::Message(format!(
                    "the {}'s host {} is up; restore is for a lost host (docker node ls shows it Down)",
                    c.name(),
                    up.machine()
                ))),
                Some(_) => Ok(false),
                None => Ok(true),
            }
        };
        let mut restored: Vec<&Restored> = Vec::new();
        for what in [&DATABASE, &REGISTRY] {
            if what.component == component {
                if !installed.contains_key(&Unit::single(component)) {
                    return Err(Error::Message(format!(
                        "the {} is not installed; nothing to restore",
                        component.name()
                    )));
                }
                lost(component)?;
                restored.push(what);
            } else if lost(what.component)? {
                println!(
                    "{}: its host is lost too; restoring it as well",
                    what.component.name()
                );
                restored.push(what);
            }
        }
        if restored.iter().all(|r| r.component != component) {
            return Err(Error::Message(
                "deisctl restore brings back the database or the registry of a lost host (deisctl restore database <host>)".to_owned(),
            ));
        }
        let Some(backup) = installed.get(&Unit::single(Component::Backup)) else {
            return Err(Error::Message(
                "the backup is not installed, so there is no copy to restore from; deisctl install backup keeps one from now on".to_owned(),
            ));
        };
        let (target, _) = self.ready_node(host).await?;
        let source = self.backup_host(backup, &nodes).await?;
        let store = self.connect_store().await?;
        let settings = settings::load(store.as_ref()).await?;
        let source_engine = self.access.node_engine(&source).await?;
        let target_engine = self.access.node_engine(&target).await?;
        let copies: Vec<&Copy> = restored
            .iter()
            .flat_map(|r| r.copies)
            .filter(|c| installed.contains_key(&Unit::single(c.to)))
            .collect();
        println!(
            "copying the backup from {} to {}...",
            source.machine(),
            target.machine()
        );
        let mut volumes = Vec::new();
        let copied = async {
            for copy in &copies {
                let volume = self.fresh_volume(&target_engine, &target, copy.to).await?;
                volumes.push(volume.clone());
                let bytes = self
                    .copy(
                        (&source_engine, &source, &settings),
                        (&target_engine, &target, &volume),
                        copy,
                    )
                    .await?;
                println!(
                    "{}: {:.1} MB copied",
                    copy.to.name(),
                    bytes as f64 / 1_000_000.0
                );
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = copied {
            // Nothing half-copied is left to refuse the next attempt.
            for volume in &volumes {
                let _ = target_engine
                    .remove_volume(
                        volume,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await;
            }
            return Err(e);
        }
        self.move_services(&restored, &target, &settings).await?;
        for what in &restored {
            println!("{}: running on {}", what.component.name(), target.machine());
        }
        Ok(())
    }

    /// The host whose backup holds a complete copy: where its task runs.
    async fn backup_host(&self, backup: &Svc, nodes: &[Node]) -> Result<Node, Error> {
        let tasks = self.tasks(&backup.id).await?;
        tasks
            .iter()
            .filter(|t| {
                t.status.as_ref().and_then(|s| s.state) == Some(bollard::models::TaskState::RUNNING)
            })
            .filter_map(|t| t.node_id.as_deref())
            .find_map(|id| nodes.iter().find(|n| n.id == id && n.ready))
            .cloned()
            .ok_or_else(|| {
                Error::Message(
                    "the backup runs on no host that is up, so its copy cannot be read; deisctl status backup says why".to_owned(),
                )
            })
    }

    /// The component's data volume made on `node`, refused if one is there already (the data
    /// of an earlier run, which a restore must not mix with the copy).
    async fn fresh_volume(
        &self,
        engine: &Docker,
        node: &Node,
        component: Component,
    ) -> Result<String, Error> {
        let Some((suffix, _)) = component.volumes().first() else {
            return Err(Error::Message(format!(
                "the {} keeps no volume",
                component.name()
            )));
        };
        let volume = spec::volume_name(&self.prefix, suffix);
        if engine.inspect_volume(&volume).await.is_ok() {
            return Err(Error::Message(format!(
                "{} has a volume {volume} already; remove it there (docker volume rm {volume}) or choose another host",
                node.machine()
            )));
        }
        engine
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(std::collections::HashMap::from([(
                    LABEL_PLATFORM.to_owned(),
                    self.prefix.clone(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(|e| docker_failed("create a volume", node, e))?;
        Ok(volume)
    }

    /// Streams the copy out of the backup's volume into `volume` and puts it in place; the
    /// bytes copied.
    async fn copy(
        &self,
        (source_engine, source, settings): (&Docker, &Node, &Settings),
        (target_engine, target, volume): (&Docker, &Node, &str),
        what: &Copy,
    ) -> Result<u64, Error> {
        let backup_volume = Component::Backup
            .volumes()
            .first()
            .map(|(suffix, _)| spec::volume_name(&self.prefix, suffix))
            .unwrap_or_default();
        let image = settings.image(Component::Backup, &self.tag);
        let reader = helper(
            source_engine,
            source,
            &format!("{}-restore-read", self.prefix),
            &image,
            (&backup_volume, BACKUP_DIR),
            None,
        )
        .await?;
        let writer = helper(
            target_engine,
            target,
            &format!("{}-restore-write", self.prefix),
            &image,
            (volume, "/data"),
            Some(what.place),
        )
        .await;
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                remove(source_engine, &reader).await;
                return Err(e);
            }
        };
        let failed = |e: String| {
            Error::Message(format!(
                "the copy from {} to {} failed ({e}); run deisctl restore again",
                source.machine(),
                target.machine()
            ))
        };
        // Spooled through a temporary file here: both engines are reached over one SSH
        // connection, where a download and an upload streamed into each other wait on each
        // other's flow control.
        let spooled = spool(
            source_engine.download_from_container(
                &reader,
                Some(
                    DownloadFromContainerOptionsBuilder::new()
                        .path(&format!("{BACKUP_DIR}/{}", what.from))
                        .build(),
                ),
            ),
        )
        .await;
        remove(source_engine, &reader).await;
        let (file, bytes) = match spooled {
            Ok(spooled) => spooled,
            Err(e) => {
                remove(target_engine, &writer).await;
                return Err(failed(e));
            }
        };
        let uploaded = target_engine
            .upload_to_container(
                &writer,
                Some(UploadToContainerOptionsBuilder::new().path("/data").build()),
                bollard::body_try_stream(chunks(file)),
            )
            .await
            .map_err(|e| failed(e.to_string()));
        let placed = match uploaded {
            Ok(()) => run_to_end(target_engine, target, &writer).await,
            Err(e) => Err(e),
        };
        remove(target_engine, &writer).await;
        placed?;
        Ok(bytes)
    }

    /// Pins the moved services to `target` and gives every service that reaches them the new
    /// address; waits until they run.
    async fn move_services(
        &self,
        restored: &[&Restored],
        target: &Node,
        settings: &Settings,
    ) -> Result<(), Error> {
        let installed = self.services().await?;
        let nodes = self.nodes().await?;
        let etcd_hosts = nodes::etcd_hosts(&nodes);
        let (mut database, mut registry) = data_hosts(&installed, &nodes, &etcd_hosts);
        for what in restored {
            match what.component {
                Component::Database => database = Some(target),
                _ => registry = Some(target),
            }
        }
        let moved: Vec<Component> = restored.iter().flat_map(|r| r.moved).copied().collect();
        let mut touched = moved.clone();
        for user in restored.iter().flat_map(|r| r.users) {
            if !touched.contains(user) {
                touched.push(*user);
            }
        }
        let ready = nodes.iter().filter(|n| n.ready).count();
        let plan = Plan {
            prefix: &self.prefix,
            etcd_hosts: &etcd_hosts,
            routers: 0,
            hosts: u32::try_from(ready).unwrap_or(1),
            managers: u32::try_from(nodes.iter().filter(|n| n.ready && n.manager).count())
                .unwrap_or(1),
            database,
            registry,
        };
        // The members where they run now (some may have moved since the install).
        let members: BTreeMap<u32, (String, String)> = installed_members(&installed);
        let store = StoreAddr {
            endpoints: members
                .values()
                .map(|(_, addr)| format!("https://{addr}:{}", self.etcd_port))
                .collect::<Vec<_>>()
                .join(","),
            namespace: self.namespace.clone(),
        };
        let app_network = self.app_network();
        let mut updated = Vec::new();
        for component in &touched {
            let Some(svc) = installed.get(&Unit::single(*component)) else {
                continue;
            };
            let secrets = certs::ensure_client(&self.docker, &self.prefix, *component).await?;
            let places = ClusterPlaces {
                database_host: database.map(|n| n.addr.clone()).unwrap_or_default(),
                registry_host: registry.map(|n| n.addr.clone()).unwrap_or_default(),
                etcd_tls_env: certs::tls_env(&secrets),
            };
            let ctx = Context {
                prefix: &self.prefix,
                tag: &self.tag,
                store: &store,
                settings,
                database_installed: installed.contains_key(&Unit::single(Component::Database)),
                cache_installed: installed.contains_key(&Unit::single(Component::Cache)),
                app_network: &app_network.name,
                cluster: Some(&places),
            };
            let body = spec::component(&ctx, svc.unit);
            let placement = if moved.contains(component) || *component == Component::Backup {
                services::placement(svc.unit, &plan)
            } else {
                let mut kept = svc.placement();
                let stopped = services::stopped_constraint(&self.prefix);
                kept.constraints.retain(|c| *c != stopped);
                kept
            };
            let spec = services::service(
                &self.prefix,
                svc.unit,
                body,
                &placement,
                &secrets,
                svc.launched,
            );
            let env = spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.env.clone())
                .unwrap_or_default();
            self.update(svc, spec).await?;
            if svc.launched {
                updated.push((svc.clone(), env));
            }
        }
        self.wait_updated(&updated).await
    }

    /// Waits until each service runs a task with its new settings (one is enough: a
    /// controller pinned to a lost host waits for `deisctl replace controller`).
    async fn wait_updated(&self, updated: &[(Svc, Vec<String>)]) -> Result<(), Error> {
        let deadline = std::time::Instant::now() + self.start_timeout;
        for (svc, env) in updated {
            let name = svc.unit.unit_name(&self.prefix);
            loop {
                let tasks = self.tasks(&svc.id).await?;
                let up = tasks.iter().any(|t| {
                    t.status.as_ref().and_then(|s| s.state)
                        == Some(bollard::models::TaskState::RUNNING)
                        && t.spec
                            .as_ref()
                            .and_then(|s| s.container_spec.as_ref())
                            .and_then(|c| c.env.as_ref())
                            == Some(env)
                });
                if up {
                    println!("{name}: running with the new address");
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(Error::Message(format!(
                        "{name} did not run with the new address within {} s; see deisctl status {} and deisctl journal {}",
                        self.start_timeout.as_secs(),
                        svc.unit.component.name(),
                        svc.unit.component.name()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }
}

/// The tar stream written to a temporary file (removed when dropped), rewound: the file and
/// its size.
async fn spool(
    tar: impl futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>>,
) -> Result<(tokio::fs::File, u64), String> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let file = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
    let mut file = tokio::fs::File::from_std(file);
    let mut tar = std::pin::pin!(tar);
    let mut bytes = 0;
    while let Some(chunk) = tar.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("the temporary file: {e}"))?;
        bytes += chunk.len() as u64;
    }
    file.flush()
        .await
        .map_err(|e| format!("the temporary file: {e}"))?;
    file.rewind()
        .await
        .map_err(|e| format!("the temporary file: {e}"))?;
    Ok((file, bytes))
}

/// A file as a stream of chunks (ending at its end or at its first error).
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// A stopped container on `node` with `volume` mounted at `at`, running `script` (as root)
/// when started; its id.
async fn helper(
    engine: &Docker,
    node: &Node,
    name: &str,
    image: &str,
    (volume, at): (&str, &str),
    script: Option<&str>,
) -> Result<String, Error> {
    // One left by an interrupted restore goes first.
    remove(engine, name).await;
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        user: Some("0".to_owned()),
        entrypoint: Some(vec!["/bin/sh".to_owned(), "-c".to_owned()]),
        cmd: Some(vec![script.unwrap_or("true").to_owned()]),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                typ: Some(MountType::VOLUME),
                source: Some(volume.to_owned()),
                target: Some(at.to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    engine
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .map(|c| c.id)
        .map_err(|e| docker_failed(&format!("create a container of {image}"), node, e))
}

/// Starts the helper and waits for its script to succeed.
async fn run_to_end(engine: &Docker, node: &Node, id: &str) -> Result<(), Error> {
    engine
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|e| docker_failed("start the restore's helper container", node, e))?;
    let mut wait = engine.wait_container(id, None::<WaitContainerOptions>);
    match wait.next().await {
        Some(Ok(r)) if r.status_code == 0 => Ok(()),
        // bollard reports a non-zero exit as an error.
        Some(Ok(r)) => Err(Error::Message(format!(
            "putting the copy in place on {} exited with {}; run deisctl restore again",
            node.machine(),
            r.status_code
        ))),
        Some(Err(e)) => Err(docker_failed("put the copy in place", node, e)),
        None => Err(Error::Message(format!(
            "the restore's helper container on {} vanished",
            node.machine()
        ))),
    }
}

async fn remove(engine: &Docker, id: &str) {
    let _ = engine
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
}
