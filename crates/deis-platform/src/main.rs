use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deis_runtime::CommonArgs;

/// The whole Deis platform in one process, on embedded defaults. Flags override the
/// configuration file, which overrides the defaults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A TOML configuration file (see deploy/platform.example.toml).
    #[arg(long, env = "DEIS_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the controller's API [default: 0.0.0.0:8000].
    #[arg(long, env = "DEIS_CONTROLLER_LISTEN")]
    controller_listen: Option<SocketAddr>,
    /// Address for app traffic [default: 0.0.0.0:80].
    #[arg(long, env = "DEIS_ROUTER_LISTEN")]
    router_listen: Option<SocketAddr>,
    /// Address for HTTPS app traffic, or `off` [default: 0.0.0.0:443].
    #[arg(long, env = "DEIS_ROUTER_HTTPS_LISTEN", value_parser = deis_runtime::parse_optional_addr)]
    router_https_listen: Option<deis_runtime::MaybeAddr>,
    /// Address of the router's health and metrics [default: 0.0.0.0:9090].
    #[arg(long, env = "DEIS_ROUTER_ADMIN_LISTEN")]
    router_admin_listen: Option<SocketAddr>,
    /// Address of the builder's health endpoint [default: 0.0.0.0:2224].
    #[arg(long, env = "DEIS_BUILDER_HTTP_LISTEN")]
    builder_http_listen: Option<SocketAddr>,
    /// Address of the builder's SSH server for `git push` [default: 0.0.0.0:2222].
    #[arg(long, env = "DEIS_BUILDER_SSH_LISTEN")]
    builder_ssh_listen: Option<SocketAddr>,
    /// Address of the logger's API [default: 0.0.0.0:8088].
    #[arg(long, env = "DEIS_LOGGER_LISTEN")]
    logger_listen: Option<SocketAddr>,
    /// Address for syslog datagrams, or `off` [default: 0.0.0.0:514].
    #[arg(long, env = "DEIS_LOGGER_SYSLOG_UDP", value_parser = deis_runtime::parse_optional_addr)]
    logger_syslog_udp: Option<deis_runtime::MaybeAddr>,
    /// Address for syslog over TCP, or `off` [default: 0.0.0.0:514].
    #[arg(long, env = "DEIS_LOGGER_SYSLOG_TCP", value_parser = deis_runtime::parse_optional_addr)]
    logger_syslog_tcp: Option<deis_runtime::MaybeAddr>,
    /// Address of the registry proxy [default: 0.0.0.0:5000].
    #[arg(long, env = "DEIS_REGISTRY_PROXY_LISTEN")]
    registry_proxy_listen: Option<SocketAddr>,
    /// A registry (`http://host:port`) to keep images in, fronted by the registry proxy, which
    /// the builder pushes through [default: none: images stay on the local engine].
    #[arg(long, env = "DEIS_REGISTRY_UPSTREAM")]
    registry_upstream: Option<String>,
    /// The platform domain: apps answer on `<app>.<domain>` [default: localhost, which needs no
    /// DNS set-up: browsers and curl resolve `*.localhost` to this machine].
    #[arg(long, env = "DEIS_PLATFORM_DOMAIN")]
    domain: Option<String>,
    /// Run app containers on Docker's default bridge, without the platform's network and
    /// firewall (which need root and iptables).
    #[arg(long, env = "DEIS_NO_APP_ISOLATION")]
    no_app_isolation: bool,
    /// A folder of buildpack repositories: `BUILDPACK_URL=file://...` may name those below it.
    #[arg(long, env = "DEIS_BUILDPACKS_DIR")]
    buildpacks_dir: Option<std::path::PathBuf>,
    /// Directory for the platform's state: the controller's database, the builder's
    /// repositories (in `builder/`) [default: /var/lib/deis/controller, /var/lib/deis/builder].
    #[arg(long, env = "DEIS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Memory of a container whose process type has no limit (`512M`; `0` for none).
    #[arg(long, env = "DEIS_DEFAULT_MEMORY")]
    default_memory: Option<String>,
    /// The most memory `deis limits:set` may give one container [default: 8G].
    #[arg(long, env = "DEIS_MAX_MEMORY")]
    max_memory: Option<String>,
    /// The most CPU shares `deis limits:set --cpu` may give [default: 1024].
    #[arg(long, env = "DEIS_MAX_CPU")]
    max_cpu: Option<u32>,
    /// Processes and threads one container may run (`0` for no limit) [default: 1024].
    #[arg(long, env = "DEIS_PIDS_LIMIT")]
    pids_limit: Option<u32>,
    /// The most containers of one process type [default: 50].
    #[arg(long, env = "DEIS_MAX_SCALE")]
    max_scale: Option<u32>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    deis_runtime::service_main("deis-platform", |shutdown| async move {
        let mut config = match &args.config {
            Some(path) => deis_platform::Config::load(path)?,
            None => deis_platform::Config::default(),
        };
        if !args.common.etcd_endpoints.is_empty() {
            config.store = args.common.store();
        } else if let (deis_store::StoreConfig::Etcd { tls, .. }, Some(files)) =
            (&mut config.store, args.common.etcd_tls())
        {
            // etcd from the file, its TLS files from the flags (DEIS_ETCD_CA_FILE, ...).
            *tls = Some(files);
        }
        let set = |slot: &mut SocketAddr, flag: Option<SocketAddr>| {
            if let Some(addr) = flag {
                *slot = addr;
            }
        };
        set(&mut config.controller.listen, args.controller_listen);
        set(&mut config.router.listen, args.router_listen);
        set(&mut config.router.admin_listen, args.router_admin_listen);
        if let Some(addr) = args.router_https_listen {
            config.router.https_listen = addr;
        }
        set(&mut config.builder.http_listen, args.builder_http_listen);
        set(&mut config.builder.ssh_listen, args.builder_ssh_listen);
        set(&mut config.logger.listen, args.logger_listen);
        if let Some(addr) = args.logger_syslog_udp {
            config.logger.syslog_udp = addr;
        }
        if let Some(addr) = args.logger_syslog_tcp {
            config.logger.syslog_tcp = addr;
        }
        set(
            &mut config.registry_proxy.listen,
            args.registry_proxy_listen,
        );
        config.registry_upstream = args.registry_upstream.or(config.registry_upstream);
        let labels = args.common.container_labels();
        if !labels.is_empty() {
            config.builder.labels = labels.clone();
            config.controller.container_labels = labels;
        }
        let limits = &mut config.controller.limits;
        if let Some(v) = args.default_memory {
            limits.default_memory = v;
        }
        if let Some(v) = args.max_memory {
            limits.max_memory = v;
        }
        if let Some(v) = args.max_cpu {
            limits.max_cpu = v;
        }
        if let Some(v) = args.pids_limit {
            limits.pids = v;
        }
        if let Some(v) = args.max_scale {
            limits.max_scale = v;
        }
        config.no_app_isolation |= args.no_app_isolation;
        if args.buildpacks_dir.is_some() {
            config.builder.buildpacks_dir = args.buildpacks_dir;
        }
        if let Some(dir) = args.data_dir {
            config.builder.data_dir = dir.join("builder");
            config.registry_proxy.cache_dir = dir.join("registry-proxy");
            config.controller.data_dir = dir;
        }
        deis_platform::start(config, args.domain, shutdown).await
    })
}
