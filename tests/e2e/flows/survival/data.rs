//! The data host lost: the first host, with the database, Redis, the registry, etcd's first
//! member, a router and the operator's tunnel. The apps keep serving from the routers' tables;
//! the operator goes through another host and runs `deisctl restore database <host>`, which
//! brings the database, Redis and the registry back there from the backup on a third host;
//! then every account, app, release, config value, log line and image is there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use deis_testkit::eventually;

use super::faults::{Faults, said};
use super::{Cost, kept};

/// Accept headers for a manifest as the registry stores it.
const MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// The registry's repositories and their tags at `addr`.
fn images(addr: SocketAddr) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let get = |path: &str| -> Result<serde_json::Value, String> {
        match deis_testkit::http_get(addr, path) {
            Ok((200, body)) => serde_json::from_str(&body).map_err(|e| format!("{path}: {e}")),
            other => Err(format!("{path}: {other:?}")),
        }
    };
    let catalog = get("/v2/_catalog?n=1000")?;
    let mut found = BTreeMap::new();
    for repo in catalog["repositories"].as_array().into_iter().flatten() {
        let repo = repo.as_str().unwrap_or_default().to_owned();
        let tags = get(&format!("/v2/{repo}/tags/list"))?;
        let tags: BTreeSet<String> = tags["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        found.insert(repo, tags);
    }
    Ok(found)
}

/// Whether `repo:tag` is whole at `addr`: its manifest, its config and every layer.
fn whole(addr: SocketAddr, repo: &str, tag: &str) -> Result<(), String> {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let manifest = match deis_testkit::http_request(addr, "GET", &path, &[("Accept", MANIFESTS)]) {
        Ok((200, body)) => {
            serde_json::from_str::<serde_json::Value>(&body).map_err(|e| format!("{path}: {e}"))?
        }
        other => return Err(format!("{path}: {other:?}")),
    };
    let blobs = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .filter_map(|b| b["digest"].as_str());
    for digest in blobs {
        let blob = format!("/v2/{repo}/blobs/{digest}");
        match deis_testkit::http_request(addr, "HEAD", &blob, &[]) {
            Ok((200, _)) => {}
            other => return Err(format!("{blob}: {other:?}")),
        }
    }
    Ok(())
}

/// The routes in etcd, read through the members on `hosts` (for a failure).
async fn route_keys(platform: &crate::setup::ClusterPlatform, hosts: &[usize]) -> String {
    let endpoints = hosts
        .iter()
        .map(|i| format!("https://{}:2379", platform.host(*i)))
        .collect();
    // deisctl's own client certificate, made by the install (etcd serves TLS only).
    let dir = platform
        .home
        .path()
        .join(".deis")
        .join(&platform.prefix)
        .join("etcd");
    let config = deis_store::StoreConfig::Etcd {
        endpoints,
        namespace: String::new(),
        tls: Some(deis_store::EtcdTls {
            ca_file: Some(dir.join("ca.pem")),
            cert_file: Some(dir.join("deisctl.pem")),
            key_file: Some(dir.join("deisctl-key.pem")),
        }),
    };
    let listing = match deis_store::connect(&config).await {
        Ok(store) => store.list("/deis/services/").await,
        Err(e) => Err(e),
    };
    match listing {
        Ok(listing) => listing
            .kvs
            .iter()
            .map(|kv| format!("{} = {} (lease {:?})\n", kv.key, kv.value, kv.lease))
            .collect(),
        Err(e) => format!("routes not read: {e}\n"),
    }
}

