//! Scheduling: the [`Scheduler`] interface the controller calls to make an app run exactly the
//! containers of one release, and its backends: [`DockerScheduler`] (the Docker Engine API
//! through bollard; the single-host mode), [`SwarmScheduler`] (Docker Swarm services; the
//! cluster mode) and [`RecordOnlyScheduler`] (runs nothing).
//!
//! A backend publishes the `host:port` of every healthy `web`/`cmd` container under
//! `/deis/services/<app>/<container>` in the config store, held by a lease, and withdraws a
//! route before it stops its container. An image an engine does not have is pulled first, with
//! the app's credential when it is in the platform's registry (`pull.rs`). It is not the
//! controller: it keeps no desired state of its own beyond what `converge` was last told, and
//! it does not decide what runs.
//!
//! App containers run on a network of the platform's own with a firewall around it
//! (`AppNetwork`; on a Swarm, `SwarmAppNetwork` and each host's agent).

mod container_spec;
mod docker;
mod error;
mod health;
mod isolation;
mod pull;
mod routes;
mod spec;
mod swarm;
mod swarm_network;
mod tasks;

pub use docker::{DockerConfig, DockerScheduler, EngineEndpoint};
pub use error::SchedulerError;
pub use health::HealthError;
pub use isolation::{
    AppNetwork, FirewallRules, IptablesError, IsolationError, Rule, bridge_name,
    config_network_name,
};
pub use spec::{
    ContainerLimits, ContainerState, ContainerStatus, Desired, Progress, RecordOnlyScheduler,
    ReleaseSpec, Scheduler, memory_bytes,
};
pub use swarm::SwarmScheduler;
pub use swarm_network::SwarmAppNetwork;
