//! The platform on a simulated cluster: three hosts (network namespaces, each with its own
//! Docker engine and OpenSSH server, joined into a Swarm, `deis_testkit::Cluster`), installed
//! and started by `deisctl` from this test's own namespace as from an operator's workstation,
//! through an SSH tunnel to the first host (`DEISCTL_TUNNEL`). Users reach it as they would a
//! cloud's hosts: the routers on every host, the builder through any router's port 2222.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};

use deis_testkit::{Cluster, SshKeyPair, Sshd};

use super::Setup;
use super::containers::{TAG, build_images};
use crate::support::{lines, succeeded, workspace_binary};

/// A platform across a simulated cluster of its own.
///
/// Dropped, the cluster goes with everything on it, and deisctl's files with the home folder.
pub(crate) struct ClusterPlatform {
    pub(crate) cluster: Cluster,
    _sshds: Vec<Sshd>,
    key: SshKeyPair,
    pub(crate) prefix: String,
    /// The workstation's home: `~/.ssh/known_hosts` and deisctl's `~/.deis/`.
    pub(crate) home: tempfile::TempDir,
    dir: tempfile::TempDir,
    /// The host the workstation goes through: deisctl's tunnel, the manager asked about
    /// services, the router and git port users reach (the first, until it is lost).
    entry: std::sync::atomic::AtomicUsize,
}

impl ClusterPlatform {
    /// Three hosts, each with sshd; the images built on this machine; nothing installed.
    pub(crate) async fn hosts() -> ClusterPlatform {
        ClusterPlatform::with(3, 0).await
    }

    /// `managers` manager hosts and `workers` worker hosts (spares for what a lost host ran).
    pub(crate) async fn with(managers: usize, workers: usize) -> ClusterPlatform {
        build_images();
        let cluster = Cluster::start_with(managers, workers).await;
        let key = SshKeyPair::generate();
        let mut sshds = Vec::new();
        for host in cluster.hosts() {
            let sshd = Sshd::start_on_host(
                &host.netns_path(),
                &host.mount_ns_path(),
                host.addr().into(),
                &key,
            )
            .await;
            sshds.push(sshd);
        }
        let home = tempfile::tempdir().expect("a home folder");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).expect("~/.ssh");
        let known: String = sshds.iter().map(|s| s.known_hosts_line() + "\n").collect();
        std::fs::write(ssh.join("known_hosts"), known).expect("known_hosts");
        // The apps' Dockerfiles start FROM the base image, as a user's would from Docker Hub.
        cluster.load_images(&[&format!("deis/base:{TAG}")]).await;
        ClusterPlatform {
            prefix: format!("e2e-{}", deis_testkit::unique_id()),
            cluster,
            _sshds: sshds,
            key,
            home,
            dir: tempfile::tempdir().expect("temporary directory"),
            entry: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The host the workstation goes through (see `use_entry`).
    pub(crate) fn entry(&self) -> usize {
        self.entry.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From now on the workstation goes through host `i` (a manager), as an operator does
    /// when the first host is lost.
    pub(crate) fn use_entry(&self, i: usize) {
        self.entry.store(i, std::sync::atomic::Ordering::Relaxed);
    }

    /// The address of host `i` (0-based).
    pub(crate) fn host(&self, i: usize) -> Ipv4Addr {
        self.cluster.host(i).addr()
    }

    /// deisctl on the workstation, through the tunnel to the first host, ready to run.
    pub(crate) fn deisctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(workspace_binary("deisctl"));
        command
            .args(args)
            .env("HOME", self.home.path())
            .env(
                "DEISCTL_TUNNEL",
                format!("root@{}", self.host(self.entry())),
            )
            .env("DEISCTL_SSH_KEY", self.key.private_key())
            .env("DEISCTL_SCHEDULER", "swarm")
            .env("DEISCTL_PREFIX", &self.prefix)
            .env("DEISCTL_IMAGE_TAG", TAG)
            .env("DEISCTL_START_TIMEOUT", "240")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DOCKER_HOST")
            .env_remove("DEIS_ETCD_ENDPOINTS")
            .env_remove("DEIS_ETCD_NAMESPACE");
        command
    }

    /// deisctl on the workstation, through the tunnel to the first host.
    pub(crate) fn deisctl(&self, args: &[&str]) -> Output {
        self.deisctl_command(args).output().expect("deisctl runs")
    }

    /// deisctl, expecting success: what it printed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("deisctl {args:?}"), &self.deisctl(args))
    }

    /// An operator's first steps: the domain (which installs and starts etcd), the builder's
    /// stack image, `install platform` and `start platform`, each expected to succeed: what
    /// install printed and how long install and start took.
    pub(crate) fn install_and_start(&self) -> (String, std::time::Duration, std::time::Duration) {
        self.ok(&["config", "platform", "set", "domain=example.com"]);
        self.ok(&[
            "config",
            "builder",
            "set",
            &format!("stackImage=deis/stack:{TAG}"),
        ]);
        let install_at = std::time::Instant::now();
        let installed = self.ok(&["install", "platform"]);
        let install = install_at.elapsed();
        let started_at = std::time::Instant::now();
        let start = self.deisctl(&["start", "platform"]);
        assert!(
            start.status.success(),
            "start platform: {}{}\nthe host agents: {}",
            String::from_utf8_lossy(&start.stdout),
            String::from_utf8_lossy(&start.stderr),
            self.diagnose("host-agent")
        );
        (installed, install, started_at.elapsed())
    }

