//! `deisctl`, the operator's tool, with the Deis v1 command line: `install`, `start`, `stop`,
//! `restart`, `uninstall`, `scale`, `list`, `status` and `journal` run the platform's components
//! as containers on a Docker engine (local, or `DOCKER_HOST`), as services across a Docker
//! Swarm's hosts (`DEISCTL_SCHEDULER=swarm`, from a workstation through an SSH tunnel,
//! `DEISCTL_TUNNEL`), or as systemd units on a host (`systemd`), in the order of Deis §17.3;
//! `config` reads and changes settings in etcd; `refresh-units` writes the systemd/fleet units.
//! It is not a scheduler of apps (the controller is) and keeps no state of its own: Docker's
//! labels (or the Swarm's, or systemd) say what is installed, etcd holds the settings.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool prints

mod config;
mod pki;
mod platform;
mod tunnel;
mod units;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use deis_store::ConfigStore;
use platform::{AnyPlatform, Platform, Target};

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
    /// Where the components run: `docker` (containers on one engine), `swarm` (services
    /// across a Docker Swarm's hosts, reached through a manager) or `systemd` (the unit files
    /// on a host run by systemd).
    #[arg(
        long,
        env = "DEISCTL_SCHEDULER",
        value_enum,
        default_value = "docker",
        global = true
    )]
    scheduler: Scheduler,
    /// An SSH tunnel, `[user@]host[:port]`, to a Swarm manager (its Docker API and etcd are
    /// reached through it) or to a systemd host (user `core` unless given).
    #[arg(long, env = "DEISCTL_TUNNEL", global = true)]
    tunnel: Option<String>,
    /// Known host keys for the tunnel and the hosts behind it [default: ~/.ssh/known_hosts].
    #[arg(long, env = "DEISCTL_KNOWN_HOSTS_FILE", global = true)]
    known_hosts_file: Option<std::path::PathBuf>,
    /// Refuse hosts whose key is not in the known hosts file.
    #[arg(
        long,
        env = "DEISCTL_STRICT_HOST_KEY_CHECKING",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    strict_host_key_checking: bool,
    /// Seconds an SSH connection may take.
    #[arg(
        long,
        env = "DEISCTL_SSH_TIMEOUT",
        default_value_t = 10.0,
        global = true
    )]
    ssh_timeout: f64,
    /// The SSH private key [default: the ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa].
    #[arg(long, env = "DEISCTL_SSH_KEY", global = true)]
    ssh_key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the platform's components run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scheduler {
    Docker,
    Swarm,
    /// The unit files, written into a host's /etc/systemd/system and run by its systemd (as
    /// CoreOS's fleet ran them), through the tunnel or on this host.
    Systemd,
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
        /// Routers to install with `platform` (they share the host's ports) [default: one per
        /// host: 1, on a Swarm every host].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=255))]
        router_mesh_size: Option<u32>,
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
    /// Replaces what a lost host ran on another host of the Swarm: an etcd member
    /// (`deisctl replace etcd@3 host4`: removed from etcd and added again there) or its
    /// controller (`deisctl replace controller host4`).
    Replace {
        /// `etcd@<n>` or `controller`.
        unit: String,
        /// The Swarm host (name or address) to run it on.
        host: String,
    },
    /// Brings the database (with Redis) or the registry of a lost host back on another host of
    /// the Swarm from the backup's copy (`deisctl restore database host4`), and gives the
    /// components that use it its new address.
    Restore {
        /// `database` or `registry`.
        component: String,
        /// The Swarm host (name or address) to run it on.
        host: String,
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
    let result = runtime.block_on(execute(cli));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// The platform the command line names: containers on one engine, services on a Swarm, or
/// units on a host run by systemd.
async fn open(cli: &Cli, timeout: u64) -> Result<AnyPlatform, Error> {
    let options = platform::Options {
        endpoints: cli.endpoint.clone(),
        namespace: cli.namespace.clone(),
        prefix: cli.prefix.clone(),
        tag: cli.image_tag.clone(),
        start_timeout: Duration::from_secs(timeout.max(1)),
    };
    if cli.scheduler == Scheduler::Docker {
        if let Some(tunnel) = &cli.tunnel {
            return Err(Error::Message(format!(
                "DEISCTL_TUNNEL={tunnel} reaches a cluster: set DEISCTL_SCHEDULER=swarm (or systemd) too (or unset DEISCTL_TUNNEL for this host's engine)"
            )));
        }
        return Ok(AnyPlatform::Local(Platform::connect(options).await?));
    }
    let spec = cli
        .tunnel
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(tunnel::TunnelSpec::parse)
        .transpose()?;
    let home = std::env::var_os("HOME").unwrap_or_default();
    let ssh = tunnel::SshOptions {
        known_hosts_file: cli.known_hosts_file.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(home)
                .join(".ssh")
                .join("known_hosts")
        }),
        strict_host_key_checking: cli.strict_host_key_checking,
        timeout: Duration::from_secs_f64(cli.ssh_timeout.clamp(0.1, 3600.0)),
        identity: cli.ssh_key.clone(),
    };
    if cli.scheduler == Scheduler::Systemd {
        return Ok(AnyPlatform::Systemd(
            platform::systemd::SystemdPlatform::connect(options, spec, ssh).await?,
        ));
    }
    let user = spec
        .as_ref()
        .map_or_else(|| tunnel::DEFAULT_USER.to_owned(), |s| s.user.clone());
    let access = platform::AccessOptions {
        tunnel: spec,
        ssh,
        user,
    };
    Ok(AnyPlatform::Swarm(Box::new(
        platform::SwarmPlatform::connect(options, access).await?,
    )))
}

