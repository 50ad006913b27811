//! A simulated cluster of Docker hosts forms a Swarm, runs a service on every host that the
//! workstation reaches at each host's address, and leaves nothing behind when dropped; a killed
//! host goes Down and stops serving while the others carry on.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use deis_testkit::{Cluster, TestDocker, eventually, http_get};

#[tokio::test]
async fn three_hosts_form_a_swarm_that_serves_on_every_host_and_go_away() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;

    let started = Instant::now();
    let cluster = Cluster::start(3).await;
    let start_up = started.elapsed();

    let names: BTreeSet<String> = cluster
        .hosts()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    assert_eq!(names.len(), 3, "three host names: {names:?}");
    let out = cluster
        .docker(0)
        .args([
            "node",
            "ls",
            "--format",
            "{{.Hostname}} {{.Status}} {{.ManagerStatus}}",
        ])
        .output()
        .expect("run docker node ls");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut listed = BTreeSet::new();
    for line in nodes.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            matches!(words.as_slice(), [_, "Ready", "Leader" | "Reachable"]),
            "every node a Ready manager:\n{nodes}"
        );
        listed.insert(words[0].to_owned());
    }
    assert_eq!(listed, names, "the nodes are the hosts:\n{nodes}");

    let loading = Instant::now();
    cluster.load_images(&[&image]).await;
    let load_time = loading.elapsed();

    // One task per host, each serving its node's host name on port 8080 of that host.
    let out = cluster
        .docker(0)
        .args([
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            "whoami",
            "--mode",
            "global",
            "--hostname",
            "{{.Node.Hostname}}",
            "--publish",
            "mode=host,target=80,published=8080",
            "--stop-grace-period",
            "1s",
            &image,
            "sh",
            "-c",
            "hostname > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
        ])
        .output()
        .expect("run docker service create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let serving = Instant::now();
    let mut answers = BTreeSet::new();
    for host in cluster.hosts() {
        let addr = SocketAddr::from((host.addr(), 8080));
        let answer = eventually(
            Duration::from_secs(30),
            &format!("the service on {} ({addr})", host.name()),
            || async move {
                match http_get(addr, "/") {
                    Ok((200, body)) => Ok(body.trim().to_owned()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        assert_eq!(answer, host.name(), "the host at {addr} names itself");
        answers.insert(answer);
    }
    assert_eq!(
        answers, names,
        "three hosts answered, each with its own name"
    );
    let serve_time = serving.elapsed();

    let namespaces = cluster.namespaces();
    let pids: Vec<u32> = cluster.hosts().iter().map(|h| h.dockerd_pid()).collect();
    let dirs = cluster.scratch_dirs();
    let link = cluster.workstation_link().to_owned();
    let cgroups: Vec<String> = cluster.hosts().iter().map(|h| h.cgroup()).collect();
    let stopping = Instant::now();
    drop(cluster);
    let teardown = stopping.elapsed();

    for ns in &namespaces {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "the namespace {ns} is gone"
        );
    }
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dockerd {pid} is gone"
        );
    }
    for dir in &dirs {
        assert!(!dir.exists(), "{} is gone", dir.display());
    }
    assert!(
        !Path::new("/sys/class/net").join(&link).exists(),
        "the workstation's link {link} is gone"
    );
    let hierarchies: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("list /sys/fs/cgroup")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .chain([Path::new("/sys/fs/cgroup").to_owned()])
        .collect();
    for cgroup in &cgroups {
        for hierarchy in &hierarchies {
            let dir = hierarchy.join(cgroup.trim_start_matches('/'));
            assert!(!dir.exists(), "{} is gone", dir.display());
        }
    }
    eprintln!(
        "cluster of 3: start-up {start_up:?}, image load {load_time:?}, service answering \
         {serve_time:?}, teardown {teardown:?}"
    );
}

#[tokio::test]
async fn a_killed_host_goes_down_and_stops_serving_while_the_others_carry_on() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let cluster = Cluster::start_with(3, 1).await;
    let roles: Vec<bool> = cluster.hosts().iter().map(|h| h.is_manager()).collect();
    assert_eq!(roles, [true, true, true, false]);
    let out = cluster
        .docker(0)
        .args(["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"])
        .output()
        .expect("run docker node ls");
    let nodes = String::from_utf8_lossy(&out.stdout).into_owned();
    let worker = cluster.host(3).name();
    assert!(
        nodes.lines().any(|l| l.trim() == worker),
        "{worker} is a worker (no manager status):\n{nodes}"
    );
    cluster.load_images(&[&image]).await;
    let out = cluster
        .docker(0)
        .args([
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            "web",
            "--mode",
            "global",
            "--publish",
            "mode=host,target=80,published=8080",
            &image,
            "sh",
            "-c",
            "echo up > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
        ])
        .output()
        .expect("run docker service create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doomed = SocketAddr::from((cluster.host(2).addr(), 8080));
    eventually(
        Duration::from_secs(30),
        "the service on h3",
        || async move { http_get(doomed, "/").map_err(|e| e.to_string()) },
    )
    .await;

    let pid = cluster.host(2).dockerd_pid();
    let killed = Instant::now();
    cluster.kill_host(2);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "its dockerd {pid} is gone"
    );
    assert!(
        http_get(doomed, "/").is_err(),
        "the killed host serves no more"
    );
    let lost = cluster.host(2).name().to_owned();
    let cluster = &cluster;
    eventually(Duration::from_secs(30), "the Swarm to see h3 Down", || {
        let lost = lost.clone();
        async move {
            let out = cluster
                .docker(0)
                .args(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])
                .output()
                .map_err(|e| e.to_string())?;
            let nodes = String::from_utf8_lossy(&out.stdout).into_owned();
            if nodes.lines().any(|l| l == format!("{lost} Down")) {
                Ok(())
            } else {
                Err(format!("{nodes}{}", String::from_utf8_lossy(&out.stderr)))
            }
        }
    })
    .await;
    eprintln!("a killed host is Down after {:?}", killed.elapsed());
    for i in [0, 1, 3] {
        let addr = SocketAddr::from((cluster.host(i).addr(), 8080));
        let (status, _) = http_get(addr, "/").expect("the other hosts still serve");
        assert_eq!(status, 200);
    }
}
