//! The Swarm backend on a single-node swarm on loopback: scaling gives that many serving tasks
//! and routes, a new release replaces the old one without an empty route set, and destroy
//! leaves nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use deis_scheduler::{ContainerState, DockerConfig, Scheduler, SwarmScheduler};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, eventually, http_get};
use tokio_util::sync::CancellationToken;

use crate::docker::{desired, release};

/// What each of the app's routes answers on `/` (those that answer 200).
pub(crate) async fn serving(store: &Arc<dyn ConfigStore>, app: &str) -> BTreeMap<String, String> {
    store
        .list(&format!("/deis/services/{app}/"))
        .await
        .expect("list")
        .kvs
        .into_iter()
        .filter_map(|kv| {
            let addr = kv.value.parse().ok()?;
            match http_get(addr, "/") {
                Ok((200, body)) => Some((kv.key, body.trim().to_owned())),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn services_scale_deploy_and_go() {
    let docker = TestDocker::connect().await;
    docker.ensure_swarm().await;
    let image = docker.base_image().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let config = DockerConfig {
        extra_labels: docker.labels(),
        health_timeout: Duration::from_secs(60),
        drain: Duration::from_millis(300),
        ..DockerConfig::default()
    };
    let swarm = SwarmScheduler::connect(store.clone(), config, CancellationToken::new())
        .await
        .expect("swarm");
    let app = format!("sw{}", &docker.id()[1..].replace('x', "-"));

    swarm
        .converge(&desired(&app, release(&image, 1, &[]), &[("web", 3)]))
        .await
        .expect("web=3");
    let routes = serving(&store, &app).await;
    assert_eq!(routes.len(), 3, "{routes:?}");
    assert!(routes.values().all(|body| body == "v1"));
    let v1 = desired(&app, release(&image, 1, &[]), &[("web", 3)]).containers;
    assert!(
        swarm
            .states(&v1)
            .await
            .iter()
            .all(|s| s.state == ContainerState::Up)
    );

    swarm
        .converge(&desired(&app, release(&image, 1, &[]), &[("web", 1)]))
        .await
        .expect("web=1");
    assert_eq!(serving(&store, &app).await.len(), 1);

    // While v2 replaces v1, the route set is never empty.
    let mut watch = store
        .watch(&format!("/deis/services/{app}/"), 0)
        .await
        .expect("watch");
    let mut live: BTreeMap<String, String> = store
        .list(&format!("/deis/services/{app}/"))
        .await
        .expect("list")
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let watcher = tokio::spawn(async move {
        // Two routes appear (v2) and one goes (v1).
        for _ in 0..3 {
            let Some(Ok(event)) = futures_util::StreamExt::next(&mut watch).await else {
                break;
            };
            match event.kind {
                deis_store::EventKind::Put => live.insert(event.kv.key, event.kv.value),
                deis_store::EventKind::Delete => live.remove(&event.kv.key),
            };
            assert!(!live.is_empty(), "the route set became empty");
        }
    });
    swarm
        .converge(&desired(&app, release(&image, 2, &[]), &[("web", 2)]))
        .await
        .expect("v2");
    tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .expect("the route changes")
        .expect("never empty");
    let routes = serving(&store, &app).await;
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert!(routes.values().all(|body| body == "v2"), "{routes:?}");

    swarm
        .converge(&desired(&app, release(&image, 2, &[]), &[("web", 0)]))
        .await
        .expect("web=0");
    assert!(
        store
            .list(&format!("/deis/services/{app}/"))
            .await
            .expect("list")
            .kvs
            .is_empty()
    );

    swarm
        .converge(&desired(&app, release(&image, 2, &[]), &[("web", 1)]))
        .await
        .expect("web=1");
    swarm
        .destroy(&app.parse().expect("app"))
        .await
        .expect("destroy");
    assert!(
        store
            .list(&format!("/deis/services/{app}/"))
            .await
            .expect("list")
            .kvs
            .is_empty()
    );
    let v2 = desired(&app, release(&image, 2, &[]), &[("web", 1)]).containers;
    eventually(
        Duration::from_secs(20),
        "the service to be gone",
        || async {
            let states = swarm.states(&v2).await;
            if states.iter().all(|s| s.state == ContainerState::Destroyed) {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            }
        },
    )
    .await;
    docker.cleanup().await;
}
