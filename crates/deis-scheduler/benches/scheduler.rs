//! Scheduler benchmarks against the real local engine, each with its reference in the same run:
//!
//! - scale 0 -> 20: the time until 20 web containers serve through `converge` (create, start,
//!   health check, route) against 20 plain create+start calls of the same image through the
//!   same engine, started concurrently the same way. Reported as a ratio.
//! - revive: the time from SIGKILL of a healthy web container until it serves again through its
//!   route, median of 10.
//!
//! Run: `cargo bench -p deis-scheduler --bench scheduler`. Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use deis_scheduler::{
    ContainerState, Desired, DockerConfig, DockerScheduler, ReleaseSpec, Scheduler,
};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, http_get};
use deis_types::ContainerName;
use futures_util::future::join_all;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

const WEB: &str =
    "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";
const N: u32 = 20;

fn release(image: &str) -> ReleaseSpec {
    ReleaseSpec {
        version: 1,
        image: image.to_owned(),
        env: BTreeMap::new(),
        commands: [("web".to_owned(), WEB.to_owned())].into(),
        memory: BTreeMap::new(),
        cpu: BTreeMap::new(),
        tags: BTreeMap::new(),
    }
}

fn desired(app: &str, image: &str, n: u32) -> Desired {
    Desired {
        app: app.parse().expect("app"),
        release: release(image),
        containers: (1..=n)
            .map(|i| {
                format!("{app}_v1.web.{i}")
                    .parse::<ContainerName>()
                    .expect("name")
            })
            .collect(),
    }
}

async fn plain_starts(docker: &TestDocker, image: &str) -> Duration {
    let client = docker.client();
    let started = Instant::now();
    join_all((0..N).map(|i| {
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                WEB.replace("$PORT", "5000"),
            ]),
            labels: Some(docker.labels()),
            ..Default::default()
        };
        let name = format!("bench-plain-{}-{i}", docker.id());
        async move {
            let c = client
                .create_container(
                    Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                    body,
                )
                .await
                .expect("create");
            client.start_container(&c.id, None).await.expect("start");
        }
    }))
    .await;
    started.elapsed()
}

async fn converge_20(
    scheduler: &DockerScheduler,
    store: &Arc<dyn ConfigStore>,
    image: &str,
) -> Duration {
    let started = Instant::now();
    scheduler
        .converge(&desired("benchscale", image, N))
        .await
        .expect("converge");
    let elapsed = started.elapsed();
    let routes = store
        .list("/deis/services/benchscale/")
        .await
        .expect("list")
        .kvs;
    assert_eq!(routes.len(), N as usize, "every container is routed");
    elapsed
}

async fn revive_median(
    docker: &TestDocker,
    scheduler: &DockerScheduler,
    store: &Arc<dyn ConfigStore>,
    image: &str,
) -> Duration {
    let want = desired("benchrevive", image, 1);
    scheduler.converge(&want).await.expect("converge");
    let name = want.containers[0].to_string();
    let mut times = Vec::new();
    for round in 1..=10u32 {
        let pid = docker
            .client()
            .inspect_container(&name, None)
            .await
            .expect("inspect")
            .state
            .and_then(|s| s.pid)
            .expect("pid");
        kill(
            Pid::from_raw(i32::try_from(pid).expect("pid")),
            Signal::SIGKILL,
        )
        .expect("kill");
        let killed = Instant::now();
        loop {
            let status = scheduler.states(&want.containers).await[0];
            let route = store
                .list("/deis/services/benchrevive/")
                .await
                .expect("list")
                .kvs;
            let serving = status.restarts == round
                && status.state == ContainerState::Up
                && route
                    .first()
                    .and_then(|kv| kv.value.parse().ok())
                    .is_some_and(|a| matches!(http_get(a, "/"), Ok((200, _))));
            if serving {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "not revived within a minute"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(killed.elapsed());
    }
    times.sort();
    (times[4] + times[5]) / 2
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let docker = TestDocker::connect().await;
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let config = DockerConfig {
            extra_labels: docker.labels(),
            stop_timeout: Duration::from_secs(2),
            drain: Duration::from_millis(100),
            ..DockerConfig::default()
        };
        let scheduler = DockerScheduler::connect(store.clone(), config, CancellationToken::new())
            .await
            .expect("docker");
        // Alternate the two so that neither always runs on a warmer engine.
        let mut plain = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..3 {
            let image = docker.base_image().await;
            plain.push(plain_starts(&docker, &image).await);
            docker.cleanup().await;
            let image = docker.base_image().await;
            ours.push(converge_20(&scheduler, &store, &image).await);
            scheduler
                .destroy(&"benchscale".parse().expect("app"))
                .await
                .expect("destroy");
            docker.cleanup().await;
        }
        let image = docker.base_image().await;
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (p, o) = (median(&mut plain), median(&mut ours));
        println!(
            "scale 0->{N}: plain create+start {p:?}, converge to {N} serving {o:?}, ratio {:.2}",
            o.as_secs_f64() / p.as_secs_f64()
        );
        let revive = revive_median(&docker, &scheduler, &store, &image).await;
        println!("revive after SIGKILL until serving through its route: median of 10 {revive:?}");
        scheduler
            .destroy(&"benchrevive".parse().expect("app"))
            .await
            .expect("destroy");
        docker.cleanup().await;
    });
}
