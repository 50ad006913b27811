//! The Docker registry from Debian's `docker-registry` (CNCF distribution), storing on disk.
//! It can be stopped and started again on the same port and storage, and its access log (one
//! line per request, which distribution always writes) can be read back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, http_get, require};

/// A registry of its own, without authentication.
pub struct Registry {
    port: u16,
    process: Option<ServiceProcess>,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry on a free port and waits until `/v2/` answers.
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let mut registry = Registry {
            port,
            process: None,
            dir,
        };
        registry.start_again().await;
        registry
    }

    /// The registry's address (also its name in image references: `127.0.0.1:<port>/app`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops the registry (SIGKILL) and waits until it is gone; its storage stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the registry again (after [`Registry::stop`]) on the same port and storage, and
    /// waits until `/v2/` answers.
    pub async fn start_again(&mut self) {
        self.stop();
        let bin = require("docker-registry", "docker-registry");
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(self.dir.path().join("config.yml"));
        let mut process = ServiceProcess::spawn("docker-registry", cmd, &self.log_path());
        let addr = self.addr();
        eventually(
            Duration::from_secs(20),
            "the registry to answer /v2/",
            || {
                process.assert_running();
                async move {
                    match http_get(addr, "/v2/") {
                        Ok((200, _)) => Ok(()),
                        Ok((status, body)) => Err(format!("{status} {body}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
        self.process = Some(process);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// How many requests the registry logged as `"<method> <path>` (the path exactly as
    /// requested, query included, e.g. `GET /v2/app/blobs/sha256:...`), across restarts.
    pub fn requests(&self, method: &str, path: &str) -> usize {
        let needle = format!("\"{method} {path} HTTP/");
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines().filter(|line| line.contains(&needle)).count()
    }
}

impl Registry {
    /// Where the registry keeps a blob's bytes (`sha256:<hex>`), so a test can damage them.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data")
    }
}
