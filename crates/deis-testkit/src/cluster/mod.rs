//! A simulated cluster of Docker hosts on this machine, joined into a Docker Swarm, for tests of
//! the platform across hosts. Each host is a network namespace (`eth0` on a bridge in a hub
//! namespace, at `.1`, `.2`, … of a /24 of 10.224.0.0/11 claimed for this cluster) with its own
//! `dockerd` (its own host name, configuration, data, socket and cgroups). This namespace, the
//! operator's workstation, is on the bridge too (at `.254`), so the test reaches every host.
//!
//! This kernel has no IPVS: the Swarm routing mesh and service VIPs do not work. Publish ports
//! in host mode (`--publish mode=host,...`) or use the `host` network, and use
//! `--endpoint-mode dnsrr` on overlay networks. Images cannot be pulled: copy them from the main
//! engine with [`Cluster::load_images`] and create services with `--no-resolve-image`.
//!
//! Services of the platform (sshd, etcd, …) are started on a host with [`Cluster::nsenter`]
//! (never `ip netns exec`, which remounts `/sys` and hides the cgroup mounts), with their files
//! in [`ClusterHost::dir`].

mod cgroups;
mod engine;
mod network;

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use crate::{ServiceProcess, require, unique_id};

/// How long an engine may take to answer after it starts.
const ENGINE_START: Duration = Duration::from_secs(60);
/// How long the Swarm may take to list every node Ready.
const SWARM_READY: Duration = Duration::from_secs(60);
/// How long the engines get to stop on SIGTERM before they are killed. They often stop in about
/// 2 s, but each manager's Swarm component waits (up to 15 s) for the streams of the other
/// managers, which are stopping too, to close; nothing is lost by killing them: the fixture
/// removes whatever they would have cleaned up.
const ENGINE_STOP: Duration = Duration::from_secs(3);

/// One host of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterHost {
    name: String,
    addr: Ipv4Addr,
    netns: String,
    dir: PathBuf,
    run_dir: PathBuf,
    cgroup: String,
    manager: bool,
    dockerd_pid: u32,
}

impl ClusterHost {
    /// Its host name (`<cluster id>-h1`, …), which is also its Swarm node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address on the cluster's network (`eth0`).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Its network namespace's name (`deis-<cluster id>-h1`, …).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its network namespace's file, for `nsenter --net=<this>`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }

    /// Its engine's mount namespace, in which `/run` (so `/var/run/docker.sock`) is the
    /// host's own.
    pub fn mount_ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/mnt", self.dockerd_pid))
    }

    /// Its Docker engine's socket (`/var/run/docker.sock` on the host itself).
    pub fn docker_socket(&self) -> PathBuf {
        self.run_dir.join("run/docker.sock")
    }

    /// `unix://<socket>`, for `docker -H` or `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_socket().display())
    }

    /// The PID of its `dockerd`.
    pub fn dockerd_pid(&self) -> u32 {
        self.dockerd_pid
    }

    /// Whether it is a Swarm manager (or else a worker).
    pub fn is_manager(&self) -> bool {
        self.manager
    }

    /// A scratch folder of its own (its engine's data and log are in it too), for the files of
    /// services started on it; removed with the cluster.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its cgroup (`/deis-<cluster id>-h1`, in every hierarchy): its engine's processes and, under
    /// `containers/`, its containers.
    pub fn cgroup(&self) -> String {
        format!("/{}", self.cgroup)
    }
}

/// The cluster; everything it started and created is removed when it is dropped.
pub struct Cluster {
    id: String,
    subnet: Ipv4Net,
    subnet_claim: PathBuf,
    hub: String,
    workstation_link: String,
    scratch: PathBuf,
    run_dir: PathBuf,
    hosts: Vec<ClusterHost>,
    /// Each host's engine; `None` once the host is lost ([`Cluster::kill_host`]).
    engines: Mutex<Vec<Option<ServiceProcess>>>,
}

