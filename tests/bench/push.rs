//! `git push` to first HTTP 200 of the new release, for a small Dockerfile app on a warm
//! machine (base image present, Docker's build cache warm), against the same build and run done
//! by hand through the Docker API in the same run: build the same tree, create and start a
//! container with a published port, poll it until it answers 200. Both sides build a Dockerfile
//! the engine has not seen (a new greeting each round) on the cached base image.
//!
//! The platform is the README's `deis-platform` process of `target/release`.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p deis-e2e --bench push`.
//! Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout, unreachable_pub)]

#[path = "../e2e/setup/mod.rs"]
#[allow(dead_code, unused_imports)]
mod setup;
#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use deis_testkit::unique_id;
use futures_util::StreamExt;
use setup::{Setup, SingleHost};
use support::{commit, http, serving_dockerfile, work_tree};

const ROUNDS: usize = 5;

fn dockerfile_tar(text: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "Dockerfile", text.as_bytes())
        .expect("tar");
    builder.into_inner().expect("tar")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The same steps by hand: build the tree's tar, run it with a published port, first 200.
async fn by_hand(
    docker: &Docker,
    context: Vec<u8>,
    tag: &str,
    labels: &HashMap<String, String>,
    greeting: &str,
) -> Duration {
    let started = Instant::now();
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .labels(labels)
        .build();
    let mut build = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = build.next().await {
        let info = item.expect("build");
        assert!(info.error_detail.is_none(), "{:?}", info.error_detail);
    }
    let body = ContainerCreateBody {
        image: Some(tag.to_owned()),
        env: Some(vec!["PORT=5000".to_owned()]),
        labels: Some(labels.clone()),
        exposed_ports: Some(vec!["5000/tcp".to_owned()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                "5000/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("byhand-{}", unique_id());
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .expect("create");
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    let inspect = docker
        .inspect_container(
            &created.id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("inspect");
    let port: u16 = inspect
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get("5000/tcp").cloned().flatten())
        .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
        .and_then(|p| p.parse().ok())
        .expect("published port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if http(addr, "GET", "x", "/", None, "").await == (200, format!("{greeting}\n")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never answered"
        );
    }
    let elapsed = started.elapsed();
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    elapsed
}

#[tokio::main]
async fn main() {
    deis_runtime::init_tracing();
    let p = SingleHost::start().await;
    let docker = Docker::connect_with_local_defaults().expect("docker");
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let app = format!("bench-{}", unique_id());
    p.create_app(&token, &app).await;
    let work = work_tree(
        &p.dir().join("work"),
        &[("Dockerfile", &serving_dockerfile(&p.image, "warmup"))],
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "warm-up push: {output}");
    let labels = p.test_labels();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let greeting = format!("round-{round}");
        commit(
            &work,
            &[("Dockerfile", &serving_dockerfile(&p.image, &greeting))],
            &greeting,
        );
        let started = Instant::now();
        let (ok, output) = p.push(&work, &key, &app).await;
        assert!(ok, "{output}");
        loop {
            if p.get_app(&app).await == (200, format!("{greeting}\n")) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never served");
        }
        let push = started.elapsed();
        // By hand builds a Dockerfile Docker has not seen either (its own greeting), so both
        // sides build one new layer and reuse the base.
        let hand_greeting = format!("hand-{round}");
        let context = dockerfile_tar(&serving_dockerfile(&p.image, &hand_greeting));
        let hand = by_hand(
            &docker,
            context,
            &format!("byhand-{app}:r{round}"),
            &labels,
            &hand_greeting,
        )
        .await;
        println!("round {round}: git push -> 200 {push:?}, by hand {hand:?}");
        ours.push(push);
        theirs.push(hand);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "\n| measurement | by hand (Docker API, same run) | git push | ratio |\n|---|---|---|---|\n| small Dockerfile app, start of push to first 200 of the new release, median of {ROUNDS} | {:.2} s | {:.2} s | {:.2} |",
        theirs.as_secs_f64(),
        ours.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
