//! A real controller (SQLite, no scheduler: desired state only) on loopback, and the built
//! `deis` binary run against it with its own HOME (settings file) and working directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deis_controller::{Config, Listeners, SchedulerKind};
use deis_store::{ConfigStore, MemoryStore};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_deis");

/// A controller for the test; stopped when dropped.
pub(crate) struct Controller {
    pub(crate) url: String,
    pub(crate) store: Arc<dyn ConfigStore>,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Controller {
    /// Starts a logger that publishes itself in this controller's store.
    pub(crate) async fn start_logger(&self) {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = deis_logger::Config {
            listen: loopback,
            syslog_udp: None,
            syslog_tcp: None,
            ..deis_logger::Config::default()
        };
        let listeners = deis_logger::Listeners::bind(&config).await.expect("bind");
        tokio::spawn(deis_logger::run(
            config,
            self.store.clone(),
            listeners,
            self.shutdown.clone(),
        ));
    }

    pub(crate) async fn start() -> Controller {
        Controller::start_with(SchedulerKind::None, Default::default()).await
    }

    /// A controller whose scheduler runs containers on the local Docker engine.
    pub(crate) async fn start_with(
        scheduler: SchedulerKind,
        container_labels: std::collections::HashMap<String, String>,
    ) -> Controller {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        store
            .put("/deis/platform/domain", "example.com", None)
            .await
            .expect("store");
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            scheduler,
            container_labels,
            reconcile_interval: Duration::from_secs(60),
            ..Config::default()
        };
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.http.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        tokio::spawn(deis_controller::run(
            config,
            store.clone(),
            listeners,
            shutdown.clone(),
        ));
        Controller {
            url: format!("http://{addr}"),
            store,
            _dir: dir,
            shutdown,
        }
    }
}

/// A user's machine: a HOME (settings) and a working directory.
pub(crate) struct User {
    pub(crate) home: tempfile::TempDir,
    pub(crate) cwd: PathBuf,
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl User {
    pub(crate) fn new(cwd_name: &str) -> User {
        let home = tempfile::tempdir().expect("home");
        let cwd = home.path().join(cwd_name);
        std::fs::create_dir_all(&cwd).expect("cwd");
        User { home, cwd }
    }

    /// Runs `deis args...`.
    pub(crate) async fn deis(&self, args: &[&str]) -> Ran {
        self.deis_in(&self.cwd, args).await
    }

    /// Runs `deis args...` in `dir`.
    pub(crate) async fn deis_in(&self, dir: &Path, args: &[&str]) -> Ran {
        self.deis_env(dir, args, &[]).await
    }

    /// Runs `deis args...` in `dir` with extra environment variables.
    pub(crate) async fn deis_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let output = tokio::process::Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env("HOME", self.home.path())
            .env_remove("DEIS_PROFILE")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("deis runs");
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; its standard output.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let ran = self.deis(args).await;
        assert_eq!(ran.code, 0, "deis {args:?} failed: {ran:?}");
        ran.stdout
    }

    /// `deis register <url>` as `name` (password `pw`, email `<name>@example.com`), which
    /// must succeed; its standard output.
    pub(crate) async fn register(&self, url: &str, name: &str) -> String {
        let email = format!("{name}@example.com");
        self.ok(&[
            "register",
            url,
            "--username",
            name,
            "--password",
            "pw",
            "--email",
            &email,
        ])
        .await
    }

    /// Runs a command that must fail; its standard error.
    pub(crate) async fn fails(&self, args: &[&str]) -> String {
        let ran = self.deis(args).await;
        assert_eq!(ran.code, 1, "deis {args:?} should fail: {ran:?}");
        ran.stderr
    }

    /// The settings file's JSON.
    pub(crate) fn settings(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.home.path().join(".deis/client.json"))
            .expect("settings file");
        serde_json::from_str(&text).expect("settings JSON")
    }
}
