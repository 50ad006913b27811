//! Why scheduling failed: each variant names the container or service and keeps its cause;
//! the text is what the user sees (`deis scale`, `git push`).

use std::time::Duration;

use crate::health::HealthError;
use crate::isolation::IsolationError;

/// A scheduling failure.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The engine failed or refused a call.
    #[error(transparent)]
    Docker(#[from] deis_docker::DockerError),
    /// A new container did not become healthy.
    #[error("{container}: {source}")]
    Unhealthy {
        /// The container (or `service slot k`).
        container: String,
        #[source]
        source: HealthError,
    },
    /// A container that should serve exited as soon as it started.
    #[error("{container}: the container exited as soon as it started")]
    ExitedAtStart {
        /// The container.
        container: String,
    },
    /// A Swarm task was rejected or failed.
    #[error("{service}: a task failed to start ({why})")]
    TaskFailed {
        /// The service.
        service: String,
        /// Swarm's reason.
        why: String,
    },
    /// Not every Swarm task ran in time.
    #[error("{service}: {running} of {wanted} tasks running after {after:?} ({waiting})")]
    TasksNotRunning {
        /// The service.
        service: String,
        /// How many run.
        running: usize,
        /// How many should.
        wanted: u32,
        /// How long it waited.
        after: Duration,
        /// What was still awaited.
        waiting: String,
    },
    /// A deploy gave up; the previous containers keep serving.
    #[error("aborting, app containers failed to become healthy ({0})")]
    Aborted(#[source] Box<SchedulerError>),
    /// A one-off `run` took too long.
    #[error("{container} (run): timed out after {after:?}")]
    RunTimedOut {
        /// The container.
        container: String,
        /// The limit.
        after: Duration,
    },
    /// An image the engine does not have could not be pulled: the registry's message.
    #[error("cannot pull {image}: {}", deis_docker::engine_message(.source))]
    Pull {
        /// The image.
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The app's credential for the platform's registry could not be had.
    #[error("cannot pull {image}: {source}")]
    Credential {
        /// The image.
        image: String,
        #[source]
        source: deis_runtime::SecretError,
    },
    /// Whether an image is in the platform's registry cannot be told (the store failed).
    #[error("the platform's registry cannot be looked up: {0}")]
    RegistryLookup(#[source] deis_store::StoreError),
    /// The routes could not be written to the store.
    #[error("updating routes failed: {0}")]
    Routes(#[source] deis_store::StoreError),
    /// The apps' network or firewall could not be set up.
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    /// This controller runs no containers.
    #[error("no scheduler is configured to run containers")]
    NotConfigured,
}

impl SchedulerError {
    /// The failure of the engine call `what`.
    pub(crate) fn docker(what: impl Into<String>, source: bollard::errors::Error) -> Self {
        SchedulerError::Docker(deis_docker::DockerError::call(what, source))
    }

    /// A deploy's failure as the user reads it: an image that could not be pulled as such,
    /// anything else as the abort of unhealthy containers.
    pub(crate) fn aborted(self) -> Self {
        match self {
            SchedulerError::Pull { .. } | SchedulerError::Credential { .. } => self,
            other => SchedulerError::Aborted(Box::new(other)),
        }
    }

    /// Whether trying the same thing again may succeed (an unreachable engine or store, a
    /// container that was slow); not when the request itself was refused or cannot work.
    pub fn is_retryable(&self) -> bool {
        match self {
            SchedulerError::Docker(e) => e.is_retryable(),
            SchedulerError::Unhealthy { .. }
            | SchedulerError::TasksNotRunning { .. }
            | SchedulerError::RunTimedOut { .. }
            | SchedulerError::Routes(_)
            | SchedulerError::RegistryLookup(_) => true,
            SchedulerError::Aborted(inner) => inner.is_retryable(),
            // A registry that answered no (or an error in the pull's stream) stands; a server
            // error or an engine that did not answer may pass.
            SchedulerError::Pull { source, .. } => match source {
                bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
                    *status_code >= 500
                }
                bollard::errors::Error::DockerStreamError { .. } => false,
                _ => true,
            },
            SchedulerError::Credential { .. } => true,
            SchedulerError::ExitedAtStart { .. }
            | SchedulerError::TaskFailed { .. }
            | SchedulerError::Isolation(_)
            | SchedulerError::NotConfigured => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_that_cannot_pull_says_so_and_others_abort() {
        let pull = SchedulerError::Pull {
            image: "127.0.0.1:5000/shop:git-1234567".to_owned(),
            source: bollard::errors::Error::DockerStreamError {
                error: "denied: requested access to the resource is denied".to_owned(),
            },
        }
        .aborted();
        assert_eq!(
            pull.to_string(),
            "cannot pull 127.0.0.1:5000/shop:git-1234567: denied: requested access to the resource is denied"
        );
        assert!(!pull.is_retryable());
        let exited = SchedulerError::ExitedAtStart {
            container: "shop_v2.web.1".to_owned(),
        }
        .aborted();
        assert_eq!(
            exited.to_string(),
            "aborting, app containers failed to become healthy (shop_v2.web.1: the container exited as soon as it started)"
        );
    }
}
