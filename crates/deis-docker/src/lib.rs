//! The platform's one way to reach a Docker engine: connecting to it (local socket, `unix://`
//! or `tcp://`/`http://`, with API-version negotiation), the table of `deis.*` labels every
//! component reads and writes, listing containers by label, image references and registry
//! credentials as pulls and pushes take them, and the error type that says whether a retry
//! can help.
//!
//! It is not a scheduler: what containers an app should have and how they are started lives in
//! `deis-scheduler`; which components deisctl runs lives in `deisctl`.

mod connect;
mod error;
pub mod labels;
mod list;
mod registry;
mod remove;
mod swarm;

pub use bollard::Docker;
pub use connect::connect;
pub use error::{DockerError, engine_message};
pub use list::{list_images, list_labelled};
pub use registry::{registry_credentials, registry_of, split_reference};
pub use remove::remove_container;
pub use swarm::{MANAGER_WAIT, manager_ready};
