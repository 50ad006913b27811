//! The README's first command, `deis-platform`, as an operator runs it: the built binary with a
//! configuration file and flags, on free loopback ports, its data in a temporary directory, its
//! app containers labelled for the test and removed with it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deis_testkit::{ServiceProcess, TestDocker, eventually, free_addr, http_get};

use super::Setup;
use crate::support::workspace_binary;

/// What the operator sets beyond the README's flags, in the configuration file.
#[derive(Default)]
pub(crate) struct Options {
    /// `[builder] registry`: built images are pushed there.
    pub(crate) registry: Option<SocketAddr>,
    /// `[builder] max_push_bytes`.
    pub(crate) max_push_bytes: Option<u64>,
    /// `[builder] build_timeout`, in seconds.
    pub(crate) build_timeout: Option<u64>,
    /// `[store]`: etcd at this client URL rather than the store in the process.
    pub(crate) etcd: Option<String>,
}

impl Options {
    /// The configuration file; `stack` is the buildpack stack image.
    fn file(&self, stack: &str) -> String {
        let mut text = format!("[builder]\nstack_image = \"{stack}\"\n");
        if let Some(registry) = self.registry {
            text.push_str(&format!("registry = \"{registry}\"\n"));
        }
        if let Some(bytes) = self.max_push_bytes {
            text.push_str(&format!("max_push_bytes = {bytes}\n"));
        }
        if let Some(seconds) = self.build_timeout {
            text.push_str(&format!("build_timeout = {seconds}\n"));
        }
        if let Some(endpoint) = &self.etcd {
            text.push_str(&format!(
                "\n[store]\nbackend = \"etcd\"\nendpoints = [\"{endpoint}\"]\n"
            ));
        }
        text
    }
}

/// A running `deis-platform` process; SIGKILLed when dropped (a test failing half-way, or a
/// flow playing a crash).
pub(crate) struct Process {
    service: ServiceProcess,
    /// Where this run's output starts in the log (restarts append to it).
    log_from: usize,
}

impl Process {
    /// Its PID (the cluster bench reads its memory).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> u32 {
        self.service.pid()
    }

    /// What this run printed so far: its banner, then its log.
    pub(crate) fn output(&self) -> String {
        let all = self.service.output();
        all.get(self.log_from..).unwrap_or_default().to_owned()
    }
}

/// The single-host platform on free loopback ports.
pub(crate) struct SingleHost {
    pub(crate) router: SocketAddr,
    pub(crate) https: SocketAddr,
    pub(crate) ssh: SocketAddr,
    pub(crate) controller: SocketAddr,
    admin: SocketAddr,
    builder_health: SocketAddr,
    pub(crate) logger: SocketAddr,
    proxy: SocketAddr,
    /// `deis.test=<id>`, on every container it runs.
    pub(crate) labels: String,
    /// The busybox base image.
    pub(crate) image: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) process: Option<Process>,
    docker: TestDocker,
}

