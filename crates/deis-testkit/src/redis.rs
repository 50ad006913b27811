//! Redis from Debian's `redis-server`, without persistence.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, require};

/// A Redis server of its own.
pub struct Redis {
    port: u16,
    _process: ServiceProcess,
    _dir: TempDir,
}

fn ping(addr: SocketAddr) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    if reply.starts_with("+PONG") {
        Ok(())
    } else {
        Err(reply)
    }
}

impl Redis {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Redis {
        let bin = require("redis-server", "redis-server");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path());
        let mut process = ServiceProcess::spawn("redis-server", cmd, &dir.path().join("redis.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        eventually(Duration::from_secs(20), "redis to answer PING", || {
            process.assert_running();
            async move { ping(addr) }
        })
        .await;
        Redis {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}
