//! The labels the platform puts on Docker objects, so that any component can rebuild its view
//! of the world from the engine alone. Values are read by key, never by prefix, and an image's
//! own `deis.*` labels are blanked on the containers made from it (see [`is_ours`]).

/// The app a container (or an app's service, image or build cache) belongs to.
pub const APP: &str = "deis.app";
/// The release a container runs (`v3`).
pub const RELEASE: &str = "deis.release";
/// The process type a container runs (`web`).
pub const TYPE: &str = "deis.type";
/// The port the container's process listens on.
pub const PORT: &str = "deis.port";
/// Marks a one-off `deis run` container.
pub const RUN: &str = "deis.run";
/// Which of the scheduler's engines a container belongs to.
pub const ENGINE: &str = "deis.engine";
/// Marks a build container.
pub const BUILD: &str = "deis.build";
/// The deisctl installation (its prefix) an object belongs to.
pub const PLATFORM: &str = "deis.platform";
/// The platform component a deisctl container runs.
pub const COMPONENT: &str = "deis.component";
/// The instance number of a deisctl component (`deis-router@2`).
pub const INSTANCE: &str = "deis.instance";
/// The test that made an object (removed with it).
pub const TEST: &str = "deis.test";

/// Whether `key` is one of the platform's labels (which an image may not set for its
/// containers).
pub fn is_ours(key: &str) -> bool {
    key.starts_with("deis.")
}

/// `key=value`, as a label filter.
pub fn filter(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// Whether a process type receives traffic through the router: `web`, and `cmd` (a Dockerfile
/// app's default process).
pub fn takes_traffic(process_type: &str) -> bool {
    matches!(process_type, "web" | "cmd")
}