impl Cluster {
    /// Starts `n` hosts, all Swarm managers (three make a Raft quorum), and returns when the
    /// Swarm lists them all Ready. Panics with what is missing (root, a binary) or with the log
    /// of an engine that does not start.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, 0).await
    }

    /// Starts `managers` manager hosts (`h1`…) and then `workers` worker hosts.
    pub async fn start_with(managers: usize, workers: usize) -> Cluster {
        assert!(managers >= 1, "a cluster needs a manager");
        let n = managers + workers;
        assert!(n <= 200, "a cluster has at most 200 hosts");
        require("ip", "iproute2");
        require("nsenter", "util-linux");
        require("unshare", "util-linux");
        require("hostname", "hostname");
        require("dockerd", "docker.io");
        require("docker", "docker.io");
        let seed = unique_id()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let id = format!("{seed:08x}");
        let (subnet, subnet_claim) = network::claim_subnet(seed);
        // Built before anything else is created, so that a panic below still tears down.
        let mut cluster = Cluster {
            hub: format!("deis-{id}-hub"),
            workstation_link: format!("dcw{id}"),
            scratch: std::env::temp_dir().join(format!("deis-cluster-{id}")),
            // Short: unix socket paths must stay under 108 bytes.
            run_dir: Path::new("/run/deis-t").join(&id),
            id,
            subnet,
            subnet_claim,
            hosts: Vec::new(),
            engines: Mutex::new(Vec::new()),
        };
        for dir in [&cluster.scratch, &cluster.run_dir] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        network::create_hub(
            &cluster.hub,
            &cluster.workstation_link,
            cluster.workstation_addr(),
        );
        for i in 0..n {
            cluster.add_host(i, i < managers);
        }
        for i in 0..n {
            let engines = cluster
                .engines
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            let (host, process) = (&cluster.hosts[i], &mut engines[i]);
            if let Some(process) = process {
                engine::wait_ready(process, &host.docker_host(), &host.name, ENGINE_START).await;
            }
        }
        cluster.form_swarm().await;
        cluster
    }

    /// Creates host `i`'s namespace, folders and cgroup, and starts its engine.
    fn add_host(&mut self, i: usize, manager: bool) {
        let number = i + 1;
        let host = ClusterHost {
            name: format!("{}-h{number}", self.id),
            addr: self.host_addr(number),
            netns: format!("deis-{}-h{number}", self.id),
            dir: self.scratch.join(format!("h{number}")),
            run_dir: self.run_dir.join(format!("h{number}")),
            cgroup: format!("deis-{}-h{number}", self.id),
            manager,
            dockerd_pid: 0,
        };
        for dir in [&host.dir, &host.run_dir] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        // The cgroup first: the teardown looks for the engine's processes there.
        let procs = cgroups::create_engine_group(&host.cgroup);
        self.hosts.push(host);
        self.engines_mut().push(None);
        let host = &self.hosts[i];
        network::create_host(&self.hub, &host.netns, &format!("h{number}"), host.addr);
        let process = engine::spawn(&engine::EngineSpec {
            hostname: &host.name,
            netns: &host.netns,
            dir: &host.dir,
            run_dir: &host.run_dir,
            engine_cgroup_procs: &procs,
            cgroup_parent: &format!("/{}/containers", host.cgroup),
        });
        self.hosts[i].dockerd_pid = process.pid();
        self.engines_mut()[i] = Some(process);
    }

    fn engines_mut(&mut self) -> &mut Vec<Option<ServiceProcess>> {
        self.engines
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn host_addr(&self, number: usize) -> Ipv4Addr {
        let offset = u32::try_from(number).unwrap_or_else(|_| panic!("host number {number}"));
        Ipv4Addr::from(u32::from(self.subnet.network()) + offset)
    }

    /// `swarm init` on the first host, `swarm join` on the others; waits until all are Ready.
    async fn form_swarm(&self) {
        let first = &self.hosts[0];
        self.docker_ok(
            0,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                &first.addr.to_string(),
                "--dispatcher-heartbeat",
                "1s",
            ],
        )
        .await;
        let manager_token = self
            .docker_ok(0, &["swarm", "join-token", "-q", "manager"])
            .await;
        let worker_token = self
            .docker_ok(0, &["swarm", "join-token", "-q", "worker"])
            .await;
        let leader = format!("{}:2377", first.addr);
        for (i, host) in self.hosts.iter().enumerate().skip(1) {
            let token = if host.manager {
                &manager_token
            } else {
                &worker_token
            };
            self.docker_ok(
                i,
                &[
                    "swarm",
                    "join",
                    "--token",
                    token.trim(),
                    "--advertise-addr",
                    &host.addr.to_string(),
                    &leader,
                ],
            )
            .await;
        }
        let deadline = Instant::now() + SWARM_READY;
        loop {
            let nodes = self
                .docker_ok(0, &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])
                .await;
            let ready = nodes.lines().filter(|l| l.ends_with(" Ready")).count();
            if ready == self.hosts.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Swarm did not list all {} hosts Ready within {SWARM_READY:?}:\n{nodes}",
                self.hosts.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `docker args` against host `i`; its standard output, or a panic with its error.
    async fn docker_ok(&self, i: usize, args: &[&str]) -> String {
        let out = tokio::process::Command::from(self.docker(i))
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
        assert!(
            out.status.success(),
            "docker {} on {} failed: {}",
            args.join(" "),
            self.hosts[i].name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// This cluster's id: part of every name it gives (namespaces, host names, cgroups).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hosts, in order (`h1` first).
    pub fn hosts(&self) -> &[ClusterHost] {
        &self.hosts
    }

    /// Host `i` (0 for `h1`).
    pub fn host(&self, i: usize) -> &ClusterHost {
        &self.hosts[i]
    }

    /// The `docker` command line against host `i`'s engine; add its arguments.
    pub fn docker(&self, i: usize) -> Command {
        let mut command = Command::new("docker");
        command.arg("-H").arg(self.hosts[i].docker_host());
        command
    }

    /// `program` to be run on host `i`: in its network namespace and its engine's mount
    /// namespace (where `/run` is the host's own), by `nsenter` like its engine; add its
    /// arguments.
    pub fn nsenter(&self, i: usize, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.hosts[i].netns_path().display()))
            .arg(format!(
                "--mount={}",
                self.hosts[i].mount_ns_path().display()
            ))
            .arg("--")
            .arg(program);
        command
    }

    /// The workstation's (this namespace's) address on the cluster's network.
    pub fn workstation_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 254)
    }

    /// The workstation's link to the cluster's network.
    pub fn workstation_link(&self) -> &str {
        &self.workstation_link
    }

    /// The cluster's network.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// Every network namespace the cluster created: the hub's, then the hosts'.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.hub.clone())
            .chain(self.hosts.iter().map(|h| h.netns.clone()))
            .collect()
    }

    /// The cluster's scratch folders (engine data and logs; sockets and engine state).
    pub fn scratch_dirs(&self) -> Vec<PathBuf> {
        vec![self.scratch.clone(), self.run_dir.clone()]
    }

    /// What host `i`'s engine logged so far.
    pub fn dockerd_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.hosts[i].dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Copies `images` from the machine's main Docker engine into every live host's engine, the
    /// hosts in parallel. Panics if the main engine lacks one (images cannot be pulled here).
    pub async fn load_images(&self, images: &[&str]) {
        if images.is_empty() {
            return;
        }
        for image in images {
            let found = tokio::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", image])
                .output()
                .await
                .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
            assert!(
                found.status.success(),
                "the main Docker engine has no image {image} to copy to the cluster (images \
                 cannot be pulled here: build or import it there first)"
            );
        }
        let tarball = self.scratch.join(format!("images-{}.tar", unique_id()));
        let saved = tokio::process::Command::new("docker")
            .arg("save")
            .arg("-o")
            .arg(&tarball)
            .args(images)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run docker save: {e}"));
        assert!(
            saved.status.success(),
            "docker save {} failed: {}",
            images.join(" "),
            String::from_utf8_lossy(&saved.stderr)
        );
        let loads = self
            .live_hosts()
            .into_iter()
            .map(|i| {
                let mut load = tokio::process::Command::from(self.docker(i));
                load.arg("load").arg("-i").arg(&tarball);
                async move { (i, load.output().await) }
            })
            .collect::<Vec<_>>();
        let results = futures_util::future::join_all(loads).await;
        let _ = std::fs::remove_file(&tarball);
        for (i, result) in results {
            let out = result.unwrap_or_else(|e| panic!("cannot run docker load: {e}"));
            assert!(
                out.status.success(),
                "loading {} into {} failed: {}",
                images.join(" "),
                self.hosts[i].name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn live_hosts(&self) -> Vec<usize> {
        let engines = self.engines.lock().unwrap_or_else(PoisonError::into_inner);
        (0..self.hosts.len())
            .filter(|i| engines.get(*i).is_some_and(Option::is_some))
            .collect()
    }

    /// Host `i` fails: its link goes down, then its engine, its containerd and every process
    /// in its cgroup (its containers too) are killed. Its namespace and files stay until the
    /// cluster is dropped.
    pub fn kill_host(&self, i: usize) {
        let host = &self.hosts[i];
        network::ip(&["-n", &host.netns, "link", "set", "eth0", "down"]);
        let engine = self
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(i)
            .and_then(Option::take);
        if let Some(mut process) = engine {
            process.kill();
        }
        assert!(
            cgroups::kill_all(&host.cgroup, Duration::from_secs(10)),
            "processes of {} are still running in its cgroup {}: {:?}",
            host.name,
            host.cgroup(),
            cgroups::processes(&host.cgroup, None)
        );
    }

    /// Stops every engine: SIGTERM, their containers killed meanwhile (a busybox httpd as
    /// PID 1 ignores SIGTERM), SIGKILL after [`ENGINE_STOP`], then whatever is left in the
    /// hosts' cgroups.
    fn stop_engines(&mut self) {
        let engines = self
            .engines
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for process in engines.iter().flatten() {
            process.terminate();
        }
        let deadline = Instant::now() + ENGINE_STOP;
        loop {
            for host in &self.hosts {
                cgroups::kill_once(&host.cgroup, Some("containers"));
            }
            let running = engines
                .iter_mut()
                .flatten()
                .map(ServiceProcess::is_running)
                .filter(|running| *running)
                .count();
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (host, engine) in self.hosts.iter().zip(engines.iter_mut()) {
            if let Some(mut process) = engine.take() {
                if process.is_running() {
                    eprintln!(
                        "cluster {}: the dockerd of {} did not stop within {ENGINE_STOP:?} of \
                         SIGTERM; killing it",
                        self.id, host.name
                    );
                }
                process.kill();
            }
        }
        for host in &self.hosts {
            if !cgroups::kill_all(&host.cgroup, Duration::from_secs(5)) {
                eprintln!(
                    "cluster {}: processes left in the cgroup {}: {:?}",
                    self.id,
                    host.cgroup(),
                    cgroups::processes(&host.cgroup, None)
                );
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_engines();
        let roots = self.scratch_dirs();
        let unmounted = engine::unmount_all(&roots, Duration::from_secs(5));
        network::delete(&self.namespaces(), &self.workstation_link);
        for host in &self.hosts {
            if !cgroups::remove(&host.cgroup, Duration::from_secs(5)) {
                eprintln!(
                    "cluster {}: cannot remove the cgroup {}",
                    self.id,
                    host.cgroup()
                );
            }
        }
        if unmounted {
            for dir in &roots {
                let _ = std::fs::remove_dir_all(dir);
            }
        } else {
            // Removing a folder with a mount under it would remove what is mounted there.
            eprintln!(
                "cluster {}: still mounted, so left in place: {:?}",
                self.id,
                engine::mounts_under(&roots)
            );
        }
        let _ = std::fs::remove_file(&self.subnet_claim);
    }
}

#[cfg(test)]
mod tests {
    use super::engine::unescape_mount_path;

    #[test]
    fn mount_paths_are_unescaped() {
        for (field, path) in [
            ("/tmp/a", "/tmp/a"),
            ("/tmp/a\\040b", "/tmp/a b"),
            ("/x\\011y\\134", "/x\ty\\"),
        ] {
            assert_eq!(unescape_mount_path(field), path);
        }
    }
}
