//! The host agent (`deis-controller host-agent`) on a simulated Swarm of two hosts: h1, a
//! manager, holds the platform's ports (etcd, a listener standing for the registry on 5001, one
//! for the router on 80); h2, a worker, runs an app's two tasks, deployed by the
//! `SwarmScheduler` on the Swarm's app network (`SwarmAppNetwork`). Without the agents an app
//! reaches h1's registry; with an agent on each host it reaches h1 on the router's port only,
//! nothing of its own host but that, and not the other app container, while the workstation
//! (an address outside the cluster's hosts) stays reachable and h1 still reaches the app. A
//! flushed firewall comes back, SIGTERM keeps the rules, `host-agent --remove` removes them.

mod net;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use deis_scheduler::{
    DockerConfig, EngineEndpoint, ReleaseSpec, Scheduler, SwarmAppNetwork, SwarmScheduler,
};
use deis_testkit::{
    Cluster, Outside, ServiceProcess, TestDocker, assert_stops_cleanly, eventually, http_get,
};
use net::Reach;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_deis-controller");
const NETWORK: &str = "deis-apps";
const ROUTER: u16 = 80;
const REGISTRY: u16 = 5001;
const ETCD: u16 = 2379;
const AGENT_HEALTH: u16 = 2226;
const APP: &str = "probe";
const WEB: &str =
    "mkdir -p /tmp/www && echo app > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

/// The host agent on host `i`, checking its rules every second.
fn start_agent(cluster: &Cluster, i: usize, etcd: &str) -> ServiceProcess {
    let host = cluster.host(i);
    let mut command = cluster.nsenter(i, BIN);
    command
        .arg("host-agent")
        .env("RUST_LOG", "info")
        .env("DEIS_APP_NETWORK", NETWORK)
        .env("DEIS_APP_FIREWALL_PORTS", format!("{ROUTER},443"))
        .env("DEIS_ADVERTISE_HOST", "auto")
        .env("DEIS_ETCD_ENDPOINTS", etcd)
        .env("DEIS_HOST_NAME", host.name())
        .env(
            "DEIS_HOST_AGENT_LISTEN",
            SocketAddr::from((host.addr(), AGENT_HEALTH)).to_string(),
        )
        .env("DEIS_HOST_AGENT_REFRESH_SECONDS", "1");
    ServiceProcess::spawn(
        &format!("the host agent of {}", host.name()),
        command,
        &host.dir().join("host-agent.log"),
    )
}

/// The app's containers on `engine` with their addresses on the app network.
async fn app_containers(engine: &Docker) -> Vec<(String, String)> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={APP}", deis_docker::labels::APP)],
    )]);
    let listed = engine
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot list h2's containers: {e}"));
    listed
        .into_iter()
        .filter_map(|c| {
            let ip = c
                .network_settings?
                .networks?
                .get(NETWORK)?
                .ip_address
                .clone()?;
            Some((c.id?, ip))
        })
        .collect()
}

/// Runs `program args` on host `i`; whether it succeeded, and its output.
async fn on_host(cluster: &Cluster, i: usize, program: &str, args: &[&str]) -> (bool, String) {
    let mut command = cluster.nsenter(i, program);
    command.args(args);
    run(command).await
}

