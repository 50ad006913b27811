//! Dead containers come back: a killed web container at once (its route withdrawn meanwhile and
//! restored when it serves again), a crash-looping one with growing delays.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use deis_scheduler::{ContainerState, DockerConfig, DockerScheduler, Scheduler};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, eventually, http_get};
use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::docker::{desired, release};

async fn scheduler(docker: &TestDocker, store: &Arc<dyn ConfigStore>) -> DockerScheduler {
    let config = DockerConfig {
        extra_labels: docker.labels(),
        health_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(2),
        drain: Duration::from_millis(200),
        ..DockerConfig::default()
    };
    DockerScheduler::connect(store.clone(), config, CancellationToken::new())
        .await
        .expect("docker")
}

async fn serving(store: &Arc<dyn ConfigStore>, app: &str) -> Result<usize, String> {
    let routes = store
        .list(&format!("/deis/services/{app}/"))
        .await
        .map_err(|e| e.to_string())?
        .kvs;
    let ok = routes
        .iter()
        .filter_map(|kv| kv.value.parse().ok())
        .filter(|addr| matches!(http_get(*addr, "/"), Ok((200, _))))
        .count();
    if ok == routes.len() {
        Ok(ok)
    } else {
        Err(format!("{ok} of {} routes serve", routes.len()))
    }
}

#[tokio::test]
async fn a_killed_container_is_revived_and_its_route_follows() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let s = scheduler(&docker, &store).await;
    let want = desired("phoenix", release(&image, 1, &[]), &[("web", 1)]);
    s.converge(&want).await.expect("converge");
    let name = want.containers[0].to_string();
    for round in 1..=3u32 {
        let pid = docker
            .client()
            .inspect_container(&name, None)
            .await
            .expect("inspect")
            .state
            .and_then(|st| st.pid)
            .expect("a running container has a pid");
        kill(
            Pid::from_raw(i32::try_from(pid).expect("pid")),
            Signal::SIGKILL,
        )
        .expect("kill");
        let killed = Instant::now();
        eventually(
            Duration::from_secs(15),
            "the container to serve again",
            || async {
                let statuses = s.states(&want.containers).await;
                let status = statuses[0];
                if status.restarts != round || status.state != ContainerState::Up {
                    return Err(format!("{status:?}"));
                }
                match serving(&store, "phoenix").await? {
                    1 => Ok(()),
                    n => Err(format!("{n} routes")),
                }
            },
        )
        .await;
        eprintln!(
            "round {round}: serving again {:?} after SIGKILL",
            killed.elapsed()
        );
    }
    docker.cleanup().await;
}

#[tokio::test]
async fn a_crash_loop_backs_off() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let s = scheduler(&docker, &store).await;
    let mut rel = release(&image, 1, &[]);
    rel.commands.insert("worker".into(), "exit 1".into());
    let want = desired("crashy", rel, &[("worker", 1)]);
    let filters = std::collections::HashMap::from([
        ("event".to_owned(), vec!["die".to_owned()]),
        ("label".to_owned(), vec!["deis.app=crashy".to_owned()]),
    ]);
    let mut deaths = docker
        .client()
        .events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
    s.converge(&want).await.expect("converge");
    let mut times = Vec::new();
    while times.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(20), deaths.next())
            .await
            .expect("another death");
        event.expect("stream").expect("event");
        times.push(Instant::now());
    }
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[3] > gaps[0] * 2, "the delay grows: {gaps:?}");
    let status = s.states(&want.containers).await[0];
    assert!(status.restarts >= 4, "{status:?}");
    assert_ne!(status.state, ContainerState::Up, "{status:?}");
    s.destroy(&"crashy".parse().expect("app"))
        .await
        .expect("destroy");
    docker.cleanup().await;
}
