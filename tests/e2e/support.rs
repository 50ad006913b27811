//! The one-process platform on loopback, and a user's tools against it: HTTP through the router,
//! SSH keys from `ssh-keygen`, and `git` pushing over the system OpenSSH client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deis_platform::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, eventually, require};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The controller's host name through the router.
pub(crate) const API: &str = "deis.example.com";

/// A running platform; stopped (and its containers removed) when dropped.
pub(crate) struct Platform {
    pub(crate) router: SocketAddr,
    pub(crate) ssh: SocketAddr,
    /// Held so its containers, images and volumes are removed with the platform.
    _docker: TestDocker,
    /// The locally built base image (busybox).
    pub(crate) image: String,
    pub(crate) dir: tempfile::TempDir,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), deis_platform::Error>>>,
    config: Config,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Platform {
    /// Starts every component with embedded defaults on loopback ports.
    pub(crate) async fn start() -> Platform {
        Platform::start_with(|_| {}).await
    }

    /// Starts the platform after `adjust` changed its configuration.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut Config)) -> Platform {
        require("git", "git");
        require("ssh", "openssh-client");
        let docker = TestDocker::connect().await;
        let image = docker.base_image().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config::default();
        config.controller.listen = loopback;
        config.controller.data_dir = dir.path().to_owned();
        config.controller.container_labels = docker.labels();
        config.builder.http_listen = loopback;
        config.builder.ssh_listen = loopback;
        config.builder.data_dir = dir.path().join("builder");
        config.builder.buildpacks_dir = Some(dir.path().to_owned());
        config.builder.stack_image = docker.git_image().await;
        config.builder.labels = docker.labels().into_iter().collect();
        config.router.listen = loopback;
        config.router.admin_listen = loopback;
        config.router.https_listen = Some(loopback);
        config.logger.listen = loopback;
        config.logger.syslog_udp = Some(loopback);
        config.logger.syslog_tcp = Some(loopback);
        config.registry_proxy.listen = loopback;
        adjust(&mut config);
        let mut platform = Platform {
            router: loopback,
            ssh: loopback,
            _docker: docker,
            image,
            dir,
            shutdown: CancellationToken::new(),
            task: None,
            config,
        };
        platform.boot().await;
        platform
    }

    /// Runs the components of `self.config` on a fresh in-memory store (as a restarted
    /// single-host platform has) and waits for the controller.
    async fn boot(&mut self) {
        let listeners = Listeners::bind(&self.config).await.expect("bind");
        self.router = listeners.router.http.local_addr().expect("addr");
        self.ssh = listeners.builder.ssh.local_addr().expect("addr");
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        store
            .put("/deis/platform/domain", "example.com", None)
            .await
            .expect("store");
        self.shutdown = CancellationToken::new();
        self.task = Some(tokio::spawn(deis_platform::run(
            self.config.clone(),
            store,
            listeners,
            self.shutdown.clone(),
        )));
        eventually(
            Duration::from_secs(20),
            "the controller behind the router",
            || async {
                match self.api("GET", "/v1/", None, "").await {
                    (401, _) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }

    /// The test label's value on everything this platform created (the push benchmark labels
    /// its own images with it).
    #[allow(dead_code)]
    pub(crate) fn test_id(&self) -> String {
        self._docker
            .labels()
            .get(deis_testkit::TEST_LABEL)
            .cloned()
            .unwrap_or_default()
    }

    /// Stops every component cleanly and starts them again on the same data directory.
    pub(crate) async fn restart(&mut self) {
        self.halt().await;
        self.boot().await;
    }

    /// Stops the platform as SIGTERM would and checks every component stopped cleanly.
    pub(crate) async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the platform stops within 30 s")
                .expect("the platform task")
                .expect("every component stops cleanly");
        }
    }
}

