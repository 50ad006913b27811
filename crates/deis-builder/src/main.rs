use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deis_builder::{Config, Listeners};
use deis_runtime::CommonArgs;

/// The Deis builder: receives `git push` and turns commits into releases.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the SSH server for `git push`.
    #[arg(long, env = "DEIS_BUILDER_SSH_LISTEN", default_value = "0.0.0.0:2222")]
    ssh_listen: SocketAddr,
    /// Address of the health endpoint.
    #[arg(long, env = "DEIS_BUILDER_HTTP_LISTEN", default_value = "0.0.0.0:2224")]
    http_listen: SocketAddr,
    /// Host name other components use to reach the builder; `auto`: this host's address
    /// towards the first etcd endpoint.
    #[arg(long, env = "DEIS_ADVERTISE_HOST")]
    advertise_host: Option<String>,
    /// Repositories, build scratch space.
    #[arg(
        long,
        env = "DEIS_BUILDER_DATA_DIR",
        default_value = "/var/lib/deis/builder"
    )]
    data_dir: PathBuf,
    /// The controller's gRPC URL [default: from the config store].
    #[arg(long, env = "DEIS_CONTROLLER_URL")]
    controller_url: Option<String>,
    /// The image buildpack builds run in.
    #[arg(long, env = "DEIS_STACK_IMAGE", default_value = "deis/stack:latest")]
    stack_image: String,
    /// The image slugs run on [default: the stack image].
    #[arg(long, env = "DEIS_RUNNER_IMAGE")]
    runner_image: Option<String>,
    /// Registry (host:port) to push images to [default: none, images stay on this engine].
    #[arg(long, env = "DEIS_REGISTRY")]
    registry: Option<String>,
    /// A folder of buildpack repositories: `BUILDPACK_URL=file://...` may name those below it.
    #[arg(long, env = "DEIS_BUILDPACKS_DIR")]
    buildpacks_dir: Option<std::path::PathBuf>,
    /// The Docker network builds run on (made by deisctl); the default bridge if absent.
    #[arg(long, env = "DEIS_APP_NETWORK")]
    network: Option<String>,
    /// Memory of one build, in MiB.
    #[arg(long, env = "DEIS_BUILDER_BUILD_MEMORY_MIB", default_value_t = 2048)]
    build_memory_mib: i64,
    /// Largest push accepted, in bytes.
    #[arg(long, env = "DEIS_BUILDER_MAX_PUSH_BYTES", default_value_t = 1 << 30)]
    max_push_bytes: u64,
    /// Longest build, in seconds.
    #[arg(long, env = "DEIS_BUILDER_BUILD_TIMEOUT", default_value_t = 1200)]
    build_timeout: u64,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-builder", |shutdown| async move {
        let config = Config {
            ssh_listen: args.ssh_listen,
            http_listen: args.http_listen,
            advertise_host: args.common.advertise_host(args.advertise_host).await?,
            data_dir: args.data_dir,
            controller_url: args.controller_url,
            stack_image: args.stack_image,
            runner_image: args.runner_image,
            registry: args.registry,
            buildpacks_dir: args.buildpacks_dir,
            build_memory: args.build_memory_mib.saturating_mul(1 << 20),
            network: args.network,
            max_push_bytes: args.max_push_bytes,
            build_timeout: std::time::Duration::from_secs(args.build_timeout),
            labels: args.common.container_labels(),
            drain: args.common.drain(),
        };
        let store = deis_store::connect(&args.common.store()).await?;
        let listeners = Listeners::bind(&config).await?;
        deis_builder::run(config, store, listeners, shutdown).await?;
        Ok(())
    })
}