/// The config store of the platform the command line names, with what keeps its connection
/// open (on a Swarm, the tunnel's forwards).
async fn store_of(cli: &Cli) -> Result<(Arc<dyn ConfigStore>, Option<AnyPlatform>), Error> {
    match cli.scheduler {
        Scheduler::Docker => Ok((connect_store(&cli.endpoint, &cli.namespace).await?, None)),
        Scheduler::Swarm | Scheduler::Systemd => {
            let platform = open(cli, 300).await?;
            let store = match &platform {
                AnyPlatform::Swarm(p) => p.store().await?,
                AnyPlatform::Systemd(p) => p.store().await?,
                AnyPlatform::Local(_) => connect_store(&cli.endpoint, &cli.namespace).await?,
            };
            Ok((store, Some(platform)))
        }
    }
}

async fn execute(cli: Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Install {
            targets,
            router_mesh_size,
        } => {
            let targets = parse_targets(targets)?;
            open(&cli, 300)
                .await?
                .install(&targets, *router_mesh_size)
                .await
        }
        Command::Uninstall { targets, keep_data } => {
            let targets = parse_targets(targets)?;
            open(&cli, 300).await?.uninstall(&targets, *keep_data).await
        }
        Command::Start { targets, timeout } => {
            let targets = parse_targets(targets)?;
            open(&cli, *timeout).await?.start(&targets).await
        }
        Command::Stop { targets } => {
            let targets = parse_targets(targets)?;
            open(&cli, 300).await?.stop(&targets).await
        }
        Command::Restart { targets, timeout } => {
            let targets = parse_targets(targets)?;
            open(&cli, *timeout).await?.restart(&targets).await
        }
        Command::List => open(&cli, 300).await?.list().await,
        Command::Status { targets } => {
            let targets = parse_targets(targets)?;
            open(&cli, 300).await?.status(&targets).await
        }
        Command::Journal {
            targets,
            lines,
            follow,
        } => {
            let targets = parse_targets(targets)?;
            open(&cli, 300)
                .await?
                .journal(&targets, *lines, *follow)
                .await
        }
        Command::Scale { counts } => {
            let platform = open(&cli, 300).await?;
            for count in counts {
                let (component, n) = parse_count(count)?;
                platform.scale(component, n).await?;
            }
            Ok(())
        }
        Command::Replace { unit, host } => {
            let Target::Component {
                component,
                instance,
            } = Target::parse(unit)?
            else {
                return Err(Error::Message(format!(
                    "{unit}: name one etcd member (etcd@3) or controller (deisctl list shows them)"
                )));
            };
            let unit = platform::Unit {
                component,
                instance,
            };
            open(&cli, 300).await?.replace(unit, host).await
        }
        Command::Restore { component, host } => {
            let component = match platform::Component::parse(component) {
                Some(c @ (platform::Component::Database | platform::Component::Registry)) => c,
                _ => {
                    return Err(Error::Message(format!(
                        "{component}: deisctl restore brings back the database or the registry"
                    )));
                }
            };
            open(&cli, 600).await?.restore(component, host).await
        }
        Command::Config { target, action } => {
            let (store, _open) = store_of(&cli).await?;
            config::run(store.as_ref(), target, action.clone()).await
        }
        Command::RefreshUnits { path, tag } => {
            let (store, _open) = store_of(&cli).await?;
            let home = std::env::var("HOME").unwrap_or_default();
            let dir = match path.strip_prefix("~/") {
                Some(rest) => std::path::PathBuf::from(home).join(rest),
                None => std::path::PathBuf::from(path),
            };
            units::refresh(store.as_ref(), &dir, tag.clone()).await
        }
        Command::Other(words) => Err(Error::Message(format!(
            "`deisctl {}` is not a command of this deisctl (there is no fleet: components run as containers or Swarm services); see deisctl --help",
            words.first().map(String::as_str).unwrap_or_default()
        ))),
    }
}

/// Connects to the config store, with an error that says what to check.
pub(crate) async fn connect_store(
    endpoint: &str,
    namespace: &str,
) -> Result<Arc<dyn ConfigStore>, Error> {
    let endpoints: Vec<String> = endpoint.split(',').map(str::to_owned).collect();
    connect_store_with(&endpoints, namespace, None).await
}

/// Connects to etcd at `endpoints`, with a client certificate when `tls` is given.
pub(crate) async fn connect_store_with(
    endpoints: &[String],
    namespace: &str,
    tls: Option<deis_store::EtcdTls>,
) -> Result<Arc<dyn ConfigStore>, Error> {
    deis_store::connect(&deis_store::StoreConfig::Etcd {
        endpoints: endpoints.to_vec(),
        namespace: namespace.to_owned(),
        tls,
    })
    .await
    .map_err(|e| {
        Error::Message(format!(
            "cannot reach etcd at {} ({e}); start it (deisctl install platform starts one) or check --endpoint or DEIS_ETCD_ENDPOINTS",
            endpoints.join(",")
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