impl User for Platform {
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

/// What a user does against a running platform, whichever way it was started: the API through
/// the router, SSH keys, `git push`, requests to apps on `<app>.example.com`.
pub(crate) trait User: Sync {
    /// The router's HTTP address.
    fn router(&self) -> SocketAddr;
    /// The builder's SSH address.
    fn ssh(&self) -> SocketAddr;
    /// Scratch space for keys and work trees.
    fn dir(&self) -> &Path;

    /// A request to the controller through the router.
    async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        http(self.router(), method, API, path, token, body).await
    }

    /// Registers `username` (the first user is the admin) and logs in: their token.
    async fn user(&self, username: &str) -> String {
        let user = format!(
            r#"{{"username": "{username}", "password": "pw", "email": "{username}@example.com"}}"#
        );
        let (status, body) = self.api("POST", "/v1/auth/register/", None, &user).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self.api("POST", "/v1/auth/login/", None, &user).await;
        assert_eq!(status, 200, "{body}");
        let token: serde_json::Value = serde_json::from_str(&body).expect("json");
        token["token"].as_str().expect("token").to_owned()
    }

    /// Creates `app` for the token's user.
    async fn create_app(&self, token: &str, app: &str) {
        let (status, body) = self
            .api(
                "POST",
                "/v1/apps/",
                Some(token),
                &format!(r#"{{"id": "{app}"}}"#),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// A new SSH key pair registered for the token's user.
    async fn add_key(&self, token: &str, name: &str) -> SshKey {
        let key = SshKey::generate(self.dir(), name);
        let body = serde_json::json!({"id": name, "public": key.public}).to_string();
        let (status, text) = self.api("POST", "/v1/keys/", Some(token), &body).await;
        assert_eq!(status, 201, "{text}");
        key
    }

    /// `GET /` on the app's domain: the status and body.
    async fn get_app(&self, app: &str) -> (u16, String) {
        http(
            self.router(),
            "GET",
            &format!("{app}.example.com"),
            "/",
            None,
            "",
        )
        .await
    }

    /// `git push` of `work`'s master to `app` with `key`: whether it succeeded and what git
    /// printed.
    async fn push(&self, work: &Path, key: &SshKey, app: &str) -> (bool, String) {
        let remote = format!(
            "ssh://git@{}:{}/{app}.git",
            self.ssh().ip(),
            self.ssh().port()
        );
        let output = tokio::process::Command::new("git")
            .args(["push", &remote, "master"])
            .current_dir(work)
            .env("GIT_SSH_COMMAND", key.ssh_command())
            .output()
            .await
            .expect("git push runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }
}

/// An SSH key pair made by `ssh-keygen`.
#[derive(Clone)]
pub(crate) struct SshKey {
    pub(crate) private: PathBuf,
    pub(crate) public: String,
}

impl SshKey {
    pub(crate) fn generate(dir: &Path, name: &str) -> SshKey {
        let private = dir.join(format!("key-{name}"));
        let status = std::process::Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
            .expect("public key");
        SshKey {
            private,
            public: public.trim().to_owned(),
        }
    }

    /// The `ssh` command line git should use.
    pub(crate) fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.private.display()
        )
    }
}

/// A git work tree with one commit of `files`.
pub(crate) fn work_tree(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let work = dir.to_owned();
    std::fs::create_dir_all(&work).expect("work dir");
    git(&work, &["init", "--quiet", "--initial-branch=master"]);
    commit(&work, files, "first");
    work
}

/// Writes `files` and commits them.
pub(crate) fn commit(work: &Path, files: &[(&str, &str)], message: &str) {
    for (name, text) in files {
        let path = work.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("write");
        if name.starts_with("bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    git(work, &["add", "-A"]);
    git(
        work,
        &[
            "-c",
            "user.name=dev",
            "-c",
            "user.email=dev@example.com",
            "commit",
            "--quiet",
            "-m",
            message,
        ],
    );
}

fn git(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One HTTP/1.1 request; the status and body.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, "connection refused".to_owned());
    };
    let auth = token
        .map(|t| format!("Authorization: token {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, "write failed".to_owned());
    }
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw).await;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}
