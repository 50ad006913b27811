//! The cluster against the single host, in the same run: `deisctl start platform` on three
//! simulated hosts (network namespaces, a `dockerd` each, a Swarm; deisctl through an SSH
//! tunnel as from a workstation), `git push` to first HTTP 200 of the new release for a small
//! Dockerfile app on each (median of 3 after a warm-up push), and the memory the platform's
//! components use after that: the single host's one process against the sum of the cluster's
//! component containers over the three hosts.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p deis-e2e --bench cluster`
//! (root, about 5 minutes). Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout, unreachable_pub)]

#[path = "../e2e/setup/mod.rs"]
#[allow(dead_code, unused_imports)]
mod setup;
#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deis_testkit::unique_id;
use setup::{ClusterPlatform, Setup, SingleHost, TAG};
use support::{SshKey, commit, serving_dockerfile, work_tree};

const ROUNDS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A user, an app, a warm-up push, then `ROUNDS` pushes each timed to the first 200 that
/// shows the new release: their median.
async fn pushes(setup: &impl Setup, base: &str, name: &str) -> Duration {
    let token = setup.user("dev").await;
    let key: SshKey = setup.add_key(&token, "laptop").await;
    let app = format!("bench-{name}-{}", unique_id());
    setup.create_app(&token, &app).await;
    let work = work_tree(
        &setup.dir().join(&app),
        &[("Dockerfile", &serving_dockerfile(base, "warmup"))],
    );
    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(ok, "warm-up push on {name}: {output}");
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let greeting = format!("{name}-round-{round}");
        commit(
            &work,
            &[("Dockerfile", &serving_dockerfile(base, &greeting))],
            &greeting,
        );
        let started = Instant::now();
        let (ok, output) = setup.push(&work, &key, &app).await;
        assert!(ok, "{output}");
        while setup.get_app(&app).await != (200, format!("{greeting}\n")) {
            assert!(started.elapsed() < Duration::from_secs(120), "never served");
        }
        println!(
            "{name} round {round}: git push -> 200 {:?}",
            started.elapsed()
        );
        times.push(started.elapsed());
    }
    median(times)
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `12.5MiB` (docker stats' unit forms) in MiB.
fn mib(text: &str) -> f64 {
    let text = text.trim();
    let (number, factor) = [
        ("GiB", 1024.0),
        ("MiB", 1.0),
        ("KiB", 1.0 / 1024.0),
        ("B", 1.0 / 1048576.0),
    ]
    .iter()
    .find_map(|(unit, factor)| text.strip_suffix(unit).map(|n| (n, *factor)))
    .unwrap_or((text, 1.0));
    number.trim().parse::<f64>().unwrap_or(0.0) * factor
}

/// The memory of the platform's component containers on every host, by component, in MiB.
fn cluster_memory(cluster: &ClusterPlatform) -> BTreeMap<String, f64> {
    let mut by_component = BTreeMap::new();
    for i in 0..cluster.cluster.hosts().len() {
        let ids = cluster.docker(
            i,
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=deis.platform={}", cluster.prefix),
                "--filter",
                "label=deis.component",
            ],
        );
        if ids.is_empty() {
            continue;
        }
        let mut args = vec![
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}|{{.MemUsage}}",
        ];
        args.extend(ids.iter().map(String::as_str));
        for line in cluster.docker(i, &args) {
            let Some((name, usage)) = line.split_once('|') else {
                continue;
            };
            let used = usage.split('/').next().unwrap_or_default();
            let component = name
                .strip_prefix(&format!("{}-", cluster.prefix))
                .unwrap_or(name)
                .split('.')
                .next()
                .unwrap_or(name)
                .to_owned();
            *by_component.entry(component).or_insert(0.0) += mib(used);
        }
    }
    by_component
}

#[tokio::main]
async fn main() {
    deis_runtime::init_tracing();
    let single = SingleHost::start().await;
    let single_push = pushes(&single, &single.image, "single").await;
    let single_memory = rss_mib(single.process.as_ref().map_or(0, |p| p.pid()));

    let cluster = ClusterPlatform::hosts().await;
    cluster.ok(&["config", "platform", "set", "domain=example.com"]);
    cluster.ok(&[
        "config",
        "builder",
        "set",
        &format!("stackImage=deis/stack:{TAG}"),
    ]);
    let installed = Instant::now();
    cluster.ok(&["install", "platform"]);
    let install = installed.elapsed();
    let started = Instant::now();
    cluster.ok(&["start", "platform"]);
    let start = started.elapsed();
    let cluster_push = pushes(&cluster, &cluster.base_image(), "cluster").await;
    let memory = cluster_memory(&cluster);
    let total: f64 = memory.values().sum();

    println!("\n| measurement | single host | cluster (3 hosts) | ratio |\n|---|---|---|---|");
    println!(
        "| `git push` to first 200 of the new release, median of {ROUNDS} | {:.2} s | {:.2} s | {:.2} |",
        single_push.as_secs_f64(),
        cluster_push.as_secs_f64(),
        cluster_push.as_secs_f64() / single_push.as_secs_f64()
    );
    println!(
        "| platform memory after the pushes | {single_memory:.0} MiB (one process) | {total:.0} MiB (all hosts) | {:.1} |",
        total / single_memory.max(1.0)
    );
    println!(
        "\ncluster: `deisctl install platform` {:.1} s (images copied to 3 hosts), `start platform` {:.1} s",
        install.as_secs_f64(),
        start.as_secs_f64()
    );
    println!("\n| component (all hosts) | MiB |\n|---|---|");
    for (component, used) in &memory {
        println!("| {component} | {used:.1} |");
    }
}
