//! `deisctl`, the operator's tool, with the Deis v1 command line: `install`, `start`, `stop`,
//! `restart`, `uninstall`, `scale`, `list`, `status` and `journal` run the platform's components
//! as containers on a Docker engine (local, or `DOCKER_HOST`), in the order of Deis §17.3;
//! `config` reads and changes settings in etcd; `refresh-units` writes the systemd/fleet units.
//! It is not a scheduler of apps (the controller is) and keeps no state of its own: Docker's
//! labels say what is installed, etcd holds the settings.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool prints

mod config;
mod platform;
mod units;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use deis_store::ConfigStore;
use platform::{Platform, Target};

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
    /// Names the platform's containers and volumes (`<prefix>-controller`), so that several
    /// platforms can share one Docker engine.
    #[arg(long, env = "DEISCTL_PREFIX", default_value = "deis", global = true)]
    prefix: String,
    /// The tag of the component images (`deis/controller:<tag>`, built by deploy/images/build).
    #[arg(
        long,
        env = "DEISCTL_IMAGE_TAG",
        default_value = "latest",
        global = true
    )]
    image_tag: String,
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
    /// Creates the components' containers (`platform`, `stateless-platform`, or components);
    /// the config store starts at once, since it holds the settings.
    Install {
        #[arg(required = true)]
        targets: Vec<String>,
        /// Routers to install with `platform` (they share the host's ports).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=255))]
        router_mesh_size: u32,
    },
    /// Removes the components' containers; `platform` also removes the apps' containers and
    /// every volume of the platform.
    Uninstall {
        #[arg(required = true)]
        targets: Vec<String>,
        /// Keep the data volumes of `platform` (database, builder, controller, etcd).
        #[arg(long)]
        keep_data: bool,
    },
    /// Starts components in order, each when the ones before it are healthy.
    Start {
        #[arg(required = true)]
        targets: Vec<String>,
        /// Seconds each component may take to become healthy.
        #[arg(long, env = "DEISCTL_START_TIMEOUT", default_value_t = 300)]
        timeout: u64,
    },
    /// Stops components, in reverse order.
    Stop {
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Stops, then starts components.
    Restart {
        #[arg(required = true)]
        targets: Vec<String>,
        /// Seconds each component may take to become healthy.
        #[arg(long, env = "DEISCTL_START_TIMEOUT", default_value_t = 300)]
        timeout: u64,
    },
    /// Lists the platform's units with their state, health and restarts.
    List,
    /// Shows each unit's state, health, last health check and restarts.
    Status {
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Prints a unit's output.
    Journal {
        #[arg(required = true)]
        targets: Vec<String>,
        /// Lines from the end.
        #[arg(short = 'n', long, default_value_t = 40)]
        lines: usize,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Sets the number of routers: `deisctl scale router=3`.
    Scale {
        #[arg(required = true)]
        counts: Vec<String>,
    },
    /// Anything else of Deis v1's deisctl (machines, ssh, dock, upgrade-prep, ...).
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
        let connect = || connect_store(&cli.endpoint, &cli.namespace);
        let platform = |timeout: u64| {
            Platform::connect(platform::Options {
                endpoints: cli.endpoint.clone(),
                namespace: cli.namespace.clone(),
                prefix: cli.prefix.clone(),
                tag: cli.image_tag.clone(),
                start_timeout: Duration::from_secs(timeout.max(1)),
            })
        };
        match cli.command {
            Command::Install {
                targets,
                router_mesh_size,
            } => {
                let targets = parse_targets(&targets)?;
                platform(300).await?.install(&targets, router_mesh_size).await
            }
            Command::Uninstall { targets, keep_data } => {
                let targets = parse_targets(&targets)?;
                platform(300).await?.uninstall(&targets, keep_data).await
            }
            Command::Start { targets, timeout } => {
                let targets = parse_targets(&targets)?;
                platform(timeout).await?.start(&targets).await
            }
            Command::Stop { targets } => {
                let targets = parse_targets(&targets)?;
                platform(300).await?.stop(&targets).await
            }
            Command::Restart { targets, timeout } => {
                let targets = parse_targets(&targets)?;
                platform(timeout).await?.restart(&targets).await
            }
            Command::List => platform(300).await?.list().await,
            Command::Status { targets } => {
                let targets = parse_targets(&targets)?;
                platform(300).await?.status(&targets).await
            }
            Command::Journal {
                targets,
                lines,
                follow,
            } => {
                let targets = parse_targets(&targets)?;
                platform(300).await?.journal(&targets, lines, follow).await
            }
            Command::Scale { counts } => {
                let platform = platform(300).await?;
                for count in counts {
                    let (component, n) = parse_count(&count)?;
                    platform.scale(component, n).await?;
                }
                Ok(())
            }
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
                "`deisctl {}` is not a command of this deisctl (there is no fleet: components run as containers); see deisctl --help",
                words.first().map(String::as_str).unwrap_or_default()
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

/// Connects to the config store, with an error that says what to check.
pub(crate) async fn connect_store(
    endpoint: &str,
    namespace: &str,
) -> Result<Arc<dyn ConfigStore>, Error> {
    let endpoints: Vec<String> = endpoint.split(',').map(str::to_owned).collect();
    deis_store::connect(&deis_store::StoreConfig::Etcd {
        endpoints,
        namespace: namespace.to_owned(),
    })
    .await
    .map_err(|e| {
        Error::Message(format!(
            "cannot reach etcd at {endpoint} ({e}); start it (deisctl install platform starts one) or check --endpoint or DEIS_ETCD_ENDPOINTS"
        ))
    })
}

fn parse_targets(words: &[String]) -> Result<Vec<Target>, Error> {
    words.iter().map(|w| Target::parse(w)).collect()
}

/// `router=3`.
fn parse_count(arg: &str) -> Result<(platform::Component, u32), Error> {
    let bad = || {
        Error::Message(format!(
            "'{arg}' does not match the pattern 'component=num', ex: router=2"
        ))
    };
    let (name, n) = arg.split_once('=').ok_or_else(bad)?;
    let n: u32 = n.parse().map_err(|_| bad())?;
    match Target::parse(name)? {
        Target::Component { component, .. } => Ok((component, n)),
        Target::Platform { .. } => Err(Error::Message(format!("cannot scale {name} component"))),
    }
}
