//! Checking a service binary the way an operator meets it: it starts, answers its health
//! endpoints, and exits 0 soon after SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{ServiceProcess, eventually, http_get};

/// How long a service may take to stop after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// Starts `binary` with `env` added, and waits until every `(address, path)` in `health`
/// answers 200. The process is killed when the returned value is dropped.
pub async fn start_service(
    binary: &str,
    env: &[(&str, String)],
    health: &[(SocketAddr, &str)],
    log_dir: &Path,
) -> ServiceProcess {
    let name = Path::new(binary)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| binary.to_owned());
    let mut cmd = Command::new(binary);
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut process = ServiceProcess::spawn(&name, cmd, &log_dir.join(format!("{name}.log")));
    for (addr, path) in health {
        let (addr, path) = (*addr, *path);
        eventually(
            Duration::from_secs(30),
            &format!("{name} to answer {path} on {addr}"),
            || {
                process.assert_running();
                async move {
                    match http_get(addr, path) {
                        Ok((200, _)) => Ok(()),
                        Ok((status, body)) => Err(format!("{status} {body}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
    }
    process
}

/// Sends SIGTERM and asserts the process exits 0 within [`STOP_GRACE`].
pub fn assert_stops_cleanly(mut process: ServiceProcess) {
    process.terminate();
    match process.wait_exit(STOP_GRACE) {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "the service exited with {status} after SIGTERM; its output:\n{}",
            process.output()
        ),
        None => panic!(
            "the service was still running {STOP_GRACE:?} after SIGTERM; its output:\n{}",
            process.output()
        ),
    }
}
