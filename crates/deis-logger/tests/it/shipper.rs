//! The shipper with a real container writing lines and a real Redis behind the logger: every
//! line arrives once and in order across a restart of the shipper and one of the logger.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use deis_logger::shipper::{ShipperConfig, run};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, eventually, unique_id};
use tokio_util::sync::CancellationToken;

use crate::ingest::{create_app, logger_with, messages};

const LINES: u32 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_once_in_order_across_shipper_and_logger_restarts() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let redis = deis_testkit::Redis::start().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let dir = tempfile::tempdir().expect("dir");
    let app = format!("ship{}", unique_id().replace(['t', 'x'], ""));
    create_app(store.as_ref(), &app).await;
    let logger = logger_with(Some(redis.url()), store.clone()).await;

    // A container printing numbered lines for a few seconds.
    let engine = bollard::Docker::connect_with_local_defaults().expect("docker");
    let mut labels: HashMap<String, String> = docker.labels().into_iter().collect();
    labels.insert("deis.app".to_owned(), app.clone());
    let script =
        format!("i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line $i; sleep 0.01; done");
    let created = engine
        .create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&format!("{app}_v1.worker.1"))
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["/bin/sh".into(), "-c".into(), script]),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    let config = ShipperConfig {
        host: "test".to_owned(),
        logger_url: None,
        state_file: dir.path().join("shipper.json"),
        labels: docker.labels().into_iter().collect(),
    };
    let start_shipper = || {
        let token = CancellationToken::new();
        let task = tokio::spawn(run(
            config.clone(),
            engine.clone(),
            store.clone(),
            token.clone(),
        ));
        (token, task)
    };

    let (stop, task) = start_shipper();
    engine
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    eventually(Duration::from_secs(30), "some lines shipped", || async {
        let n = count(&logger, &app).await;
        if n >= 50 { Ok(()) } else { Err(n.to_string()) }
    })
    .await;

    // The shipper stops and comes back while the container keeps writing.
    stop.cancel();
    task.await.expect("shipper stops");
    let (stop, task) = start_shipper();
    let before = count(&logger, &app).await;
    eventually(Duration::from_secs(30), "shipping to resume", || async {
        let n = count(&logger, &app).await;
        if n > before + 20 {
            Ok(())
        } else {
            Err(n.to_string())
        }
    })
    .await;

    // The logger restarts (same Redis, a new port found through the store).
    drop(logger);
    let logger = logger_with(Some(redis.url()), store.clone()).await;
    let all = eventually(Duration::from_secs(60), "every line", || async {
        let got = messages(&logger, &app).await;
        if got.len() >= LINES as usize {
            Ok(got)
        } else {
            Err(got.len().to_string())
        }
    })
    .await;
    let expected: Vec<String> = (1..=LINES).map(|i| format!("worker.1|line {i}")).collect();
    assert_eq!(all, expected, "every line once, in order");
    stop.cancel();
    task.await.expect("shipper stops");
    docker.cleanup().await;
}

async fn count(logger: &crate::ingest::Logger, app: &str) -> usize {
    messages(logger, app).await.len()
}

/// A shipper following this test's containers into an in-memory logger, with one app.
struct Shipping {
    docker: TestDocker,
    image: String,
    engine: bollard::Docker,
    app: String,
    logger: crate::ingest::Logger,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Shipping {
    async fn start(app_prefix: &str) -> Shipping {
        let docker = TestDocker::connect().await;
        let image = docker.base_image().await;
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let dir = tempfile::tempdir().expect("dir");
        let app = format!("{app_prefix}{}", unique_id().replace(['t', 'x'], ""));
        create_app(store.as_ref(), &app).await;
        let logger = logger_with(None, store.clone()).await;
        let engine = bollard::Docker::connect_with_local_defaults().expect("docker");
        let config = ShipperConfig {
            host: "test".to_owned(),
            logger_url: None,
            state_file: dir.path().join("shipper.json"),
            labels: docker.labels().into_iter().collect(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(config, engine.clone(), store, stop.clone()));
        Shipping {
            docker,
            image,
            engine,
            app,
            logger,
            stop,
            task,
            _dir: dir,
        }
    }

    /// Creates the app's container `{app}_v1.{name}` running `script` (not started).
    async fn container(&self, name: &str, script: &str) -> String {
        let mut labels: HashMap<String, String> = self.docker.labels().into_iter().collect();
        labels.insert("deis.app".to_owned(), self.app.clone());
        self.engine
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&format!("{}_v1.{name}", self.app))
                        .build(),
                ),
                ContainerCreateBody {
                    image: Some(self.image.clone()),
                    cmd: Some(vec!["/bin/sh".into(), "-c".into(), script.to_owned()]),
                    labels: Some(labels),
                    ..Default::default()
                },
            )
            .await
            .expect("create")
            .id
    }

    async fn start_container(&self, id: &str) {
        self.engine
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .expect("start");
    }

    /// Waits until the app's stored lines, sorted or not, are `want`.
    async fn expect_lines(&self, mut want: Vec<String>, sorted: bool) {
        if sorted {
            want.sort();
        }
        eventually(Duration::from_secs(30), "the lines", || async {
            let mut got = messages(&self.logger, &self.app).await;
            if sorted {
                got.sort();
            }
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    got.iter()
                        .map(|m| m.chars().take(60).collect::<String>())
                        .collect::<Vec<_>>()
                ))
            }
        })
        .await;
    }

    async fn finish(self) {
        self.stop.cancel();
        self.task.await.expect("shipper stops");
        self.docker.cleanup().await;
    }
}

/// A container's last line without a newline arrives when the container exits and when it is
/// killed mid-line; a 64 KiB line (Docker splits it into 16 KiB messages) arrives whole, as
/// often as it was printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_lines_without_a_newline_and_long_lines_arrive_whole() {
    let s = Shipping::start("last").await;
    for (name, script) in [
        ("exits.1", "echo first; printf 'exits mid-line'"),
        ("killed.1", "printf 'killed mid-line'; kill -9 $$"),
        (
            "long.1",
            "L=$(head -c 65536 /dev/zero | tr '\\0' y); echo \"$L\"; echo \"$L\"",
        ),
    ] {
        let id = s.container(name, script).await;
        s.start_container(&id).await;
    }
    let long = format!("long.1|{}", "y".repeat(64 * 1024));
    let want = vec![
        "exits.1|first".to_owned(),
        "exits.1|exits mid-line".to_owned(),
        "killed.1|killed mid-line".to_owned(),
        long.clone(),
        long,
    ];
    s.expect_lines(want, true).await;
    s.finish().await;
}

/// A container started again keeps being followed, and the last line of one run is not glued
/// to the first of the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_a_restarted_container_keep_their_lines_apart() {
    let s = Shipping::start("again").await;
    let id = s
        .container(
            "worker.1",
            "n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; echo run-$n; printf end-$n",
        )
        .await;
    for run in 1..=3 {
        s.start_container(&id).await;
        let _ =
            futures_util::StreamExt::collect::<Vec<_>>(s.engine.wait_container(&id, None)).await;
        let want: Vec<String> = (1..=run)
            .flat_map(|n| [format!("worker.1|run-{n}"), format!("worker.1|end-{n}")])
            .collect();
        s.expect_lines(want, false).await;
    }
    s.finish().await;
}
