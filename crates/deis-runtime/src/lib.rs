//! Plumbing every platform service shares, so that each component's `run` only holds its own
//! logic: binding listeners with a clear error, serving HTTP with a bounded drain on shutdown,
//! the `/healthz` endpoint, SIGTERM handling, pushing log lines to the logger, tracing set-up, the common command-line flags
//! (etcd's endpoints and TLS files), and publishing a component's endpoint in the config store
//! under a lease, at an advertised host that `DEIS_ADVERTISE_HOST=auto` finds by itself.
//!
//! This crate holds no component logic and no protocol of its own.

mod cli;
mod endpoint;
mod http;
mod log_push;
mod registry_auth;
mod secret;
mod service;
mod signal;

pub use cli::{AddrError, CommonArgs, MaybeAddr, init_tracing, parse_optional_addr};
pub use endpoint::{
    ADVERTISE_AUTO, AdvertiseError, ENDPOINT_TTL, Endpoint, local_ip_towards, publish_endpoint,
    resolve_advertise_host,
};
pub use http::{BindError, bind, bind_shared, bind_udp, health_router, serve_http};
pub use log_push::{LogPusher, PushError};
pub use registry_auth::{
    Credential, REGISTRY_BUILDER_USER, REGISTRY_REALM, RegistryPrincipal, RegistrySecrets,
    pull_credential, push_credential,
};
pub use secret::{
    Bearer, LogClient, LogClientError, SecretError, log_client, presents, shared_secret,
};
pub use service::{HttpComponent, MainError, serve_component, service_main};
pub use signal::shutdown_on_signals;

/// How long a service may take to finish in-flight work after SIGTERM before it stops anyway.
pub const DEFAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// `#[serde(with = "deis_runtime::serde_secs")]` for a `Duration` written as whole seconds.
pub mod serde_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
