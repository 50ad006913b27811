use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use deis_builder::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis builder: receives `git push` and turns commits into releases.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the health endpoint.
    #[arg(long, env = "DEIS_BUILDER_HTTP_LISTEN", default_value = "0.0.0.0:2224")]
    http_listen: SocketAddr,
    /// Host name other components use to reach the builder.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-builder", |shutdown| async move {
        let config = Config {
            http_listen: args.http_listen,
            advertise_host: args.advertise_host,
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_builder::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
