//! Waiting until a new container serves: its `HEALTHCHECK_URL` answers 200, or (without one)
//! its port accepts connections. A container that exits meanwhile fails at once.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::container::Engine;

/// What to probe.
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The path to GET (`HEALTHCHECK_URL`), if any.
    pub(crate) url: Option<String>,
    /// How long one probe may take (`HEALTHCHECK_TIMEOUT`).
    pub(crate) timeout: Duration,
    /// How long to wait before the first probe (`HEALTHCHECK_INITIAL_DELAY`).
    pub(crate) initial_delay: Duration,
}

const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// One probe: `Ok` when healthy, else what was seen.
async fn probe(target: &Target) -> Result<(), String> {
    let addr = format!("{}:{}", target.host, target.port);
    let attempt = async {
        let mut stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("failed to connect to container ({e})"))?;
        let Some(path) = &target.url else {
            return Ok(());
        };
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: deis-health-check\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        let status = line.split(' ').nth(1).unwrap_or("").to_owned();
        if status == "200" {
            Ok(())
        } else {
            Err(format!(
                "app failed health check (got '{status}', expected: '200')"
            ))
        }
    };
    tokio::time::timeout(target.timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "failed to connect to container (timed out after {:?})",
                target.timeout
            ))
        })
}

/// Waits until `target` is healthy, the container `id` exits, or `deadline` passes.
pub(crate) async fn wait(
    engine: &Engine,
    id: &str,
    target: &Target,
    deadline: Duration,
) -> Result<(), String> {
    let until = tokio::time::Instant::now() + deadline;
    tokio::time::sleep(target.initial_delay).await;
    loop {
        let last = match probe(target).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !engine.is_running(id).await {
            return Err(format!("the container exited before it served ({last})"));
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("not healthy after {deadline:?}: {last}"));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
