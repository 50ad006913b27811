use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use deis_logger::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis logger: stores app log lines and serves queries and live follows.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the API.
    #[arg(long, env = "DEIS_LOGGER_LISTEN", default_value = "0.0.0.0:8088")]
    listen: SocketAddr,
    /// Address for syslog datagrams, or `off`.
    #[arg(long, env = "DEIS_LOGGER_SYSLOG_UDP", default_value = "0.0.0.0:514", value_parser = deis_runtime::parse_optional_addr)]
    syslog_udp: deis_runtime::MaybeAddr,
    /// Address for syslog over TCP, or `off`.
    #[arg(long, env = "DEIS_LOGGER_SYSLOG_TCP", default_value = "0.0.0.0:514", value_parser = deis_runtime::parse_optional_addr)]
    syslog_tcp: deis_runtime::MaybeAddr,
    /// Networks syslog is taken from (comma-separated); others are refused and counted.
    #[arg(
        long,
        env = "DEIS_LOGGER_SYSLOG_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128"
    )]
    syslog_allow: Vec<ipnet::IpNet>,
    /// Lines kept per app.
    #[arg(long, env = "DEIS_LOGGER_MAX_LINES", default_value_t = 10_000)]
    max_lines: usize,
    /// Bytes kept per app.
    #[arg(long, env = "DEIS_LOGGER_MAX_BYTES", default_value_t = 8 << 20)]
    max_bytes: usize,
    /// Keep lines in Redis (`redis://host:port/db`) instead of in memory.
    #[arg(long, env = "DEIS_LOGGER_REDIS_URL")]
    redis_url: Option<String>,
    /// Run only the shipper (one per host in the cluster): follow this host's app containers
    /// into the logger found in the config store.
    #[arg(long)]
    ship_only: bool,
    /// Where the shipper keeps its positions.
    #[arg(
        long,
        env = "DEIS_SHIPPER_STATE",
        default_value = "/var/lib/deis/shipper.json"
    )]
    shipper_state: std::path::PathBuf,
    /// Host name other components use to reach this service; `auto`: this host's address
    /// towards the first etcd endpoint.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-logger", |shutdown| async move {
        let config = Config {
            listen: args.listen,
            syslog_udp: args.syslog_udp,
            syslog_tcp: args.syslog_tcp,
            syslog_from: args.syslog_allow,
            max_lines: args.max_lines,
            max_bytes: args.max_bytes,
            redis_url: args.redis_url,
            advertise_host: args.common.advertise_host(args.advertise_host).await?,
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        if args.ship_only {
            let docker = deis_docker::connect("").await?;
            let shipper = deis_logger::shipper::ShipperConfig {
                host: config
                    .advertise_host
                    .clone()
                    .unwrap_or_else(|| "localhost".to_owned()),
                logger_url: None,
                state_file: args.shipper_state,
                labels: args.common.container_labels(),
            };
            deis_logger::shipper::run(shipper, docker, store, shutdown).await;
            return Ok(());
        }
        let listeners = Listeners::bind(&config).await?;
        deis_logger::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
