//! The cluster: `deisctl` on a workstation installs and starts the platform across three hosts
//! of a Swarm through an SSH tunnel to one of them; then a user's day with the `deis` client
//! and git over OpenSSH, the app spread over the hosts and answering on every host's router;
//! then the platform stopped, started again with its data, and uninstalled from every host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use deis_testkit::eventually;

use super::{Day, apps, dockerfile};
use crate::setup::{ClusterPlatform, Setup};
use crate::support::{Deis, app_name, figure, http, work_tree};

/// The hosts (indexes) that run containers of `app`.
fn hosts_running(platform: &ClusterPlatform, app: &str) -> BTreeSet<usize> {
    (0..3)
        .filter(|i| {
            !platform
                .docker(
                    *i,
                    &[
                        "ps",
                        "-q",
                        "--filter",
                        &format!("label={}", platform.app_label()),
                        "--filter",
                        &format!("label=deis.app={app}"),
                    ],
                )
                .is_empty()
        })
        .collect()
}

/// Everything of the platform on host `i`: containers, volumes; on a manager, services and
/// secrets too.
fn leftovers(platform: &ClusterPlatform, i: usize) -> Vec<String> {
    let label = format!("label=deis.platform={}", platform.prefix);
    let mut left = platform.docker(i, &["ps", "-aq", "--filter", &label]);
    left.extend(platform.docker(i, &["volume", "ls", "-q", "--filter", &label]));
    left.extend(platform.docker(i, &["service", "ls", "-q", "--filter", &label]));
    left.extend(platform.docker(i, &["secret", "ls", "-q", "--filter", &label]));
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_installed_from_a_workstation_runs_a_users_day_on_every_host() {
    let platform = ClusterPlatform::hosts().await;
    let (installed, install, start) = platform.install_and_start();
    assert!(
        installed.contains("deis/controller"),
        "images copied: {installed}"
    );
    figure(format_args!(
        "cluster: install platform on 3 hosts (images copied) took {:.1} s, start {:.1} s",
        install.as_secs_f64(),
        start.as_secs_f64()
    ));

    // Every unit on the host it should be, running: the per-host ones on all three.
    let list = platform.ok(&["list"]);
    for component in ["router", "logspout", "registry-proxy"] {
        let unit = format!("{}-{component}", platform.prefix);
        for host in platform.cluster.hosts() {
            assert!(
                list.lines().any(|l| l.starts_with(&unit)
                    && l.contains(host.name())
                    && l.contains("active")),
                "{unit} on {}: {list}",
                host.name()
            );
        }
    }
    for member in 1..=3 {
        let unit = format!("{}-etcd@{member}.service", platform.prefix);
        assert!(list.contains(&unit), "{unit}: {list}");
    }
    assert!(
        !list.contains("inactive"),
        "{list}\nthe host agents: {}",
        platform.diagnose("host-agent")
    );
    let status = platform.ok(&["status", "controller"]);
    assert!(status.contains("Active: active (running)"), "{status}");
    let journal = platform.ok(&["journal", "controller", "-n", "20"]);
    assert!(!journal.trim().is_empty(), "the controller's log");

    // The user's day.
    let day = owners_day(&platform, "spread").await;
    let app = day.app.clone();
    apps::push_config_scale_and_roll_back(&day).await;

    // Four containers, on more than one host, and every host's router serves the app.
    day.deis(&["scale", "cmd=4"]).await;
    let spread = eventually(Duration::from_secs(60), "4 containers up", || async {
        let ps = day.deis(&["ps"]).await;
        let hosts = hosts_running(&platform, &app);
        match ps.matches(" up ").count() {
            4 if hosts.len() >= 2 => Ok(hosts),
            n => Err(format!("{n} up on hosts {hosts:?}: {ps}")),
        }
    })
    .await;
    assert!(spread.len() >= 2, "{spread:?}");
    for i in 0..3 {
        let router = std::net::SocketAddr::from((platform.host(i), 80));
        let host = format!("{app}.example.com");
        let (status, body) = http(router, "GET", &host, "/", None, "").await;
        assert_eq!(status, 200, "host {i}'s router: {body}");
    }

    // From an app container, any host's router answers, and no other platform port of any
    // host: not the registry (no authentication, behind the proxies), not etcd, not the API.
    let from = *spread.iter().next().expect("a host with the app");
    let id = platform
        .docker(
            from,
            &["ps", "-q", "--filter", &format!("label=deis.app={app}")],
        )
        .first()
        .cloned()
        .expect("an app container");
    let reaches = |addr: Ipv4Addr, port: u16| {
        let probe = format!("nc -w 2 {addr} {port} </dev/null");
        platform
            .cluster
            .docker(from)
            .args(["exec", &id, "sh", "-c", &probe])
            .status()
            .is_ok_and(|s| s.success())
    };
    for i in 0..3 {
        let host = platform.host(i);
        assert!(reaches(host, 80), "an app reaches host {i}'s router");
        for port in [5001, 2379, 8000, 5432, 6379] {
            assert!(
                !reaches(host, port),
                "an app reached host {i}'s port {port}"
            );
        }
    }

    // The logs hold lines from the containers of every host that runs some.
    let logs = eventually(Duration::from_secs(60), "lines from every host", || async {
        let logs = day.deis(&["logs", "-n", "500"]).await;
        let mut missing = Vec::new();
        for i in &spread {
            let ids = platform.docker(
                *i,
                &["ps", "-q", "--filter", &format!("label=deis.app={app}")],
            );
            if !ids.iter().any(|id| logs.contains(&format!("started {id}"))) {
                missing.push(*i);
            }
        }
        if missing.is_empty() {
            Ok(logs)
        } else {
            Err(format!("no line from hosts {missing:?}: {logs}"))
        }
    })
    .await;
    assert!(logs.contains("started "), "{logs}");

    // What a restart of the platform must keep.
    let kept = app_name("kept");
    day.deis(&["create", &kept, "--no-remote"]).await;
    day.deis(&["config:set", "KEEP=me", "-a", &kept]).await;
    day.deis(&["destroy", &format!("--confirm={app}")]).await;
    eventually(
        Duration::from_secs(60),
        "no container of the destroyed app",
        || async {
            match hosts_running(&platform, &app) {
                hosts if hosts.is_empty() => Ok(()),
                hosts => Err(format!("still on hosts {hosts:?}")),
            }
        },
    )
    .await;

    // Fewer routers than hosts, then one on every host again; more than hosts is refused
    // (they use the hosts' ports).
    let more = platform.deisctl(&["scale", "router=4"]);
    let said = String::from_utf8_lossy(&more.stderr);
    assert!(
        !more.status.success() && said.contains("one per host"),
        "{said}"
    );
    platform.ok(&["scale", "router=2"]);
    let routers = |list: &str| {
        let unit = format!("{}-router.service", platform.prefix);
        list.lines()
            .filter(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.first() == Some(&unit.as_str()) && cells.get(3) == Some(&"active")
            })
            .count()
    };
    assert_eq!(routers(&platform.ok(&["list"])), 2);
    platform.ok(&["scale", "router=3"]);
    assert_eq!(routers(&platform.ok(&["list"])), 3);

    let stopped = platform.ok(&["stop", "platform"]);
    assert!(stopped.contains("inactive/dead"), "{stopped}");
    platform.ok(&["start", "platform"]);
    // The controller may come back on another host: with no DNS here for deis.<domain> (which
    // the routers serve), the client logs in at the controller's new address.
    let config = eventually(Duration::from_secs(60), "the API back", || async {
        let ran = day
            .owner
            .run_following(&platform, &day.work, &["config", "-a", &kept])
            .await;
        if ran.ok { Ok(ran.out) } else { Err(ran.out) }
    })
    .await;
    assert!(config.contains("KEEP") && config.contains("me"), "{config}");

    platform.ok(&["uninstall", "platform"]);
    for i in 0..3 {
        let left = leftovers(&platform, i);
        assert!(left.is_empty(), "left on host {i}: {left:?}");
    }
}

/// A registered owner's day on the cluster: an app name starting with `name` (not yet created)
/// and a work tree holding a Dockerfile of the cluster's base image.
pub(super) async fn owners_day<'a>(
    platform: &'a ClusterPlatform,
    name: &str,
) -> Day<'a, ClusterPlatform> {
    let owner = Deis::register(platform, "owner").await;
    let app = app_name(name);
    let work = work_tree(
        &platform.dir().join(&app),
        &[("Dockerfile", &dockerfile(&platform.base_image()))],
    );
    Day {
        setup: platform,
        owner,
        app,
        work,
    }
}