/// Runs `command`; whether it succeeded, and its output.
async fn run(command: std::process::Command) -> (bool, String) {
    let what = format!("{command:?}");
    let out = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_containers_reach_other_hosts_on_the_routers_ports_only() {
    let started = Instant::now();
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let cluster = Cluster::start_with(1, 1).await;
    cluster.load_images(&[&image]).await;
    let (h1, h2) = (cluster.host(0).clone(), cluster.host(1).clone());
    let (_etcd, store) = net::etcd_on(&cluster, 0).await;
    let etcd = format!("http://{}:{ETCD}", h1.addr());
    let set_up = started.elapsed();

    net::serve_banner_in(&h1.netns_path(), (h1.addr(), REGISTRY).into(), "registry");
    net::serve_banner_in(&h1.netns_path(), (h1.addr(), ROUTER).into(), "router");
    // The workstation is on the hosts' network but not a host of the cluster.
    let outside = std::net::TcpListener::bind((cluster.workstation_addr(), 0))
        .unwrap_or_else(|e| panic!("cannot listen on the workstation: {e}"));
    let outside_addr = outside
        .local_addr()
        .unwrap_or_else(|e| panic!("no address: {e}"));
    net::serve_banner(outside, "outside");

    // The Swarm's app network, made as deisctl makes it; made again, nothing changes.
    let mut engines = Vec::new();
    for host in cluster.hosts() {
        engines.push(
            deis_docker::connect(&host.docker_host())
                .await
                .unwrap_or_else(|e| panic!("cannot reach the engine of {}: {e}", host.name())),
        );
    }
    let network = SwarmAppNetwork {
        labels: docker.labels(),
        ..SwarmAppNetwork::new(NETWORK)
    };
    for _ in 0..2 {
        network
            .create(&engines, &engines[0])
            .await
            .unwrap_or_else(|e| panic!("the Swarm's app network: {e}"));
    }

    // Two web tasks, placed on h2 by a tag.
    let mut label = cluster.docker(0);
    label.args([
        "node",
        "update",
        "--label-add",
        "deis-test-apps=yes",
        h2.name(),
    ]);
    let (labelled, out) = run(label).await;
    assert!(labelled, "labelling h2: {out}");
    let shutdown = CancellationToken::new();
    let config = DockerConfig {
        engines: vec![EngineEndpoint {
            url: h1.docker_host(),
            advertise_host: h1.addr().to_string(),
            bind_ip: "0.0.0.0".to_owned(),
        }],
        network: Some(NETWORK.to_owned()),
        extra_labels: docker.labels(),
        health_timeout: Duration::from_secs(60),
        drain: Duration::from_millis(100),
        ..DockerConfig::default()
    };
    let scheduler = SwarmScheduler::connect(store.clone(), config, shutdown.clone())
        .await
        .unwrap_or_else(|e| panic!("the Swarm scheduler on h1: {e}"));
    let release = ReleaseSpec {
        version: 1,
        image: image.clone(),
        env: BTreeMap::new(),
        commands: [("web".to_owned(), WEB.to_owned())].into(),
        memory: BTreeMap::new(),
        cpu: BTreeMap::new(),
        tags: [("deis-test-apps".to_owned(), "yes".to_owned())].into(),
    };
    let desired = deis_scheduler::Desired {
        app: APP.parse().expect("an app name"),
        release,
        containers: (1..=2)
            .map(|n| {
                format!("{APP}_v1.web.{n}")
                    .parse()
                    .expect("a container name")
            })
            .collect(),
    };
    scheduler
        .converge(&desired)
        .await
        .unwrap_or_else(|e| panic!("web=2 on h2: {e}"));
    let deployed = started.elapsed();
    let apps = app_containers(&engines[1]).await;
    assert_eq!(apps.len(), 2, "both tasks on h2, on {NETWORK}: {apps:?}");
    let ((a, _), (_, b_ip)) = (apps[0].clone(), apps[1].clone());
    let (bridge_up, out) = on_host(&cluster, 1, "ip", &["link", "show", &network.bridge]).await;
    assert!(bridge_up, "h2 has the bridge {}: {out}", network.bridge);
    let routes = store
        .list(&format!("/deis/services/{APP}/"))
        .await
        .unwrap_or_else(|e| panic!("cannot list the routes: {e}"));
    let route: SocketAddr = routes.kvs[0]
        .value
        .parse()
        .unwrap_or_else(|e| panic!("a route is host:port: {e}"));
    assert_eq!(route.ip(), std::net::IpAddr::from(h2.addr()));

    let registry = SocketAddr::from((h1.addr(), REGISTRY));
    assert_eq!(
        net::reach(&cluster, 1, &a, registry).await,
        Reach::Answered("registry".to_owned()),
        "without the host agents an app reaches another host's registry: the hole they close"
    );

    // An agent on each host: healthy, registered, and the hole is closed.
    let mut agents = vec![
        start_agent(&cluster, 0, &etcd),
        start_agent(&cluster, 1, &etcd),
    ];
    for (i, host) in [&h1, &h2].into_iter().enumerate() {
        let health = SocketAddr::from((host.addr(), AGENT_HEALTH));
        let agent = &mut agents[i];
        eventually(
            Duration::from_secs(30),
            &format!("the host agent of {} to be healthy", host.name()),
            || {
                agent.assert_running();
                async move {
                    match http_get(health, "/healthz") {
                        Ok((200, _)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    }
    let store = &store;
    let registered = eventually(Duration::from_secs(30), "both hosts in etcd", || async {
        let listing = store
            .list("/deis/hosts/")
            .await
            .map_err(|e| e.to_string())?;
        let hosts: BTreeMap<String, (String, bool)> = listing
            .kvs
            .into_iter()
            .map(|kv| (kv.key, (kv.value, kv.lease.is_some())))
            .collect();
        if hosts.len() == 2 {
            Ok(hosts)
        } else {
            Err(format!("{hosts:?}"))
        }
    })
    .await;
    for host in [&h1, &h2] {
        assert_eq!(
            registered.get(&format!("/deis/hosts/{}", host.addr())),
            Some(&(host.name().to_owned(), true)),
            "{} is registered under a lease: {registered:?}",
            host.name()
        );
    }
    let cluster = &cluster;
    let a = a.as_str();
    eventually(
        Duration::from_secs(30),
        "h2's agent to close h1's registry",
        || async move {
            match net::reach(cluster, 1, a, registry).await {
                Reach::Refused => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let closed = started.elapsed();

    let b_bridge: SocketAddr = format!("{b_ip}:5000")
        .parse()
        .unwrap_or_else(|e| panic!("{b_ip} is an address: {e}"));
    for (target, expected, what) in [
        (registry, Reach::Refused, "the registry on another host"),
        (
            (h1.addr(), ETCD).into(),
            Reach::Refused,
            "etcd on another host",
        ),
        (
            (h1.addr(), AGENT_HEALTH).into(),
            Reach::Refused,
            "another platform port of another host",
        ),
        (
            (h2.addr(), AGENT_HEALTH).into(),
            Reach::Refused,
            "a platform port of its own host",
        ),
        (
            route,
            Reach::Refused,
            "an app's published port on its own host",
        ),
        (
            b_bridge,
            Reach::TimedOut,
            "another app container's bridge address (dropped)",
        ),
        (
            (h1.addr(), ROUTER).into(),
            Reach::Answered("router".to_owned()),
            "the router's port of another host",
        ),
        (
            outside_addr,
            Reach::Answered("outside".to_owned()),
            "an address outside the cluster's hosts",
        ),
    ] {
        assert_eq!(
            net::reach(cluster, 1, a, target).await,
            expected,
            "from an app container on h2 to {what} ({target})"
        );
    }
    // The router's way to the app still works across hosts (its replies pass the rules).
    let (status, body) = net::in_netns(&h1.netns_path(), move || http_get(route, "/"))
        .unwrap_or_else(|e| panic!("h1 cannot reach the app at {route}: {e}"));
    assert_eq!(
        (status, body.trim()),
        (200, "app"),
        "h1 reaches the app on h2"
    );
    // The Internet stand-in hangs off this machine, which the hosts have no route through.
    let internet = Outside::create();
    let (routable, out) = on_host(
        cluster,
        1,
        "ip",
        &["route", "get", &internet.ip().to_string()],
    )
    .await;
    if routable {
        let netns = net::netns_of(&internet.command("true")).expect("the Outside's namespace");
        net::serve_banner_in(&netns, (internet.ip(), 8080).into(), "internet");
        assert_eq!(
            net::reach(cluster, 1, a, (internet.ip(), 8080).into()).await,
            Reach::Answered("internet".to_owned()),
            "the Internet"
        );
    } else {
        eprintln!(
            "skipped: deis_testkit::Outside ({}) is not routable from the cluster's hosts ({}); \
             the workstation stood for the outside",
            internet.ip(),
            out.trim()
        );
    }

    // A firewall reload empties the rules; the agent sets them again.
    let (flushed, out) = on_host(cluster, 1, "iptables", &["-w", "-F", "DOCKER-USER"]).await;
    assert!(flushed, "flushing DOCKER-USER on h2: {out}");
    eventually(
        Duration::from_secs(30),
        "h2's agent to set its flushed rules again",
        || {
            let log = agents[1].output();
            async move {
                if !log.contains("were not in place") {
                    return Err("no word of it in the agent's log".to_owned());
                }
                match net::reach(cluster, 1, a, registry).await {
                    Reach::Refused => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    // SIGTERM: the agent goes, its rules stay.
    let agent = agents.pop().expect("h2's agent");
    assert_stops_cleanly(agent);
    assert_eq!(
        net::reach(cluster, 1, a, registry).await,
        Reach::Refused,
        "the rules outlive the agent"
    );
    // `--remove` (deisctl's uninstall job) removes them, and says so with exit 0.
    let mut remove = cluster.nsenter(1, BIN);
    remove
        .args(["host-agent", "--remove"])
        .env("DEIS_APP_NETWORK", NETWORK);
    let (removed, out) = run(remove).await;
    assert!(removed, "host-agent --remove: {out}");
    let (_, rules) = on_host(cluster, 1, "iptables", &["-w", "-S"]).await;
    assert!(
        !rules.contains(&format!("deis {NETWORK}"))
            && !rules.contains(&format!("DEIS-{}", network.bridge)),
        "no rule of {NETWORK} is left on h2:\n{rules}"
    );
    assert_eq!(
        net::reach(cluster, 1, a, registry).await,
        Reach::Answered("registry".to_owned()),
        "without its rules, the hole is back"
    );

    for agent in agents {
        assert_stops_cleanly(agent);
    }
    scheduler
        .destroy(&desired.app)
        .await
        .unwrap_or_else(|e| panic!("destroying the app: {e}"));
    let network = Arc::new(network);
    let engines = Arc::new(engines);
    eventually(
        Duration::from_secs(30),
        "the app network to go once its tasks are gone",
        || {
            let (network, engines) = (network.clone(), engines.clone());
            async move {
                network
                    .remove(&engines, &engines[0])
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    shutdown.cancel();
    scheduler.drain().await;
    eprintln!(
        "host agent test: cluster and etcd {set_up:?}, app deployed at {deployed:?}, registry closed at {closed:?}, all done at {:?}",
        started.elapsed()
    );
}
