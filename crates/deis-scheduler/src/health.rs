//! Waiting until a new container serves: its `HEALTHCHECK_URL` answers 200, or (without one)
//! its port accepts connections (or, through a proxy that accepts for it, answers HTTP at all).
//! A container that exits meanwhile fails at once.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use std::future::Future;

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
    /// Without `url`: require an HTTP answer (any status), not just an accepted connection,
    /// because the port is a proxy's that accepts before the app listens.
    pub(crate) through_proxy: bool,
}

impl Target {
    /// The probe an app's config asks for: `HEALTHCHECK_URL`, `HEALTHCHECK_TIMEOUT` (seconds,
    /// default 1) and `HEALTHCHECK_INITIAL_DELAY` (seconds, default 0).
    pub(crate) fn from_config<'a>(
        host: String,
        port: u16,
        through_proxy: bool,
        config: impl Fn(&str) -> Option<&'a str>,
    ) -> Target {
        let seconds = |key: &str, default: Duration| {
            config(key)
                .and_then(|t| t.trim().parse().ok())
                .map_or(default, Duration::from_secs)
        };
        Target {
            host,
            port,
            url: config("HEALTHCHECK_URL").map(str::to_owned),
            timeout: seconds("HEALTHCHECK_TIMEOUT", Duration::from_secs(1)),
            initial_delay: seconds("HEALTHCHECK_INITIAL_DELAY", Duration::ZERO),
            through_proxy,
        }
    }
}

const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// One probe: `Ok` when healthy, else what was seen.
async fn probe(target: &Target) -> Result<(), String> {
    let addr = format!("{}:{}", target.host, target.port);
    let attempt = async {
        let mut stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("failed to connect to container ({e})"))?;
        let path = match (&target.url, target.through_proxy) {
            (Some(path), _) => path.clone(),
            (None, true) => "/".to_owned(),
            (None, false) => return Ok(()),
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
        if status == "200" || (target.url.is_none() && line.starts_with("HTTP/")) {
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

/// Waits until `target` is healthy, `alive` says the container stopped, or `deadline` passes.
pub(crate) async fn wait<F, Fut>(
    target: &Target,
    deadline: Duration,
    alive: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    tokio::time::sleep(target.initial_delay).await;
    loop {
        let last = match probe(target).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !alive().await {
            return Err(format!("the container exited before it served ({last})"));
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("not healthy after {deadline:?}: {last}"));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
