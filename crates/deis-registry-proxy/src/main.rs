//! The `deis-registry-proxy` binary: flags and environment variables to a `Config`, then `run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deis_registry_proxy::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis registry proxy: the platform's front of the Docker registry, with a blob cache.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the registry API.
    #[arg(
        long,
        env = "DEIS_REGISTRY_PROXY_LISTEN",
        default_value = "0.0.0.0:5000"
    )]
    listen: SocketAddr,
    /// Host name other components use to reach this service; `auto`: this host's address
    /// towards the first etcd endpoint.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    /// The registry behind the proxy (`http://host:port`) [default: http://127.0.0.1:5001].
    #[arg(long, env = "DEIS_REGISTRY_PROXY_UPSTREAM")]
    upstream: Option<String>,
    /// Where blobs and manifests are cached [default: /var/lib/deis/registry-proxy].
    #[arg(long, env = "DEIS_REGISTRY_PROXY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The most bytes the cache keeps [default: 10 GiB].
    #[arg(long, env = "DEIS_REGISTRY_PROXY_CACHE_MAX_BYTES")]
    cache_max_bytes: Option<u64>,
    /// The largest request body accepted, in bytes [default: 10 GiB].
    #[arg(long, env = "DEIS_REGISTRY_PROXY_MAX_UPLOAD_BYTES")]
    max_upload_bytes: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-registry-proxy", |shutdown| async move {
        let defaults = Config::default();
        let config = Config {
            listen: args.listen,
            advertise_host: args.common.advertise_host(args.advertise_host).await?,
            upstream: args.upstream.unwrap_or(defaults.upstream),
            cache_dir: args.cache_dir.unwrap_or(defaults.cache_dir),
            cache_max_bytes: args.cache_max_bytes.unwrap_or(defaults.cache_max_bytes),
            max_upload_bytes: args.max_upload_bytes.unwrap_or(defaults.max_upload_bytes),
            drain: args.common.drain(),
            publish: defaults.publish,
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_registry_proxy::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