    /// `docker <args>` against host `i`'s engine: its output lines.
    pub(crate) fn docker(&self, i: usize, args: &[&str]) -> Vec<String> {
        let out = self
            .cluster
            .docker(i)
            .args(args)
            .output()
            .expect("docker runs");
        lines(&succeeded(&format!("docker {args:?} on host {i}"), &out))
    }

    /// What the Swarm says of a component's tasks and what they printed, for failure messages.
    pub(crate) fn diagnose(&self, component: &str) -> String {
        let service = format!("{}-{component}", self.prefix);
        let mut text = String::new();
        for args in [
            vec!["service", "ps", "--no-trunc", service.as_str()],
            vec!["service", "logs", "--tail", "30", service.as_str()],
        ] {
            if let Ok(out) = self.cluster.docker(self.entry()).args(&args).output() {
                text.push_str(&String::from_utf8_lossy(&out.stdout));
                text.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
        text
    }

    /// The host whose controller leads (two controllers: the other stands by, passing the API
    /// on to the leader, and its health says so).
    pub(crate) fn leader(&self) -> Option<usize> {
        (0..self.cluster.hosts().len()).find(|i| {
            let addr = SocketAddr::from((self.host(*i), 8000));
            matches!(
                deis_testkit::http_get(addr, "/healthz"),
                Ok((200, body)) if !body.contains("standing by")
            )
        })
    }

    /// The Swarm service of a component (`controller`, `etcd-2`, ...).
    pub(crate) fn service(&self, component: &str) -> String {
        format!("{}-{component}", self.prefix)
    }

    /// Where a component's running task is: its host and container (a replicated one: the
    /// first found); `None` while it has none running.
    pub(crate) fn try_container_of(&self, component: &str) -> Option<(usize, String)> {
        let service = self.service(component);
        let out = self
            .cluster
            .docker(self.entry())
            .args([
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}",
                &service,
            ])
            .output()
            .ok()?;
        let nodes = String::from_utf8_lossy(&out.stdout).into_owned();
        for node in nodes.lines() {
            let Some(at) = self.cluster.hosts().iter().position(|h| h.name() == node) else {
                continue;
            };
            let out = self
                .cluster
                .docker(at)
                .args([
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={service}"),
                ])
                .output()
                .ok()?;
            if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().next() {
                return Some((at, id.to_owned()));
            }
        }
        None
    }

    /// Where a component's running task is: its host and container.
    pub(crate) fn container_of(&self, component: &str) -> (usize, String) {
        self.try_container_of(component)
            .unwrap_or_else(|| panic!("no container of {} runs", self.service(component)))
    }

    /// `docker service scale <component>=<n>` on a manager that is alive (host `via`).
    pub(crate) fn scale_service(&self, via: usize, component: &str, n: usize) {
        let service = self.service(component);
        self.docker(
            via,
            &["service", "scale", "--detach", &format!("{service}={n}")],
        );
    }

    /// The host (index) a service's running task is on.
    pub(crate) fn host_of(&self, service: &str) -> usize {
        let nodes = self.docker(
            self.entry(),
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}",
                service,
            ],
        );
        let node = nodes.first().cloned().unwrap_or_default();
        self.cluster
            .hosts()
            .iter()
            .position(|h| h.name() == node)
            .unwrap_or_else(|| panic!("{service} runs on no known host ({nodes:?})"))
    }
}

impl Setup for ClusterPlatform {
    fn router(&self) -> SocketAddr {
        SocketAddr::from((self.host(self.entry()), 80))
    }
    fn ssh(&self) -> SocketAddr {
        SocketAddr::from((self.host(self.entry()), 2222))
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn controller_url(&self) -> String {
        // The leader, else a stand-by (it passes requests on, or says why none leads).
        let up = || {
            (0..self.cluster.hosts().len()).find(|i| {
                let addr = SocketAddr::from((self.host(*i), 8000));
                matches!(deis_testkit::http_get(addr, "/healthz"), Ok((200, _)))
            })
        };
        let at = self.leader().or_else(up).unwrap_or(0);
        format!("http://{}:8000", self.host(at))
    }
    fn https(&self) -> SocketAddr {
        SocketAddr::from((self.host(self.entry()), 443))
    }
    fn logger(&self) -> SocketAddr {
        let at = self.host_of(&format!("{}-logger", self.prefix));
        SocketAddr::from((self.host(at), 8088))
    }
    fn platform_ports(&self) -> Vec<u16> {
        vec![
            2379, 2380, 2381, 6379, 5432, 5000, 5001, 8000, 8088, 514, 2222, 2223, 2224, 80, 443,
            9090,
        ]
    }
    fn app_label(&self) -> String {
        format!("deis.platform={}", self.prefix)
    }
    fn base_image(&self) -> String {
        format!("deis/base:{TAG}")
    }
    fn registry(&self) -> Option<String> {
        Some(format!("{}:5000", self.host(self.entry())))
    }
    fn platform_log(&self) -> String {
        let out = self.deisctl(&["journal", "builder", "controller", "-n", "10000"]);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
    fn has_repository(&self, app: &str) -> bool {
        let at = self.host_of(&format!("{}-builder", self.prefix));
        let containers = self.docker(
            at,
            &[
                "ps",
                "-q",
                "--filter",
                &format!(
                    "label=com.docker.swarm.service.name={}-builder",
                    self.prefix
                ),
            ],
        );
        let Some(id) = containers.first() else {
            return false;
        };
        let path = format!("/var/lib/deis/builder/repos/{app}.git");
        self.cluster
            .docker(at)
            .args(["exec", id, "test", "-e", &path])
            .status()
            .is_ok_and(|s| s.success())
    }
    async fn reboot(&self) -> bool {
        false
    }
}
