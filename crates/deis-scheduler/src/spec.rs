//! The scheduler interface and the data it works on.

use std::collections::BTreeMap;

use deis_types::{AppName, ContainerName};

/// What a container runs: everything a backend needs to start one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The release number.
    pub version: u32,
    /// The image to run.
    pub image: String,
    /// Environment: the config values plus `DEIS_APP`, `DEIS_RELEASE`, `GIT_SHA`.
    pub env: BTreeMap<String, String>,
    /// Commands by process type (from the Procfile); absent types run the image's default.
    pub commands: BTreeMap<String, String>,
    /// Memory limits by process type (`512M`).
    pub memory: BTreeMap<String, String>,
    /// CPU shares by process type.
    pub cpu: BTreeMap<String, u32>,
    /// Placement tags.
    pub tags: BTreeMap<String, String>,
}

/// The containers an app should run, all of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The app.
    pub app: AppName,
    /// What they run.
    pub release: ReleaseSpec,
    /// Their names.
    pub containers: Vec<ContainerName>,
}

/// The state of a container as the scheduler sees it (§8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Known to the database but not (yet) to the scheduler.
    Initialized,
    /// Created, not started.
    Created,
    /// Running.
    Up,
    /// Stopped.
    Down,
    /// Gone.
    Destroyed,
    /// Exited unexpectedly.
    Crashed,
    /// The scheduler cannot tell.
    Error,
}

impl ContainerState {
    /// The word the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Initialized => "initialized",
            ContainerState::Created => "created",
            ContainerState::Up => "up",
            ContainerState::Down => "down",
            ContainerState::Destroyed => "destroyed",
            ContainerState::Crashed => "crashed",
            ContainerState::Error => "error",
        }
    }
}

/// What `ps` shows of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Its state.
    pub state: ContainerState,
    /// How often the scheduler restarted it after it died.
    pub restarts: u32,
}

impl From<ContainerState> for ContainerStatus {
    fn from(state: ContainerState) -> Self {
        ContainerStatus { state, restarts: 0 }
    }
}

pub(crate) use crate::error::SchedulerError;

/// Runs an app's containers.
#[async_trait::async_trait]
pub trait Scheduler: Send + Sync + 'static {
    /// Makes the app run exactly `desired` (start new containers, wait until healthy, then stop
    /// the ones not listed). On error the previous containers keep running.
    async fn converge(&self, desired: &Desired) -> Result<(), SchedulerError>;
    /// Stops and removes every container of the app.
    async fn destroy(&self, app: &AppName) -> Result<(), SchedulerError>;
    /// Runs a one-off command with the release's image and config: exit code and output.
    async fn run(
        &self,
        app: &AppName,
        release: &ReleaseSpec,
        command: &str,
    ) -> Result<(i32, String), SchedulerError>;
    /// Restarts the named containers.
    async fn restart(&self, containers: &[ContainerName]) -> Result<(), SchedulerError>;
    /// The state and restart count of each named container.
    async fn states(&self, containers: &[ContainerName]) -> Vec<ContainerStatus>;
    /// After shutdown: waits until the backend's own tasks (supervisors, restarts, clean-ups)
    /// have ended.
    async fn drain(&self) {}
    /// Where the backend says what a deploy does that its app's user should see (an image
    /// pulled onto a host); set once, by the controller, to the app's events.
    fn report_to(&self, _progress: Progress) {}
}

/// Receives a line for an app's user.
type Sink = dyn Fn(&AppName, &str) + Send + Sync;

/// Lines about an app's deploy for its user (`deis logs` shows them as the controller's).
#[derive(Clone)]
pub struct Progress(std::sync::Arc<Sink>);

impl Progress {
    /// Progress delivered to `sink`.
    pub fn new(sink: impl Fn(&AppName, &str) + Send + Sync + 'static) -> Progress {
        Progress(std::sync::Arc::new(sink))
    }

    /// Tells `app`'s user `line`.
    pub fn say(&self, app: &AppName, line: &str) {
        (self.0)(app, line);
    }
}

/// Keeps no containers: every request succeeds and containers stay `initialized`. For a
/// controller that only records desired state (tests of the API, or no container engine).
pub struct RecordOnlyScheduler;

#[async_trait::async_trait]
impl Scheduler for RecordOnlyScheduler {
    async fn converge(&self, _: &Desired) -> Result<(), SchedulerError> {
        Ok(())
    }
    async fn destroy(&self, _: &AppName) -> Result<(), SchedulerError> {
        Ok(())
    }
    async fn run(
        &self,
        _: &AppName,
        _: &ReleaseSpec,
        _: &str,
    ) -> Result<(i32, String), SchedulerError> {
        Err(SchedulerError::NotConfigured)
    }
    async fn restart(&self, _: &[ContainerName]) -> Result<(), SchedulerError> {
        Ok(())
    }
    async fn states(&self, containers: &[ContainerName]) -> Vec<ContainerStatus> {
        vec![ContainerState::Initialized.into(); containers.len()]
    }
}

/// The container command that runs a Procfile entry or a `deis run` command line: with
/// `bash -c` when the image has bash (as Deis v1, whose images all had it, so users write bash
/// syntax), else with `sh -c`.
pub(crate) fn shell_command(command: &str) -> Vec<String> {
    // The image's `sh` picks: `$0` is the user's command line, passed as an argument so that
    // no quoting of it is needed.
    const PICK: &str =
        "if command -v bash >/dev/null 2>&1; then exec bash -c \"$0\"; else exec sh -c \"$0\"; fi";
    vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        PICK.to_owned(),
        command.to_owned(),
    ]
}

/// What every container the platform runs for an app is held to, whatever its release asks:
/// the operator's defaults, applied to app and one-off containers alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLimits {
    /// Memory (bytes) of a container whose process type has no limit of its own; `None` for
    /// none.
    pub default_memory: Option<i64>,
    /// The most processes and threads one container may run; `None` for no limit.
    pub pids: Option<i64>,
    /// The engine keeps at most `log_max_files` files of `log_max_size` (`10m`) of a
    /// container's output (the shipper has read it by then).
    pub log_max_size: String,
    /// See `log_max_size`.
    pub log_max_files: u32,
}

impl Default for ContainerLimits {
    fn default() -> Self {
        ContainerLimits {
            default_memory: Some(512 << 20),
            pids: Some(1024),
            log_max_size: "10m".to_owned(),
            log_max_files: 3,
        }
    }
}

impl ContainerLimits {
    /// The engine's log settings for a container.
    pub(crate) fn log_config(&self) -> bollard::models::HostConfigLogConfig {
        bollard::models::HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(std::collections::HashMap::from([
                ("max-size".to_owned(), self.log_max_size.clone()),
                ("max-file".to_owned(), self.log_max_files.to_string()),
            ])),
        }
    }

    /// The memory limit for a container of `ptype` in `release`.
    pub(crate) fn memory(&self, release: &ReleaseSpec, ptype: &str) -> Option<i64> {
        release
            .memory
            .get(ptype)
            .and_then(|m| memory_bytes(m))
            .filter(|bytes| *bytes > 0)
            .or(self.default_memory)
    }
}

/// `512M`, `1G`, `100k`, `2048` (bytes) in bytes; `None` when it is not a size.
pub fn memory_bytes(limit: &str) -> Option<i64> {
    let upper = limit.trim().to_ascii_uppercase();
    let digits: String = upper.chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = digits.parse().ok()?;
    let factor = match upper[digits.len()..].trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}