impl SingleHost {
    /// A fresh platform with the README's settings, not yet running.
    pub(crate) async fn new(options: Options) -> SingleHost {
        deis_testkit::require("git", "git");
        deis_testkit::require("ssh", "openssh-client");
        let docker = TestDocker::connect().await;
        let image = docker.base_image().await;
        // The buildpack stack: busybox with git, to clone BUILDPACK_URL in the build container.
        let stack = docker.git_image().await;
        let labels: Vec<String> = docker
            .labels()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("platform.toml"), options.file(&stack)).expect("config");
        let host = SingleHost {
            router: free_addr(),
            https: free_addr(),
            ssh: free_addr(),
            controller: free_addr(),
            admin: free_addr(),
            builder_health: free_addr(),
            logger: free_addr(),
            proxy: free_addr(),
            labels: labels.join(","),
            image,
            dir,
            process: None,
            docker,
        };
        std::fs::create_dir_all(host.buildpacks()).expect("the buildpacks folder");
        host
    }

    /// A running platform with the README's settings.
    pub(crate) async fn start() -> SingleHost {
        SingleHost::start_with(Options::default()).await
    }

    /// A running platform with `options` in its configuration file.
    pub(crate) async fn start_with(options: Options) -> SingleHost {
        let mut host = SingleHost::new(options).await;
        host.process = Some(host.run());
        host.wait_until_up().await;
        host
    }

    /// Every port it listens on.
    pub(crate) fn ports(&self) -> Vec<u16> {
        [
            self.router,
            self.https,
            self.ssh,
            self.controller,
            self.admin,
            self.builder_health,
            self.logger,
            self.proxy,
        ]
        .iter()
        .map(SocketAddr::port)
        .collect()
    }

    /// The `--data-dir`: the controller's database, and the builder's data in `builder/`.
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The operator's folder of local buildpacks (`--buildpacks-dir`): `BUILDPACK_URL`s
    /// `file://` below it may be built with.
    pub(crate) fn buildpacks(&self) -> PathBuf {
        self.dir.path().join("operator-buildpacks")
    }

    /// The test's labels (`deis.test`), for Docker objects a flow makes itself.
    pub(crate) fn test_labels(&self) -> HashMap<String, String> {
        self.docker.labels()
    }

    /// Starts the binary (`wait_until_up` waits for it to serve).
    pub(crate) fn run(&self) -> Process {
        let addr = |a: SocketAddr| a.to_string();
        let log = self.dir.path().join("platform.log");
        let log_from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut command = Command::new(workspace_binary("deis-platform"));
        command
            .arg("--config")
            .arg(self.dir.path().join("platform.toml"))
            .args(["--domain", "example.com", "--data-dir"])
            .arg(self.data())
            .arg("--buildpacks-dir")
            .arg(self.buildpacks())
            .args(["--controller-listen", &addr(self.controller)])
            .args(["--router-listen", &addr(self.router)])
            .args(["--router-https-listen", &addr(self.https)])
            .args(["--router-admin-listen", &addr(self.admin)])
            .args(["--builder-ssh-listen", &addr(self.ssh)])
            .args(["--builder-http-listen", &addr(self.builder_health)])
            .args(["--logger-listen", &addr(self.logger)])
            .args(["--logger-syslog-udp", "off", "--logger-syslog-tcp", "off"])
            .args(["--registry-proxy-listen", &addr(self.proxy)])
            .args(["--container-label", &self.labels])
            .env_remove("DEIS_ETCD_ENDPOINTS");
        Process {
            service: ServiceProcess::spawn("deis-platform", command, &log),
            log_from,
        }
    }

    /// Waits until every component answers its health check and the router passes API
    /// requests to the controller (which it found in the shared store).
    pub(crate) async fn wait_until_up(&self) {
        let health = [
            (self.controller, "/healthz"),
            (self.builder_health, "/healthz"),
            (self.router, "/health-check"),
            (self.admin, "/healthz"),
            (self.logger, "/healthz"),
            (self.proxy, "/healthz"),
        ];
        let output = || {
            self.process
                .as_ref()
                .map(Process::output)
                .unwrap_or_default()
        };
        eventually(
            Duration::from_secs(20),
            "every component healthy and the controller behind the router",
            || async move {
                for (addr, path) in health {
                    match tokio::task::spawn_blocking(move || http_get(addr, path)).await {
                        Ok(Ok((200, _))) => {}
                        other => return Err(format!("{path} on {addr}: {other:?}")),
                    }
                }
                match self.api("GET", "/v1/", None, "").await {
                    (401, _) => Ok(()),
                    other => Err(format!("{other:?}; its output: {}", output())),
                }
            },
        )
        .await;
    }

    /// Stops the process as Ctrl-C would: it exits 0 within the grace period.
    pub(crate) fn stop(process: Process) {
        tokio::task::block_in_place(|| deis_testkit::assert_stops_cleanly(process.service));
    }

    /// Stops the running process cleanly and starts the README command again on the same
    /// data directory (a fresh in-process store, as after a reboot).
    pub(crate) async fn restart(&mut self) {
        SingleHost::stop(self.process.take().expect("a running platform"));
        self.process = Some(self.run());
        self.wait_until_up().await;
    }
}

impl Setup for SingleHost {
    fn router(&self) -> SocketAddr {
        self.router
    }
    fn ssh(&self) -> SocketAddr {
        self.ssh
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn controller_url(&self) -> String {
        format!("http://{}", self.controller)
    }
    fn https(&self) -> SocketAddr {
        self.https
    }
    fn logger(&self) -> SocketAddr {
        self.logger
    }
    fn platform_ports(&self) -> Vec<u16> {
        self.ports()
    }
    fn app_label(&self) -> String {
        self.labels.clone()
    }
    fn base_image(&self) -> String {
        self.image.clone()
    }
    fn has_repository(&self, app: &str) -> bool {
        self.data()
            .join(format!("builder/repos/{app}.git"))
            .exists()
    }
    async fn reboot(&self) -> bool {
        false
    }
    fn registry(&self) -> Option<String> {
        None
    }
    fn platform_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("platform.log")).unwrap_or_default()
    }
}
