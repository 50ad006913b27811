//! PostgreSQL from Debian's `postgresql`: initdb and postgres in a temporary directory, not the
//! system cluster. As root, the server runs as the `postgres` user, which refuses root.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, require};

/// A PostgreSQL server of its own, with a superuser `postgres` and trust authentication.
pub struct Postgres {
    port: u16,
    process: ServiceProcess,
    _dir: TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Runs `program` as the `postgres` user when we are root (the process itself, so that it can
/// be stopped by its PID), as ourselves otherwise.
fn as_server_user(program: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    if nix::unistd::Uid::effective().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!("running as root needs a `postgres` user: apt-get install -y postgresql")
            });
        // std drops root's supplementary groups along with the ids.
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd
}

impl Postgres {
    /// Creates a cluster in a temporary directory, starts it on a free port and waits until it
    /// accepts connections.
    pub async fn start() -> Postgres {
        let initdb = require("initdb", "postgresql");
        let postgres = require("postgres", "postgresql");
        let pg_isready = require("pg_isready", "postgresql-client");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        if nix::unistd::Uid::effective().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!("running as root needs a `postgres` user: apt-get install -y postgresql")
                });
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid)).unwrap_or_else(|e| {
                panic!("cannot hand {} to postgres: {e}", dir.path().display())
            });
        }
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let status = as_server_user(&initdb)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run initdb: {e}"));
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let port = free_port();
        let mut cmd = as_server_user(&postgres);
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        let mut process = ServiceProcess::spawn("postgres", cmd, &log);
        let port_s = port.to_string();
        eventually(
            Duration::from_secs(30),
            "postgres to accept connections",
            || {
                process.assert_running();
                let out = Command::new(&pg_isready)
                    .args(["-h", "127.0.0.1", "-p", &port_s])
                    .output();
                async move {
                    match out {
                        Ok(o) if o.status.success() => Ok(()),
                        Ok(o) => Err(String::from_utf8_lossy(&o.stdout).into_owned()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
        Postgres {
            port,
            process,
            _dir: dir,
        }
    }

    /// Stops the server at once (PostgreSQL's immediate shutdown: every session ends now, as
    /// when its host is lost), and waits until it is gone.
    pub fn stop_now(&mut self) {
        if !self.process.is_running() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.process.pid()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
        }
        if self.process.wait_exit(Duration::from_secs(10)).is_none() {
            self.process.kill();
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A URL for database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh database (one per test) and returns its URL.
    pub fn create_database(&self, db: &str) -> String {
        let psql = require("psql", "postgresql-client");
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE \"{db}\""),
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            out.status.success(),
            "CREATE DATABASE {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(db)
    }
}
