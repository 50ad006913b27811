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

/// A scheduling failure, with the message the user sees.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SchedulerError(pub String);

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
        Err(SchedulerError(
            "no scheduler is configured to run containers".into(),
        ))
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
