//! etcd from Debian's `etcd-server`: one member, or a three-member cluster whose members can be
//! killed and restarted with their data.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, http_get, require};

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    process: Option<ServiceProcess>,
}

/// A three-member etcd cluster (or one member) on loopback ports.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    dir: TempDir,
}

/// A single etcd member.
pub struct Etcd {
    cluster: EtcdCluster,
}

impl Etcd {
    /// Starts one member and waits until it is healthy.
    pub async fn start() -> Etcd {
        Etcd {
            cluster: EtcdCluster::start_members(1).await,
        }
    }

    /// Its client URL.
    pub fn endpoint(&self) -> String {
        self.cluster.endpoint(0)
    }
}

impl EtcdCluster {
    /// Starts three members and waits until each is healthy.
    pub async fn start() -> EtcdCluster {
        Self::start_members(3).await
    }

    async fn start_members(n: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let token = crate::unique_id();
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i).await;
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let etcd = require("etcd", "etcd-server");
        let log = self.dir.path().join(format!("m{i}.log"));
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let mut cmd = Command::new(etcd);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "warn", "--logger", "zap"]);
        let process = ServiceProcess::spawn(&format!("etcd {}", m.name), cmd, &log);
        self.members[i].process = Some(process);
    }

    async fn wait_healthy(&mut self, i: usize) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.members[i].client_port));
        let name = self.members[i].name.clone();
        let process = self.members[i].process.as_mut();
        if let Some(p) = process {
            p.assert_running();
        }
        eventually(
            Duration::from_secs(30),
            &format!("etcd {name} to be healthy"),
            || async move {
                match http_get(addr, "/health") {
                    Ok((200, body)) if body.contains("true") => Ok(()),
                    Ok((status, body)) => Err(format!("{status} {body}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Kills member `i` with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            p.kill();
        }
    }

    /// Starts member `i` again on its data and waits until it is healthy.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i).await;
    }
}
