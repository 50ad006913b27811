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
use crate::support::workspace_binary;

/// A platform across a simulated cluster of its own.
///
/// Dropped, the cluster goes with everything on it, and deisctl's files with the home folder.
pub(crate) struct ClusterPlatform {
    pub(crate) cluster: Cluster,
    _sshds: Vec<Sshd>,
    key: SshKeyPair,
    pub(crate) prefix: String,
    /// The workstation's home: `~/.ssh/known_hosts` and deisctl's `~/.deis/`.
    home: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl ClusterPlatform {
    /// Three hosts, each with sshd; the images built on this machine; nothing installed.
    pub(crate) async fn hosts() -> ClusterPlatform {
        build_images();
        let cluster = Cluster::start(3).await;
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
        }
    }

    /// The address of host `i` (0-based).
    pub(crate) fn host(&self, i: usize) -> Ipv4Addr {
        self.cluster.host(i).addr()
    }

    /// deisctl on the workstation, through the tunnel to the first host.
    pub(crate) fn deisctl(&self, args: &[&str]) -> Output {
        Command::new(workspace_binary("deisctl"))
            .args(args)
            .env("HOME", self.home.path())
            .env("DEISCTL_TUNNEL", format!("root@{}", self.host(0)))
            .env("DEISCTL_SSH_KEY", self.key.private_key())
            .env("DEISCTL_SCHEDULER", "swarm")
            .env("DEISCTL_PREFIX", &self.prefix)
            .env("DEISCTL_IMAGE_TAG", TAG)
            .env("DEISCTL_START_TIMEOUT", "240")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DOCKER_HOST")
            .env_remove("DEIS_ETCD_ENDPOINTS")
            .env_remove("DEIS_ETCD_NAMESPACE")
            .output()
            .expect("deisctl runs")
    }

    /// deisctl, expecting success: what it printed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.deisctl(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "deisctl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `docker <args>` against host `i`'s engine: its output lines.
    pub(crate) fn docker(&self, i: usize, args: &[&str]) -> Vec<String> {
        let out = self
            .cluster
            .docker(i)
            .args(args)
            .output()
            .expect("docker runs");
        assert!(
            out.status.success(),
            "docker {args:?} on host {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// What the Swarm says of a component's tasks and what they printed, for failure messages.
    pub(crate) fn diagnose(&self, component: &str) -> String {
        let service = format!("{}-{component}", self.prefix);
        let mut text = String::new();
        for args in [
            vec!["service", "ps", "--no-trunc", service.as_str()],
            vec!["service", "logs", "--tail", "30", service.as_str()],
        ] {
            if let Ok(out) = self.cluster.docker(0).args(&args).output() {
                text.push_str(&String::from_utf8_lossy(&out.stdout));
                text.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
        text
    }

    /// The host (index) a service's running task is on.
    fn host_of(&self, service: &str) -> usize {
        let nodes = self.docker(
            0,
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
        SocketAddr::from((self.host(0), 80))
    }
    fn ssh(&self) -> SocketAddr {
        SocketAddr::from((self.host(0), 2222))
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn controller_url(&self) -> String {
        // Two controllers: the one that leads serves the API, the other answers 503.
        let leader = (0..self.cluster.hosts().len()).find(|i| {
            let addr = SocketAddr::from((self.host(*i), 8000));
            matches!(
                deis_testkit::http_get(addr, "/v1/openapi.json"),
                Ok((200, _))
            )
        });
        format!("http://{}:8000", self.host(leader.unwrap_or(0)))
    }
    fn https(&self) -> SocketAddr {
        SocketAddr::from((self.host(0), 443))
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
        Some(format!("{}:5000", self.host(0)))
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
