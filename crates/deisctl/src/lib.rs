//! `deisctl`, the operator's tool, with the Deis v1 command line. Today: `config <target>
//! get|set|rm` on the config store (etcd). Installing and starting the platform's containers
//! (`install`, `start`, `status`, `journal`, ...) comes with the deisctl issue; those commands say
//! so and exit 1.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool prints

mod config;
mod units;

use clap::{Parser, Subcommand};

/// Deis control utility: installs, starts and configures the platform.
#[derive(Debug, Parser)]
#[command(name = "deisctl", version, about)]
struct Cli {
    /// The etcd endpoint(s), comma-separated.
    #[arg(
        long,
        env = "DEIS_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:2379",
        global = true
    )]
    endpoint: String,
    /// A prefix for every key (several platforms on one etcd).
    #[arg(long, env = "DEIS_ETCD_NAMESPACE", default_value = "", global = true)]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reads and changes platform settings: `deisctl config router set bodySize=10m`.
    Config {
        /// A component (`router`, `controller`, `builder`, `logs`, `platform`, ...).
        target: String,
        #[command(subcommand)]
        action: config::Action,
    },
    /// Writes the unit files, rendered with the platform's settings, into a directory.
    #[command(name = "refresh-units")]
    RefreshUnits {
        /// Where to write them.
        #[arg(short = 'p', long = "path", default_value = "~/.deis/units")]
        path: String,
        /// The image tag [default: /deis/platform/version, else latest].
        #[arg(short = 't', long = "tag")]
        tag: Option<String>,
    },
    /// Anything else of Deis v1's deisctl (install, start, stop, status, ...).
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// Why a command failed: one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Message(String),
}

/// Runs one command line; the exit status.
pub fn run(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = i32::from(e.use_stderr());
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let connect = || async {
            let endpoints: Vec<String> = cli.endpoint.split(',').map(str::to_owned).collect();
            deis_store::connect(&deis_store::StoreConfig::Etcd {
                endpoints,
                namespace: cli.namespace.clone(),
            })
            .await
            .map_err(|e| {
                Error::Message(format!(
                    "cannot reach etcd at {} ({e}); check --endpoint or DEIS_ETCD_ENDPOINTS",
                    cli.endpoint
                ))
            })
        };
        match cli.command {
            Command::Config { target, action } => {
                let store = connect().await?;
                config::run(store.as_ref(), &target, action).await
            }
            Command::RefreshUnits { path, tag } => {
                let store = connect().await?;
                let home = std::env::var("HOME").unwrap_or_default();
                let dir = match path.strip_prefix("~/") {
                    Some(rest) => std::path::PathBuf::from(home).join(rest),
                    None => std::path::PathBuf::from(path),
                };
                units::refresh(store.as_ref(), &dir, tag).await
            }
            Command::Other(words) => Err(Error::Message(format!(
                "`deisctl {}` is not available yet; run the platform on this host with `cargo run -p deis-platform`",
                words.join(" ")
            ))),
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