/// What the routers of `hosts` say about backends, and the controllers' and routers' logs (for
/// a failure).
pub(super) fn routes_seen(platform: &crate::setup::ClusterPlatform, hosts: &[usize]) -> String {
    let mut text = String::new();
    for i in hosts {
        let metrics =
            deis_testkit::http_get(SocketAddr::from((platform.host(*i), 9090)), "/metrics")
                .map(|(_, body)| body)
                .unwrap_or_else(|e| e.to_string());
        text.push_str(&format!("router on host {i}:\n"));
        for line in metrics
            .lines()
            .filter(|l| l.contains("backend") && !l.starts_with('#'))
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    for (component, lines) in [("controller", "1000"), ("router", "400")] {
        let journal = platform.deisctl(&["journal", component, "-n", lines]);
        text.push_str(&format!("the {component}s' log:\n"));
        let out = String::from_utf8_lossy(&journal.stdout).into_owned()
            + &String::from_utf8_lossy(&journal.stderr);
        for line in out
            .lines()
            .filter(|l| !l.contains("Advertising"))
            .filter(|l| !l.contains("deis_router::access"))
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The Swarm's tasks of `app`'s services, as a manager on `host` sees them (for a failure).
fn app_tasks_seen(platform: &crate::setup::ClusterPlatform, host: usize, app: &str) -> String {
    let docker = |args: &[&str]| -> Vec<String> {
        platform
            .cluster
            .docker(host)
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut text = format!("the app's tasks as host {host} sees them:\n");
    let label = format!("label=deis.app={app}");
    for service in docker(&["service", "ls", "-q", "--filter", &label]) {
        let ids = docker(&["service", "ps", "-q", "--no-trunc", &service]);
        let mut args = vec![
            "inspect",
            "--format",
            "{{.ID}} slot={{.Slot}} node={{.NodeID}} want={{.DesiredState}} state={{.Status.State}} created={{.CreatedAt}} ports={{json .Status.PortStatus}}",
        ];
        args.extend(ids.iter().map(String::as_str));
        for line in docker(&args) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    for line in docker(&["node", "ls"]) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

impl Faults<'_> {
    /// Host `data` (0) lost while the workstation and the client go through `survivors`.
    pub(crate) async fn data_host_lost(&self, data: usize, survivors: &[usize]) -> Cost {
        let platform = self.platform;
        let registry = SocketAddr::from((platform.host(data), 5001));
        let before = images(registry).expect("the registry's images");
        assert!(
            before.contains_key(&self.day.app),
            "the app's images: {before:?}"
        );
        // Copied within seconds of a push: the test waits for the copy, as the promise is
        // for images pushed before that.
        let (at, backup) = platform.container_of("backup");
        assert_ne!(at, data, "the backup is on another host than the data");
        eventually(
            Duration::from_secs(60),
            "the backup's copy of every image",
            || async {
                let mut missing = Vec::new();
                for (repo, tags) in &before {
                    let url = format!("http://127.0.0.1:5002/v2/{repo}/tags/list");
                    let out = platform
                        .cluster
                        .docker(at)
                        .args(["exec", &backup, "wget", "-q", "-O-", &url])
                        .output()
                        .map_err(|e| e.to_string())?;
                    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
                    missing.extend(
                        tags.iter()
                            .filter(|t| !listed.contains(&format!("\"{t}\"")))
                            .map(|t| format!("{repo}:{t}")),
                    );
                }
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            },
        )
        .await;

        let target = survivors[0];
        let target_name = platform.cluster.host(target).name().to_owned();
        platform.use_entry(target);
        let settled = self.traffic.sent() + 50;
        eventually(
            Duration::from_secs(30),
            "requests after the switch",
            || async {
                if self.traffic.sent() > settled {
                    Ok(())
                } else {
                    Err(self.traffic.sent().to_string())
                }
            },
        )
        .await;
        let mark = self.traffic.mark();
        platform.cluster.kill_host(data);

        // Users: a change is refused while the database is away.
        let refused = eventually(
            Duration::from_secs(90),
            "a change refused without the database",
            || async {
                let ran = self.change("data-lost").await;
                if ran.ok {
                    Err(format!("taken: {}", ran.out))
                } else if !ran.out.contains("database cannot be reached") {
                    Err(format!("refused without saying why: {}", ran.out))
                } else {
                    Ok(ran.out)
                }
            },
        )
        .await;

        // The operator, once the Swarm says the host is down.
        let restoring = Instant::now();
        let restored = eventually(
            Duration::from_secs(120),
            "deisctl restore database",
            || async {
                let run = tokio::process::Command::from(platform.deisctl_command(&[
                    "restore",
                    "database",
                    &target_name,
                ]))
                .kill_on_drop(true)
                .output();
                let out = tokio::time::timeout(Duration::from_secs(300), run)
                    .await
                    .unwrap_or_else(|_| {
                        panic!("deisctl restore database {target_name} did not end in 5 minutes")
                    })
                    .map_err(|e| e.to_string())?;
                let said = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if out.status.success() {
                    Ok(said)
                } else if said.contains("is up") {
                    Err(said)
                } else {
                    panic!("deisctl restore database {target_name}: {said}");
                }
            },
        )
        .await;
        let restore_took = restoring.elapsed();
        assert!(
            restored.contains("registry: its host is lost too"),
            "the registry restored with the database: {restored}"
        );
        eventually(Duration::from_secs(120), "changes taken again", || async {
            let ran = self.change("restored").await;
            if ran.ok { Ok(()) } else { Err(ran.out) }
        })
        .await;
        let recovered = mark.at.elapsed();

        // Every image the registry had, whole, on the new host.
        let moved = SocketAddr::from((platform.host(target), 5001));
        let after = images(moved).expect("the restored registry's images");
        for (repo, tags) in &before {
            let kept = after.get(repo).cloned().unwrap_or_default();
            assert!(
                tags.is_subset(&kept),
                "{repo}: {tags:?} before, {kept:?} after"
            );
            for tag in tags {
                whole(moved, repo, tag).unwrap_or_else(|e| panic!("{repo}:{tag}: {e}"));
            }
        }
        // The app at full scale on the surviving hosts, and a copy being made again
        // elsewhere than the restored data.
        let scaled = super::try_at_full_scale(
            platform,
            self.traffic,
            survivors,
            &self.day.app,
            Instant::now(),
            Duration::from_secs(120),
        )
        .await;
        if let Err(last) = scaled {
            panic!(
                "the app not at full scale 120 s after the restore: {last}\nroutes in etcd:\n{}{}{}",
                route_keys(platform, survivors).await,
                app_tasks_seen(platform, target, &self.day.app),
                routes_seen(platform, survivors)
            );
        }
        let full_scale = mark.at.elapsed();
        self.healthy("backup").await;
        let (backup_at, _) = platform.container_of("backup");
        assert_ne!(
            backup_at, target,
            "the backup left the restored data's host"
        );
        let logs = kept::ok(self.day, &["logs", "-n", "5"]).await;
        assert!(!logs.trim().is_empty(), "the app's log after the restore");

        let seen = self.traffic.since(mark);
        let late = seen.failed_after(full_scale);
        assert!(
            late.is_empty(),
            "requests failed after the app was at full scale again ({full_scale:?}): {late:?}"
        );
        Cost {
            fault: "data host lost (database, Redis, registry), restored on another host",
            recovered,
            seen,
            users_saw: format!(
                "changes refused until the restore: {}; deisctl restore took {:.1} s",
                said(&refused),
                restore_took.as_secs_f64()
            ),
        }
    }
}
