use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deis_controller::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis controller: the REST API the `deis` client talks to.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the REST API.
    #[arg(long, env = "DEIS_CONTROLLER_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,
    /// Host name other components use to reach the controller.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    /// Directory for the SQLite database and other state.
    #[arg(
        long,
        env = "DEIS_DATA_DIR",
        default_value = "/var/lib/deis/controller"
    )]
    data_dir: PathBuf,
    /// PostgreSQL URL; SQLite under the data directory when absent.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The platform domain until `/deis/platform/domain` is set in the store.
    #[arg(long, env = "DEIS_PLATFORM_DOMAIN", default_value = "localhost")]
    platform_domain: String,
    /// What runs app containers: the local Docker engine, Docker Swarm services, or none (record
    /// desired state only).
    #[arg(long, env = "DEIS_SCHEDULER", value_enum, default_value = "docker")]
    scheduler: deis_controller::SchedulerKind,
    /// Docker engines to run containers on, comma-separated `ADVERTISE_HOST=URL`
    /// (e.g. `10.0.0.5=tcp://10.0.0.5:2375`); none: the local engine.
    #[arg(long, env = "DEIS_DOCKER_ENGINES", value_delimiter = ',')]
    docker_engines: Vec<String>,
    /// Seconds between comparisons of running and desired containers.
    #[arg(long, env = "DEIS_RECONCILE_SECONDS", default_value_t = 10)]
    reconcile_seconds: u64,
    /// Seconds `deis pull` may take to copy an image into the platform's registry.
    #[arg(long, env = "DEIS_PULL_TIMEOUT_SECONDS", default_value_t = 600)]
    pull_timeout_seconds: u64,
    /// The Docker network app containers join (made by deisctl); the default bridge if absent.
    #[arg(long, env = "DEIS_APP_NETWORK")]
    app_network: Option<String>,
    /// The router's ports, comma-separated: the controller then makes the app network and its
    /// firewall itself at start (deisctl sets this), and does not start without them.
    #[arg(long, env = "DEIS_APP_FIREWALL_PORTS", value_delimiter = ',')]
    app_firewall_ports: Vec<u16>,
    #[command(flatten)]
    limits: deis_controller::AppLimits,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-controller", |shutdown| async move {
        let config = Config {
            listen: args.listen,
            advertise_host: args.advertise_host,
            data_dir: args.data_dir,
            database_url: args.database_url,
            platform_domain: args.platform_domain,
            scheduler: args.scheduler,
            container_labels: args.common.container_labels(),
            docker_engines: args.docker_engines,
            reconcile_interval: std::time::Duration::from_secs(args.reconcile_seconds.max(1)),
            pull_timeout: std::time::Duration::from_secs(args.pull_timeout_seconds.max(1)),
            limits: args.limits,
            app_network: args.app_network,
            app_firewall_ports: args.app_firewall_ports,
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_controller::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
