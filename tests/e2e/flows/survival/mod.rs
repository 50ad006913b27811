//! The cluster survives: on three managers and a spare host, with an app at three containers and
//! a steady client going through the routers of the hosts that stay up, each fault in turn:
//! Redis lost, the builder killed in the middle of a push, the leading controller killed in the
//! middle of a deploy, etcd's majority lost and back, a whole host lost, etcd's lost member
//! replaced on the spare host. After each, nothing a user had is missing (account, apps,
//! releases, config, log lines); each fault's cost is printed as figures for
//! docs/benchmarks.md: requests made and failed during it, time until the app serves at full
//! scale again, what users saw.

mod data;
mod faults;
mod kept;
mod traffic;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Day;
use crate::setup::{ClusterPlatform, Setup};
use crate::support::{app_name, figure};
use kept::Kept;
use traffic::Traffic;

/// The app's scale throughout.
const SCALE: usize = 3;

/// One fault's cost, for the report.
pub(crate) struct Cost {
    pub(crate) fault: &'static str,
    /// From the fault until the app served at full scale again (and the platform took changes).
    pub(crate) recovered: Duration,
    pub(crate) seen: traffic::Seen,
    /// What users saw, in a few words.
    pub(crate) users_saw: String,
}

impl Cost {
    fn print(&self) {
        figure(format_args!(
            "fault: {} (from {:.1} s): back in {:.1} s; {}; users saw: {}",
            self.fault,
            self.seen.from.as_secs_f64(),
            self.recovered.as_secs_f64(),
            self.seen.summary(),
            self.users_saw
        ));
    }
}

/// The app's containers on the live hosts `hosts`: `(host, container id, release)`.
pub(crate) fn app_tasks(
    platform: &ClusterPlatform,
    hosts: &[usize],
    app: &str,
) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for i in hosts {
        for line in platform.docker(
            *i,
            &[
                "ps",
                "--filter",
                &format!("label={}", platform.app_label()),
                "--filter",
                &format!("label=deis.app={app}"),
                "--format",
                "{{.ID}} {{.Label \"deis.release\"}}",
            ],
        ) {
            let mut cells = line.split_whitespace();
            if let (Some(id), Some(release)) = (cells.next(), cells.next()) {
                found.push((*i, id.to_owned(), release.to_owned()));
            }
        }
    }
    found
}

/// Waits until the app runs `SCALE` containers of one release on `hosts` and the client has
/// had answers from each of them since `since`: the release.
pub(crate) async fn at_full_scale(
    platform: &ClusterPlatform,
    traffic: &Traffic,
    hosts: &[usize],
    app: &str,
    since: Instant,
    deadline: Duration,
) -> String {
    try_at_full_scale(platform, traffic, hosts, app, since, deadline)
        .await
        .unwrap_or_else(|last| {
            panic!("timed out after {deadline:?} waiting for the app at full scale; {last}")
        })
}

/// [`at_full_scale`], or the last state seen when `deadline` passed.
pub(crate) async fn try_at_full_scale(
    platform: &ClusterPlatform,
    traffic: &Traffic,
    hosts: &[usize],
    app: &str,
    since: Instant,
    deadline: Duration,
) -> Result<String, String> {
    deis_testkit::within(deadline, || async {
        let tasks = app_tasks(platform, hosts, app);
        let releases: BTreeSet<&String> = tasks.iter().map(|(_, _, r)| r).collect();
        // Host names are the containers' short ids.
        let answering = traffic.answering_since(since);
        let all_answer = tasks
            .iter()
            .all(|(_, id, _)| answering.iter().any(|name| id.starts_with(name.as_str())));
        match releases.first() {
            Some(release) if tasks.len() == SCALE && releases.len() == 1 && all_answer => {
                Ok((*release).clone())
            }
            _ => Err(format!(
                "containers {tasks:?}; answering since the mark: {answering:?}"
            )),
        }
    })
    .await
}

