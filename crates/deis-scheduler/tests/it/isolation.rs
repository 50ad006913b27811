//! The apps' network and its firewall on a simulated host (a Swarm worker in its own network
//! namespace, so the rules are that host's): `SwarmAppNetwork` made twice and removed twice;
//! the rules of a network are replaced whole (exactly those asked for are found in place);
//! `set_up` of a host's own network keeps the other hosts an agent filters and leaves the
//! Swarm network's rules alone (the worker lists only its config-only network); `tear_down`
//! takes the network and its rules away, `remove_firewall` the rules alone.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use deis_scheduler::{AppNetwork, SwarmAppNetwork, bridge_name};
use deis_testkit::{Cluster, TestDocker};

/// Runs `work` on a runtime of its own, on a thread inside the network namespace `netns` (so
/// the iptables it runs act on that host's tables).
fn on_host<T: Send + 'static, F>(netns: &Path, work: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
{
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", netns.display()));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("cannot enter {}: {e}", netns.display()));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"))
            .block_on(work())
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn hosts(list: &[[u8; 4]]) -> BTreeSet<Ipv4Addr> {
    list.iter().map(|a| Ipv4Addr::from(*a)).collect()
}

fn iptables_rules() -> String {
    let out = std::process::Command::new("iptables")
        .args(["-w", "-S"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run iptables: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn firewalls_are_replaced_whole_and_kept_apart() {
    let docker = TestDocker::connect().await;
    let cluster = Cluster::start_with(1, 1).await;
    let mut engines = Vec::new();
    for host in cluster.hosts() {
        engines.push(
            deis_docker::connect(&host.docker_host())
                .await
                .unwrap_or_else(|e| panic!("cannot reach {}: {e}", host.name())),
        );
    }
    let swarm = SwarmAppNetwork {
        subnet: Some("172.31.250.0/24".to_owned()),
        labels: docker.labels(),
        ..SwarmAppNetwork::new("apps")
    };
    for _ in 0..2 {
        swarm
            .create(&engines, &engines[0])
            .await
            .unwrap_or_else(|e| panic!("the Swarm's app network: {e}"));
    }
    let config = engines[1]
        .inspect_network(
            &swarm.config_name(),
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap_or_else(|e| panic!("the worker's config-only network: {e}"));
    let options = config.options.unwrap_or_default();
    assert_eq!(
        (
            options.get("com.docker.network.bridge.name"),
            options
                .get("com.docker.network.bridge.enable_icc")
                .map(String::as_str),
        ),
        (Some(&swarm.bridge), Some("false"))
    );

    let h2 = cluster.host(1);
    let docker_host = h2.docker_host();
    let labels = docker.labels();
    let bridge = swarm.bridge.clone();
    on_host(&h2.netns_path(), move || async move {
        let engine = deis_docker::connect(&docker_host)
            .await
            .unwrap_or_else(|e| panic!("cannot reach h2's engine: {e}"));
        let apps = AppNetwork::new("apps", &bridge, &[80, 443]);
        let one = hosts(&[[10, 9, 9, 9]]);
        apps.apply_firewall(&one)
            .expect("the Swarm network's rules");
        apps.apply_firewall(&one).expect("the same rules again");
        assert!(apps.firewall_in_place(&one).expect("iptables"), "all there");
        assert!(
            !apps.firewall_in_place(&BTreeSet::new()).expect("iptables"),
            "a rule more than asked for is not in place"
        );
        assert!(
            !apps
                .firewall_in_place(&hosts(&[[10, 9, 9, 9], [10, 9, 9, 8]]))
                .expect("iptables")
        );
        assert_eq!(apps.hosts_in_firewall(), one);

        // A host's own network beside it.
        let local = AppNetwork::new("local-apps", &bridge_name("local-apps"), &[80]);
        local.set_up(&engine, &labels).await.expect("set up");
        assert!(local.firewall_in_place(&BTreeSet::new()).expect("iptables"));
        assert!(
            apps.firewall_in_place(&one).expect("iptables"),
            "the sweep of stale rules leaves the Swarm network's alone, which this worker \
             lists only as its config-only network"
        );
        let two = hosts(&[[10, 1, 1, 1], [10, 1, 1, 2]]);
        local.apply_firewall(&two).expect("rules for two hosts");
        local.set_up(&engine, &labels).await.expect("set up again");
        assert_eq!(
            local.hosts_in_firewall(),
            two,
            "set_up keeps an agent's hosts"
        );
        assert!(local.firewall_in_place(&two).expect("iptables"));

        local.tear_down(&engine).await;
        let rules = iptables_rules();
        assert!(
            !rules.contains("deis local-apps")
                && !rules.contains(&format!("DEIS-{}", local.bridge)),
            "tear_down leaves no rule:\n{rules}"
        );
        assert!(apps.firewall_in_place(&one).expect("iptables"));
        apps.remove_firewall().expect("removed");
        apps.remove_firewall().expect("nothing to remove is fine");
        let rules = iptables_rules();
        assert!(
            !rules.contains("deis apps") && !rules.contains(&format!("DEIS-{bridge}")),
            "remove_firewall leaves no rule:\n{rules}"
        );
    });

    for _ in 0..2 {
        swarm
            .remove(&engines, &engines[0])
            .await
            .unwrap_or_else(|e| panic!("removing the Swarm's app network: {e}"));
    }
    for (i, engine) in engines.iter().enumerate() {
        let left = engine
            .inspect_network(
                &swarm.config_name(),
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        assert!(left.is_err(), "h{}'s config-only network is gone", i + 1);
    }
}
