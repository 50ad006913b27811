//! Waiting until a new container serves: its `HEALTHCHECK_URL` answers 200, or (without one)
//! its port accepts connections (or, through a proxy that accepts for it, answers HTTP at all).
//! A container that exits meanwhile fails at once.

use std::time::Duration;

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

/// Why a container is not (yet) healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Its port refused or dropped the connection.
    #[error("failed to connect to container ({0})")]
    Connect(#[source] std::io::Error),
    /// The probe took longer than `HEALTHCHECK_TIMEOUT`.
    #[error("failed to connect to container (timed out after {0:?})")]
    TimedOut(Duration),
    /// It answered, but not as HTTP.
    #[error("app failed health check (no HTTP answer: {0})")]
    NotHttp(#[source] hyper::Error),
    /// It answered `HEALTHCHECK_URL` with another status than 200.
    #[error("app failed health check (got '{0}', expected: '200')")]
    Status(u16),
    /// It exited while being probed.
    #[error("the container exited before it served ({0})")]
    Exited(#[source] Box<HealthError>),
    /// It was not healthy in time.
    #[error("not healthy after {after:?}: {last}")]
    Late {
        /// How long it was given.
        after: Duration,
        /// The last probe's failure.
        #[source]
        last: Box<HealthError>,
    },
}

/// One probe: `Ok` when healthy, else what was seen. An HTTP probe reads the answer's status
/// line with a real HTTP/1.1 client (whatever its length or how it arrives in pieces).
async fn probe(target: &Target) -> Result<(), HealthError> {
    let addr = format!("{}:{}", target.host, target.port);
    let attempt = async {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(HealthError::Connect)?;
        let path = match (&target.url, target.through_proxy) {
            (Some(path), _) => path.clone(),
            (None, true) => "/".to_owned(),
            (None, false) => return Ok(()),
        };
        let status = get_status(stream, &addr, &path).await?;
        if status == 200 || target.url.is_none() {
            Ok(())
        } else {
            Err(HealthError::Status(status))
        }
    };
    tokio::time::timeout(target.timeout, attempt)
        .await
        .unwrap_or(Err(HealthError::TimedOut(target.timeout)))
}

/// `GET path` on `stream`: the answer's status.
async fn get_status(stream: TcpStream, host: &str, path: &str) -> Result<u16, HealthError> {
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(HealthError::NotHttp)?;
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "deis-health-check")
        .body(http_body_util::Empty::<bytes::Bytes>::new());
    let Ok(request) = request else {
        // A path that is no URI cannot answer 200.
        return Ok(400);
    };
    let answer = sender.send_request(request);
    tokio::pin!(connection);
    tokio::select! {
        answer = answer => answer.map(|r| r.status().as_u16()).map_err(HealthError::NotHttp),
        ended = &mut connection => match ended {
            Err(e) => Err(HealthError::NotHttp(e)),
            // The connection ended without an answer.
            Ok(()) => Err(HealthError::Connect(std::io::ErrorKind::UnexpectedEof.into())),
        },
    }
}

/// Waits until `target` is healthy, `alive` says the container stopped, or `deadline` passes.
pub(crate) async fn wait<F, Fut>(
    target: &Target,
    deadline: Duration,
    alive: F,
) -> Result<(), HealthError>
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
            return Err(HealthError::Exited(Box::new(last)));
        }
        if tokio::time::Instant::now() >= until {
            return Err(HealthError::Late {
                after: deadline,
                last: Box::new(last),
            });
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
