use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use deis_registry_proxy::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis registry proxy: the platform's front of the Docker registry.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the API.
    #[arg(
        long,
        env = "DEIS_REGISTRY_PROXY_LISTEN",
        default_value = "0.0.0.0:5000"
    )]
    listen: SocketAddr,
    /// Host name other components use to reach this service.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-registry-proxy", |shutdown| async move {
        let config = Config {
            listen: args.listen,
            advertise_host: args.advertise_host,
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_registry_proxy::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
