use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deis_controller::{Config, HostAgentConfig, Listeners};
use deis_runtime::CommonArgs;
use deis_scheduler::AppNetwork;

/// The Deis controller: the REST API the `deis` client talks to.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address of the REST API.
    #[arg(long, env = "DEIS_CONTROLLER_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,
    /// Host name other components use to reach the controller; `auto`: this host's address
    /// towards the first etcd endpoint.
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
    /// (e.g. `10.0.0.5=tcp://10.0.0.5:2375`); none: the local engine. With the swarm scheduler,
    /// the first is the manager to use.
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
    /// firewall itself at start (deisctl sets this), and does not start without them. Docker
    /// scheduler only: on a Swarm, the host agents keep the firewall (`host-agent`).
    #[arg(long, env = "DEIS_APP_FIREWALL_PORTS", value_delimiter = ',')]
    app_firewall_ports: Vec<u16>,
    /// Registries (`host:port`, comma-separated) that are the platform's besides the one
    /// published in etcd: apps' images there are pulled with the app's credential (on a
    /// cluster, each host's own registry proxy, `127.0.0.1:5000`).
    #[arg(long, env = "DEIS_REGISTRIES", value_delimiter = ',')]
    registries: Vec<String>,
    #[command(flatten)]
    limits: deis_controller::AppLimits,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Keeps the firewall of the apps' network on this host of a Swarm cluster (run one on
    /// every host, with host networking and NET_ADMIN): app containers reach this host and
    /// every other registered host on the router's ports only.
    HostAgent(Box<HostAgentArgs>),
}

#[derive(Debug, clap::Args)]
struct HostAgentArgs {
    /// Remove this host's rules of the apps' network and exit (at uninstall).
    #[arg(long)]
    remove: bool,
    /// The apps' network (the Swarm's, made by deisctl).
    #[arg(long, env = "DEIS_APP_NETWORK")]
    app_network: String,
    /// Its bridge interface on each host; by default `deis_scheduler::bridge_name` of the
    /// network's name, as deisctl makes it.
    #[arg(long, env = "DEIS_APP_BRIDGE")]
    app_bridge: Option<String>,
    /// The router's ports, comma-separated: all that app containers may reach of any host.
    #[arg(
        long,
        env = "DEIS_APP_FIREWALL_PORTS",
        value_delimiter = ',',
        required_unless_present = "remove"
    )]
    app_firewall_ports: Vec<u16>,
    /// This host's IPv4 address in the cluster, which the other hosts filter; `auto`: this
    /// host's address towards the first etcd endpoint.
    #[arg(long, env = "DEIS_ADVERTISE_HOST", required_unless_present = "remove")]
    advertise_host: Option<String>,
    /// This host's name, the value of its key (`/deis/hosts/<address>`); by default the
    /// kernel's host name.
    #[arg(long, env = "DEIS_HOST_NAME")]
    host_name: Option<String>,
    /// Where `/healthz` answers (200 while the rules are in place).
    #[arg(long, env = "DEIS_HOST_AGENT_LISTEN", default_value = "127.0.0.1:2226")]
    listen: SocketAddr,
    /// Seconds between checks of the rules (set again when a firewall reload emptied them).
    #[arg(long, env = "DEIS_HOST_AGENT_REFRESH_SECONDS", default_value_t = 10)]
    refresh_seconds: u64,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::HostAgent(agent)) = args.command {
        return host_agent(*agent);
    }
    deis_runtime::service_main("deis-controller", |shutdown| async move {
        let config = Config {
            listen: args.listen,
            advertise_host: args.common.advertise_host(args.advertise_host).await?,
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
            registries: args.registries,
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_controller::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}

/// `deis-controller host-agent`: the firewall of the apps' network on this host.
fn host_agent(args: HostAgentArgs) -> ExitCode {
    deis_runtime::service_main("deis-controller host-agent", |shutdown| async move {
        let bridge = args
            .app_bridge
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| deis_scheduler::bridge_name(&args.app_network));
        let network = AppNetwork::new(&args.app_network, &bridge, &args.app_firewall_ports);
        if args.remove {
            network.remove_firewall()?;
            tracing::info!(network = %network.name, bridge = %network.bridge, "The app network's rules are removed from this host");
            return Ok(());
        }
        if args
            .common
            .etcd_endpoints
            .iter()
            .all(|e| e.trim().is_empty())
        {
            return Err("the host agent needs the cluster's etcd: set DEIS_ETCD_ENDPOINTS".into());
        }
        let advertised = args
            .common
            .advertise_host(args.advertise_host.clone())
            .await?
            .unwrap_or_default();
        let address: Ipv4Addr = advertised.trim().parse().map_err(|_| {
            format!(
                "DEIS_ADVERTISE_HOST={advertised:?} is not an IPv4 address: give this host's address in the cluster, or auto"
            )
        })?;
        let host_name = match args.host_name.clone().filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|n| n.trim().to_owned())
                .unwrap_or_else(|_| address.to_string()),
        };
        let config = HostAgentConfig {
            network,
            address,
            host_name,
            refresh: std::time::Duration::from_secs(args.refresh_seconds.max(1)),
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let health = deis_runtime::bind(args.listen).await?;
        deis_controller::run_host_agent(config, store, health, shutdown).await?;
        Ok(())
    })
}