/// The owner's app, pushed (built by the cluster's builder) and at `SCALE` containers.
async fn app_at_scale<'a>(platform: &'a ClusterPlatform, name: &str) -> Day<'a, ClusterPlatform> {
    let day = super::cluster::owners_day(platform, name).await;
    day.deis(&["create", &day.app]).await;
    super::use_builder(platform, &day.work, &day.app);
    let pushed = day.owner.push(&day.work).await;
    assert!(pushed.ok, "{}", pushed.out);
    day.deis(&["scale", &format!("cmd={SCALE}")]).await;
    day
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_survives_lost_components_a_lost_etcd_majority_and_a_lost_host() {
    let platform = ClusterPlatform::with(3, 1).await;
    platform.install_and_start();

    let day = app_at_scale(&platform, "sturdy").await;
    let app = day.app.clone();

    let all: Vec<usize> = (0..platform.cluster.hosts().len()).collect();
    let routers = |hosts: &[usize]| -> Vec<SocketAddr> {
        hosts
            .iter()
            .map(|i| SocketAddr::from((platform.host(*i), 80)))
            .collect()
    };
    let traffic = Traffic::start(routers(&all), &app, 4);
    let began = traffic.mark();
    at_full_scale(
        &platform,
        &traffic,
        &all,
        &app,
        began.at,
        Duration::from_secs(60),
    )
    .await;

    // Between faults the API should answer; when it did not at once, why is printed.
    let away = || {
        figure(format_args!(
            "the API was away between faults; the controllers' tasks:\n{}",
            platform.diagnose("controller")
        ));
    };

    // An app of the owner's whose config probes whether the platform takes changes.
    let probe = app_name("probe");
    day.deis(&["create", &probe, "--no-remote"]).await;

    let mut costs = Vec::new();
    let faults = faults::Faults {
        platform: &platform,
        day: &day,
        traffic: &traffic,
        probe: &probe,
    };
    for fault in [
        faults::Fault::RedisLost,
        faults::Fault::BuilderKilledMidPush,
        faults::Fault::LeaderKilledMidDeploy,
        faults::Fault::EtcdMajorityLost,
    ] {
        let before = Kept::take(&day, away).await;
        let cost = faults.run(fault, &all).await;
        cost.print();
        before.still_there(&day, cost.fault).await;
        costs.push(cost);
    }

    // A whole host: the second manager (etcd's second member, a controller, a router, some of
    // the app; the first keeps the data and the operator's tunnel).
    let lost = 1;
    let survivors: Vec<usize> = all.iter().copied().filter(|i| *i != lost).collect();
    traffic.use_routers(routers(&survivors));
    let before = Kept::take(&day, away).await;
    let cost = faults::host_lost(&platform, &day, &traffic, lost, &survivors).await;
    cost.print();
    before.still_there(&day, cost.fault).await;
    costs.push(cost);

    let before = Kept::take(&day, away).await;
    let cost = faults.lost_host_replaced(lost, &survivors).await;
    cost.print();
    before.still_there(&day, cost.fault).await;
    costs.push(cost);

    let seen = traffic.stop(began).await;
    figure(format_args!(
        "faults: {} through all of them ({:?})",
        seen.summary(),
        seen.failures.iter().take(10).collect::<Vec<_>>()
    ));
}

/// The data host (the first: the database, Redis, the registry, etcd's first member, a router,
/// the operator's tunnel) lost, and restored from the backup onto another host.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_survives_its_data_hosts_loss() {
    let platform = ClusterPlatform::with(3, 0).await;
    platform.install_and_start();
    let day = app_at_scale(&platform, "kept").await;
    let app = day.app.clone();
    let probe = app_name("probe");
    day.deis(&["create", &probe, "--no-remote"]).await;

    let data = 0;
    let left = [1, 2];
    let routers: Vec<SocketAddr> = left
        .iter()
        .map(|i| SocketAddr::from((platform.host(*i), 80)))
        .collect();
    let traffic = Traffic::start(routers, &app, 4);
    let began = traffic.mark();
    at_full_scale(
        &platform,
        &traffic,
        &[0, 1, 2],
        &app,
        began.at,
        Duration::from_secs(60),
    )
    .await;
    let faults = faults::Faults {
        platform: &platform,
        day: &day,
        traffic: &traffic,
        probe: &probe,
    };
    let before = Kept::take(&day, || {}).await;
    let cost = faults.data_host_lost(data, &left).await;
    cost.print();
    before.still_there(&day, cost.fault).await;
    let seen = traffic.stop(began).await;
    figure(format_args!("data host lost: {}", seen.summary()));
}
