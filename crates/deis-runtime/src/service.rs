//! The skeleton of a service binary and of an HTTP component.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{
    Endpoint, health_router, init_tracing, publish_endpoint, serve_http, shutdown_on_signals,
};

/// The error a service's top-level function returns.
pub type MainError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a service binary: sets up logging and the runtime, cancels the token on SIGTERM or
/// SIGINT, runs `body`, and turns its result into the exit code (an error is printed as one line
/// with its causes).
pub fn service_main<F, Fut>(name: &str, body: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), MainError>>,
{
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(shutdown_on_signals(shutdown.clone()));
        let result = body(shutdown.clone()).await;
        shutdown.cancel();
        if let Ok(Err(e)) = signals.await {
            tracing::warn!(error = %e, "Signal handling failed");
        }
        result
    });
    // A blocking task still running (a stuck file or DNS call) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => {
            tracing::info!("Stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut line = format!("{name}: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

/// How an HTTP component is served.
pub struct HttpComponent {
    /// Which component; when `publish` is set its endpoint goes to `/deis/<component>/{host,port}`.
    pub component: Component,
    /// Whether to publish the endpoint.
    pub publish: bool,
    /// The host other components should use, when the listener is on `0.0.0.0`.
    pub advertise_host: Option<String>,
    /// The drain period after shutdown.
    pub drain: Duration,
    /// Whether the component's router answers `/healthz` itself (else a plain one is added).
    pub own_health: bool,
}

/// Serves `router` (with `/healthz` added) on `listener` until `shutdown`, publishing the
/// endpoint meanwhile, and returns once in-flight requests are drained.
pub async fn serve_component(
    spec: HttpComponent,
    listener: TcpListener,
    router: Router,
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(component = spec.component.as_str(), listen.addr = %addr, "Listening");
    let tasks = TaskTracker::new();
    let stop_publishing = shutdown.child_token();
    if spec.publish {
        let endpoint = Endpoint::for_listener(addr, spec.advertise_host.as_deref());
        tasks.spawn(publish_endpoint(
            store,
            spec.component,
            endpoint,
            stop_publishing.clone(),
        ));
    }
    let router = if spec.own_health {
        router
    } else {
        health_router().merge(router)
    };
    let result = serve_http(listener, router, shutdown, spec.drain).await;
    stop_publishing.cancel();
    tasks.close();
    tasks.wait().await;
    result
}
