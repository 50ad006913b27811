//! The host agent (`deis-controller host-agent`): on a Swarm, one runs on every host (a global
//! service with host networking and `NET_ADMIN`) and keeps the firewall of the apps' network
//! there (`deis_scheduler::AppNetwork`: the network itself is the Swarm's,
//! `deis_scheduler::SwarmAppNetwork`). From the apps' bridge, this host and every other host
//! of the cluster are reachable on the router's ports only; the rest is rejected.
//!
//! It registers this host under `/deis/hosts/<address>` (a lease: `register.rs`), follows the
//! other hosts' keys (`hosts.rs`: once seen, a host stays filtered), sets the rules again when
//! that set grows, and checks them every `refresh` (a firewall reload or a reboot empties them),
//! setting them again when they are not exactly in place. `/healthz` answers 200 while they
//! are, 503 with the reason otherwise. On shutdown the rules stay (the apps still run while the
//! platform is stopped); `host-agent --remove` removes them
//! ([`deis_scheduler::AppNetwork::remove_firewall`]).

mod hosts;
mod register;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use deis_scheduler::{AppNetwork, IsolationError};
use deis_store::keys::prefix;
use deis_store::{ConfigStore, Follower};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use hosts::Hosts;

/// What the host agent needs.
#[derive(Debug, Clone)]
pub struct HostAgentConfig {
    /// The apps' network: its name (the rules' comment), its bridge, the router's ports.
    pub network: AppNetwork,
    /// This host's address in the cluster: what the other hosts' agents filter.
    pub address: Ipv4Addr,
    /// This host's name, the value of its key.
    pub host_name: String,
    /// How often the rules are checked.
    pub refresh: Duration,
    /// How long health checks in flight may finish after shutdown.
    pub drain: Duration,
}

/// Why the host agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostAgentError {
    /// The rules could not be set at start.
    #[error(transparent)]
    Firewall(#[from] IsolationError),
    /// The health check could not be served.
    #[error("serving the host agent's /healthz failed")]
    Serve(#[source] std::io::Error),
}

/// What `/healthz` says: `Ok` while the rules are in place, else why not.
type Health = Arc<Mutex<Result<(), String>>>;

/// Sets the rules (failing if they cannot be set at all), then keeps them until `shutdown`,
/// serving `/healthz` on `health`. The rules stay after it returns.
pub async fn run_host_agent(
    config: HostAgentConfig,
    store: Arc<dyn ConfigStore>,
    health: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), HostAgentError> {
    let network = config.network.clone();
    let known = blocking({
        let network = network.clone();
        move || Ok(network.hosts_in_firewall())
    })
    .await?;
    let mut hosts = Hosts::new(config.address, known);
    apply(&network, hosts.others(), true).await?;
    tracing::info!(network = %network.name, bridge = %network.bridge, ports = ?network.open_ports, hosts = ?hosts.others(), "App containers are kept off the platform's ports of this host and of the others");
    let state: Health = Arc::new(Mutex::new(Ok(())));
    let tasks = TaskTracker::new();
    tasks.spawn(register::register(
        store.clone(),
        config.address,
        config.host_name.clone(),
        shutdown.clone(),
    ));
    let router = Router::new()
        .route("/healthz", get(answer_health))
        .with_state(state.clone());
    let served = tasks.spawn(deis_runtime::serve_http(
        health,
        router,
        shutdown.clone(),
        config.drain,
    ));
    let mut follower = Follower::new(store, prefix::HOSTS, shutdown.clone());
    let mut ticker = tokio::time::interval(config.refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let grew = tokio::select! {
            () = shutdown.cancelled() => break,
            update = follower.next() => match update {
                Some(update) => hosts.update(&update),
                None => break,
            },
            _ = ticker.tick() => false,
        };
        let outcome = apply(&network, hosts.others(), grew).await;
        if grew && outcome.is_ok() {
            tracing::info!(hosts = ?hosts.others(), "The other hosts changed; rules set");
        }
        let outcome = outcome.map_err(|e| {
            tracing::warn!(error = %e, "The app network's rules cannot be set; retrying");
            e.to_string()
        });
        *state.lock().unwrap_or_else(PoisonError::into_inner) = outcome;
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!(network = %network.name, "Stopped; the rules stay in place");
    served
        .await
        .map_err(|e| HostAgentError::Serve(std::io::Error::other(e)))?
        .map_err(HostAgentError::Serve)
}

/// Sets the rules for `others` when `changed` or when they are not exactly in place.
async fn apply(
    network: &AppNetwork,
    others: &BTreeSet<Ipv4Addr>,
    changed: bool,
) -> Result<(), IsolationError> {
    let network = network.clone();
    let others = others.clone();
    blocking(move || {
        if !changed && network.firewall_in_place(&others)? {
            return Ok(());
        }
        if !changed {
            tracing::warn!(network = %network.name, "The app network's rules were not in place (a firewall reload or restart?); setting them again");
        }
        network.apply_firewall(&others)
    })
    .await
}

/// Runs iptables off the async threads (a panic there goes on here).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, IsolationError> + Send + 'static,
) -> Result<T, IsolationError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down, which nothing waits for.
        Err(e) => panic!("the firewall task was cancelled: {e}"),
    }
}

async fn answer_health(
    axum::extract::State(state): axum::extract::State<Health>,
) -> (StatusCode, String) {
    let health = state.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match health {
        Ok(()) => (StatusCode::OK, "OK".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}
