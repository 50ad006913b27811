//! The Docker registry from Debian's `docker-registry` (CNCF distribution), storing on disk.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, http_get, require};

/// A registry of its own, without authentication.
pub struct Registry {
    port: u16,
    _process: ServiceProcess,
    _dir: TempDir,
}

impl Registry {
    /// Starts a registry on a free port and waits until `/v2/` answers.
    pub async fn start() -> Registry {
        let bin = require("docker-registry", "docker-registry");
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
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config);
        let mut process =
            ServiceProcess::spawn("docker-registry", cmd, &dir.path().join("registry.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
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
        Registry {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// The registry's address (also its name in image references: `127.0.0.1:<port>/app`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}
