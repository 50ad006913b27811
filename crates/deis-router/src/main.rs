//! The `deis-router` binary: flags and environment variables to [`Config`], then
//! [`deis_router::run`] on the store until SIGTERM.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use deis_router::{Config, DEFAULT_BUILDER_MAX_CONNECTIONS, Listeners};
use deis_runtime::CommonArgs;

/// mimalloc (version 2): the proxy allocates per request from two threads, where glibc's
/// allocator spends a tenth of the router's time (perf, see docs/benchmarks.md); version 2
/// gives back what a burst of connections used once they are parked, which version 3 often
/// kept (`fast::idle` asks for it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Deis router: the HTTP front door of every app.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address for app traffic.
    #[arg(long, env = "DEIS_ROUTER_LISTEN", default_value = "0.0.0.0:80")]
    listen: SocketAddr,
    /// Address for HTTPS traffic, or `off`.
    #[arg(long, env = "DEIS_ROUTER_HTTPS_LISTEN", default_value = "0.0.0.0:443", value_parser = deis_runtime::parse_optional_addr)]
    https_listen: deis_runtime::MaybeAddr,
    /// Address for health and metrics.
    #[arg(long, env = "DEIS_ROUTER_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    admin_listen: SocketAddr,
    /// Address where `git push` SSH traffic is relayed to the builder the store names, or
    /// `off` (a cluster's routers take 2222, the builder then listens on 2223).
    #[arg(long, env = "DEIS_ROUTER_BUILDER_LISTEN", default_value = "off", value_parser = deis_runtime::parse_optional_addr)]
    builder_listen: deis_runtime::MaybeAddr,
    /// Connections relayed to the builder at once; those beyond are closed at once.
    #[arg(long, env = "DEIS_ROUTER_BUILDER_MAX_CONNECTIONS", default_value_t = NonZeroUsize::new(DEFAULT_BUILDER_MAX_CONNECTIONS).unwrap_or(NonZeroUsize::MIN))]
    builder_max_connections: NonZeroUsize,
    /// Host name other components use to reach this router; `auto`: this host's address
    /// towards the first etcd endpoint.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    /// The platform domain until `/deis/platform/domain` is set in the store.
    #[arg(long, env = "DEIS_PLATFORM_DOMAIN", default_value = "localhost")]
    platform_domain: String,
    /// Worker threads serving traffic [default: one per CPU].
    #[arg(long, env = "DEIS_ROUTER_WORKERS")]
    workers: Option<usize>,
    /// Seconds a client connection may wait for its next request head, idle time included.
    #[arg(long, env = "DEIS_ROUTER_IDLE_TIMEOUT", default_value_t = deis_router::Config::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Share the ports with other routers on this host (`SO_REUSEPORT`).
    #[arg(long, env = "DEIS_ROUTER_REUSE_PORT")]
    reuse_port: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-router", |shutdown| async move {
        let config = Config {
            listen: args.listen,
            https_listen: args.https_listen,
            admin_listen: args.admin_listen,
            builder_listen: args.builder_listen,
            builder_max_connections: args.builder_max_connections.get(),
            advertise_host: args.common.advertise_host(args.advertise_host).await?,
            platform_domain: args.platform_domain,
            workers: args.workers,
            drain: args.common.drain(),
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout.max(1)),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = if args.reuse_port {
            Listeners::bind_shared(&config)?
        } else {
            Listeners::bind(&config).await?
        };
        deis_router::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
