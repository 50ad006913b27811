//! A platform container's state in systemd's words (`active/running`, `inactive/dead`, ...),
//! as Deis's deisctl printed units, plus its health and restart count.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

/// What `list`, `status` and `start` show of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitState {
    pub(crate) active: &'static str,
    pub(crate) sub: &'static str,
    /// `healthy`, `unhealthy`, `starting`, or `-` without a health check or when not running.
    pub(crate) health: &'static str,
    pub(crate) restarts: i64,
    pub(crate) exit_code: i64,
    /// The last health check's output, trimmed.
    pub(crate) last_check: Option<String>,
    pub(crate) started_at: Option<String>,
    pub(crate) pid: i64,
}

impl UnitState {
    pub(crate) fn of(c: &ContainerInspectResponse) -> UnitState {
        let state = c.state.clone().unwrap_or_default();
        let health_status = state.health.as_ref().and_then(|h| h.status);
        let health = match health_status {
            Some(HealthStatusEnum::HEALTHY) => "healthy",
            Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
            Some(HealthStatusEnum::STARTING) => "starting",
            _ => "-",
        };
        let exit_code = state.exit_code.unwrap_or(0);
        let (active, sub) = match state.status {
            Some(ContainerStateStatusEnum::RUNNING) => match health {
                "starting" => ("activating", "start-post"),
                "unhealthy" => ("failed", "unhealthy"),
                _ => ("active", "running"),
            },
            Some(ContainerStateStatusEnum::RESTARTING) => ("activating", "auto-restart"),
            Some(ContainerStateStatusEnum::PAUSED) => ("active", "paused"),
            // The restart policy restarts every exit but a deliberate stop, so an exited
            // container was stopped (its exit code is in `status`).
            Some(ContainerStateStatusEnum::DEAD) => ("failed", "failed"),
            _ => ("inactive", "dead"),
        };
        let running = state.status == Some(ContainerStateStatusEnum::RUNNING);
        let last_check = state
            .health
            .and_then(|h| h.log)
            .and_then(|log| log.last().cloned())
            .and_then(|r| r.output)
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty());
        UnitState {
            active,
            sub,
            health: if running { health } else { "-" },
            restarts: c.restart_count.unwrap_or(0),
            exit_code,
            last_check,
            started_at: state.started_at.filter(|_| running),
            pid: state.pid.unwrap_or(0),
        }
    }

    /// Up and, where there is a health check, passing it.
    pub(crate) fn ready(&self) -> bool {
        self.active == "active" && self.sub == "running"
    }

    pub(crate) fn running(&self) -> bool {
        matches!(self.active, "active" | "activating") || self.sub == "unhealthy"
    }

    /// `active/running`.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.active, self.sub)
    }
}
