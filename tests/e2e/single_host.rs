//! The README's first command, `deis-platform`, as a user runs it: the built binary (not the
//! library in this process) with its flags, its banner, a pushed app answering, and a restart
//! of the process that keeps users, apps and releases.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deis_testkit::{TestDocker, eventually, free_addr};

use crate::containers::workspace_binary;
use crate::support::{User, work_tree};

/// A running `deis-platform` process; SIGKILLed if a test fails half-way.
pub(crate) struct Process {
    child: Child,
    banner: Vec<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The single-host platform on free loopback ports, its data in a temporary directory, its app
/// containers labelled for the test and removed with it.
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
    _docker: TestDocker,
}

impl User for SingleHost {
    fn router(&self) -> SocketAddr {
        self.router
    }
    fn ssh(&self) -> SocketAddr {
        self.ssh
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl SingleHost {
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

    /// A fresh platform, not yet running.
    pub(crate) async fn new() -> SingleHost {
        deis_testkit::require("git", "git");
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
        let config = dir.path().join("platform.toml");
        std::fs::write(&config, format!("[builder]\nstack_image = \"{stack}\"\n")).expect("config");
        SingleHost {
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
            _docker: docker,
        }
    }

    /// A running platform.
    pub(crate) async fn start() -> SingleHost {
        let mut host = SingleHost::new().await;
        host.process = Some(host.run());
        host.wait_for_api().await;
        host
    }

    /// Waits until the router passes API requests to the controller.
    pub(crate) async fn wait_for_api(&self) {
        let log = self.dir.path().join("platform.log");
        eventually(
            Duration::from_secs(20),
            "the controller behind the router",
            || async {
                match self.api("GET", "/v1/", None, "").await {
                    (401, _) => Ok(()),
                    other => Err(format!(
                        "{other:?}; its log: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )),
                }
            },
        )
        .await;
    }

    /// Runs the binary and waits for the line that says it is up.
    pub(crate) fn run(&self) -> Process {
        let addr = |a: SocketAddr| a.to_string();
        let mut child = Command::new(workspace_binary("deis-platform"))
            .arg("--config")
            .arg(self.dir.path().join("platform.toml"))
            .args(["--domain", "example.com", "--data-dir"])
            .arg(self.dir.path().join("data"))
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
            .env_remove("DEIS_ETCD_ENDPOINTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("platform.log")).expect("log file"),
            ))
            .spawn()
            .expect("deis-platform starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("a banner line");
            let done = line.contains("git remote");
            banner.push(line);
            if done {
                break;
            }
        }
        // Whatever it prints later is read too, so that it never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Process { child, banner }
    }

    /// Stops the process as Ctrl-C would and waits for it.
    pub(crate) fn stop(mut process: Process) {
        let pid = process.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = process.child.wait().expect("wait");
        assert!(
            exit.success(),
            "deis-platform exits cleanly on SIGTERM: {exit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_command_runs_the_platform_and_a_restart_keeps_its_data() {
    let host = SingleHost::new().await;
    let image = host.image.clone();
    let process = host.run();
    let banner = process.banner.join("\n");
    assert!(
        banner.contains(&format!("deis register http://{}", host.controller))
            || banner.contains(&format!(":{}", host.controller.port())),
        "the banner names the controller: {banner}"
    );
    assert!(banner.contains("git remote"), "{banner}");
    host.wait_for_api().await;

    let token = host.user("dev").await;
    host.create_app(&token, "readme").await;
    let key = host.add_key(&token, "laptop").await;
    let dockerfile = format!(
        "FROM {image}\nCMD mkdir -p /tmp/www && echo readme-app > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www\n"
    );
    let work = work_tree(&host.dir.path().join("app"), &[("Dockerfile", &dockerfile)]);
    let (pushed, output) = host.push(&work, &key, "readme").await;
    assert!(pushed, "{output}");
    assert_eq!(
        host.get_app("readme").await,
        (200, "readme-app\n".to_owned())
    );

    SingleHost::stop(process);
    let _process = host.run();
    host.wait_for_api().await;
    // The same user logs in, the app and its releases are there, and it answers.
    let login = r#"{"username": "dev", "password": "pw"}"#;
    let (code, body) = host.api("POST", "/v1/auth/login/", None, login).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = host
        .api("GET", "/v1/apps/readme/releases/", Some(&token), "")
        .await;
    assert_eq!(code, 200, "{body}");
    let releases: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(releases["count"], 2, "{body}");
    eventually(
        Duration::from_secs(30),
        "the app answers after the restart",
        || async {
            match host.get_app("readme").await {
                (200, body) if body == "readme-app\n" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}
