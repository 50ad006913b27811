use std::process::ExitCode;

use clap::Parser;
use deis_runtime::CommonArgs;

/// The whole Deis platform in one process, on embedded defaults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the controller's API.
    #[arg(long, env = "DEIS_CONTROLLER_LISTEN", default_value = "0.0.0.0:8000")]
    controller_listen: std::net::SocketAddr,
    /// Address for app traffic.
    #[arg(long, env = "DEIS_ROUTER_LISTEN", default_value = "0.0.0.0:80")]
    router_listen: std::net::SocketAddr,
    /// Address of the router's health and metrics.
    #[arg(long, env = "DEIS_ROUTER_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    router_admin_listen: std::net::SocketAddr,
    /// Address of the builder's health endpoint.
    #[arg(long, env = "DEIS_BUILDER_HTTP_LISTEN", default_value = "0.0.0.0:2224")]
    builder_http_listen: std::net::SocketAddr,
    /// Address of the logger's API.
    #[arg(long, env = "DEIS_LOGGER_LISTEN", default_value = "0.0.0.0:8088")]
    logger_listen: std::net::SocketAddr,
    /// Address of the registry proxy.
    #[arg(
        long,
        env = "DEIS_REGISTRY_PROXY_LISTEN",
        default_value = "0.0.0.0:5000"
    )]
    registry_proxy_listen: std::net::SocketAddr,
    /// Directory for the controller's database and other state.
    #[arg(
        long,
        env = "DEIS_DATA_DIR",
        default_value = "/var/lib/deis/controller"
    )]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let drain = args.common.drain();
    let mut config = deis_platform::Config {
        store: args.common.store(),
        ..Default::default()
    };
    config.controller.listen = args.controller_listen;
    config.controller.data_dir = args.data_dir;
    config.controller.drain = drain;
    config.router.listen = args.router_listen;
    config.router.admin_listen = args.router_admin_listen;
    config.router.drain = drain;
    config.builder.http_listen = args.builder_http_listen;
    config.builder.drain = drain;
    config.logger.listen = args.logger_listen;
    config.logger.drain = drain;
    config.registry_proxy.listen = args.registry_proxy_listen;
    config.registry_proxy.drain = drain;
    deis_runtime::service_main("deis-platform", |shutdown| {
        deis_platform::start(config, shutdown)
    })
}
