//! Releases become running containers with routes; deploys never leave the route set empty or
//! pointing at a stopped container; failures leave the old release serving; one-off runs leave
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use deis_scheduler::{
    ContainerState, Desired, DockerConfig, DockerScheduler, ReleaseSpec, Scheduler,
};
use deis_store::{ConfigStore, EventKind, MemoryStore};
use deis_testkit::{TestDocker, eventually, http_get};
use deis_types::{AppName, ContainerName};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// A web process that answers `v<N>` on `/` and `ok` on `/health`.
const WEB: &str = "mkdir -p /tmp/www && echo v$DEIS_RELEASE_NUM > /tmp/www/index.html && echo ok > /tmp/www/health && exec httpd -f -p $PORT -h /tmp/www";

struct Fixture {
    docker: TestDocker,
    store: Arc<dyn ConfigStore>,
    scheduler: DockerScheduler,
    image: String,
    _shutdown: CancellationToken,
}

async fn fixture() -> Fixture {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let shutdown = CancellationToken::new();
    let config = DockerConfig {
        extra_labels: docker.labels(),
        health_timeout: Duration::from_secs(5),
        drain: Duration::from_millis(500),
        stop_timeout: Duration::from_secs(2),
        run_keep: Duration::from_secs(1),
        ..DockerConfig::default()
    };
    let scheduler = DockerScheduler::connect(store.clone(), config, shutdown.clone())
        .await
        .expect("docker");
    Fixture {
        docker,
        store,
        scheduler,
        image,
        _shutdown: shutdown,
    }
}

fn app(name: &str) -> AppName {
    name.parse().expect("app name")
}

pub(crate) fn release(image: &str, version: u32, extra_env: &[(&str, &str)]) -> ReleaseSpec {
    let mut env: BTreeMap<String, String> =
        [("DEIS_RELEASE_NUM".to_owned(), version.to_string())].into();
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ReleaseSpec {
        version,
        image: image.to_owned(),
        env,
        commands: [
            ("web".to_owned(), WEB.to_owned()),
            ("worker".to_owned(), "exec sleep 1000".to_owned()),
        ]
        .into(),
        memory: [("web".to_owned(), "64M".to_owned())].into(),
        cpu: BTreeMap::new(),
        tags: BTreeMap::new(),
    }
}

pub(crate) fn desired(app_name: &str, release: ReleaseSpec, counts: &[(&str, u32)]) -> Desired {
    let containers = counts
        .iter()
        .flat_map(|(ptype, n)| {
            let version = release.version;
            (1..=*n).map(move |num| {
                format!("{app_name}_v{version}.{ptype}.{num}")
                    .parse::<ContainerName>()
                    .expect("name")
            })
        })
        .collect();
    Desired {
        app: app(app_name),
        release,
        containers,
    }
}

async fn routes(store: &Arc<dyn ConfigStore>, app_name: &str) -> BTreeMap<String, String> {
    store
        .list(&format!("/deis/services/{app_name}/"))
        .await
        .expect("list")
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

fn get(target: &str, path: &str) -> Option<String> {
    let addr = target.parse().ok()?;
    match http_get(addr, path) {
        Ok((200, body)) => Some(body.trim().to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn scale_up_and_down_with_routes() {
    let f = fixture().await;
    let rel = release(&f.image, 2, &[]);
    f.scheduler
        .converge(&desired("scaly", rel.clone(), &[("web", 3), ("worker", 1)]))
        .await
        .expect("converge");
    let r = routes(&f.store, "scaly").await;
    assert_eq!(
        r.len(),
        3,
        "one route per web container, none for the worker: {r:?}"
    );
    for target in r.values() {
        assert_eq!(
            get(target, "/").as_deref(),
            Some("v2"),
            "{target} serves the release"
        );
    }
    let names: Vec<ContainerName> =
        desired("scaly", rel.clone(), &[("web", 3), ("worker", 1)]).containers;
    assert!(
        f.scheduler
            .states(&names)
            .await
            .iter()
            .all(|s| s.state == ContainerState::Up)
    );

    // Converging again changes nothing.
    f.scheduler
        .converge(&desired("scaly", rel.clone(), &[("web", 3), ("worker", 1)]))
        .await
        .expect("converge");
    assert_eq!(routes(&f.store, "scaly").await, r);

    f.scheduler
        .converge(&desired("scaly", rel.clone(), &[("web", 0), ("worker", 0)]))
        .await
        .expect("converge");
    assert!(
        routes(&f.store, "scaly").await.is_empty(),
        "traffic leaves at once"
    );
    // The containers drain, then stop, in the background.
    deis_testkit::eventually(Duration::from_secs(20), "the containers to go", || async {
        let states = f.scheduler.states(&names).await;
        if states.iter().all(|s| s.state == ContainerState::Destroyed) {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    f.docker.cleanup().await;
}

#[tokio::test]
async fn a_deploy_never_empties_the_route_set_nor_keeps_a_stopped_container() {
    let f = fixture().await;
    f.scheduler
        .converge(&desired(
            "rolling",
            release(&f.image, 1, &[]),
            &[("web", 2)],
        ))
        .await
        .expect("v1");
    let before = routes(&f.store, "rolling").await;
    let mut watch = f
        .store
        .watch("/deis/services/rolling/", 0)
        .await
        .expect("watch");
    let mut live: BTreeMap<String, String> = before.clone();
    let watcher = tokio::spawn(async move {
        // Two new routes appear and two old ones go: four changes.
        for _ in 0..4 {
            let Some(Ok(event)) = watch.next().await else {
                break;
            };
            match event.kind {
                EventKind::Put => live.insert(event.kv.key, event.kv.value),
                EventKind::Delete => live.remove(&event.kv.key),
            };
            assert!(!live.is_empty(), "the route set became empty");
            // Old containers are stopped only after their route is withdrawn and drained.
            for target in live.values() {
                assert!(
                    get(target, "/").is_some(),
                    "{target} is routed but does not serve"
                );
            }
        }
        live.into_values().collect::<BTreeSet<String>>()
    });
    f.scheduler
        .converge(&desired(
            "rolling",
            release(&f.image, 2, &[]),
            &[("web", 2)],
        ))
        .await
        .expect("v2");
    let seen = tokio::time::timeout(Duration::from_secs(20), watcher)
        .await
        .expect("the four route changes within the deadline")
        .expect("every intermediate route set served");
    let after = routes(&f.store, "rolling").await;
    assert_eq!(after.len(), 2);
    assert_eq!(seen, after.values().cloned().collect::<BTreeSet<String>>());
    assert!(after.keys().all(|k| k.contains("_v2.web.")), "{after:?}");
    for target in after.values() {
        assert_eq!(get(target, "/").as_deref(), Some("v2"));
    }
    f.docker.cleanup().await;
}

#[tokio::test]
async fn an_unhealthy_release_is_not_switched_to() {
    let f = fixture().await;
    f.scheduler
        .converge(&desired(
            "careful",
            release(&f.image, 1, &[("HEALTHCHECK_URL", "/health")]),
            &[("web", 1)],
        ))
        .await
        .expect("v1 is healthy");
    let before = routes(&f.store, "careful").await;
    let broken = release(&f.image, 2, &[("HEALTHCHECK_URL", "/missing")]);
    let err = f
        .scheduler
        .converge(&desired("careful", broken.clone(), &[("web", 1)]))
        .await
        .expect_err("v2 never answers its health check");
    assert!(err.to_string().contains("aborting"), "{err}");
    assert!(err.to_string().contains("expected: '200'"), "{err}");
    assert_eq!(
        routes(&f.store, "careful").await,
        before,
        "v1 keeps serving"
    );
    let target = before.values().next().expect("a route");
    assert_eq!(get(target, "/").as_deref(), Some("v1"));
    let v2 = desired("careful", broken, &[("web", 1)]).containers;
    assert_eq!(
        f.scheduler
            .states(&v2)
            .await
            .iter()
            .map(|s| s.state)
            .collect::<Vec<_>>(),
        [ContainerState::Destroyed],
        "nothing of v2 is left"
    );
    f.docker.cleanup().await;
}

#[tokio::test]
async fn a_web_container_that_exits_at_once_is_a_failed_deploy() {
    let f = fixture().await;
    f.scheduler
        .converge(&desired(
            "quitter",
            release(&f.image, 1, &[]),
            &[("web", 1)],
        ))
        .await
        .expect("v1 serves");
    let before = routes(&f.store, "quitter").await;
    let mut crashing = release(&f.image, 2, &[]);
    crashing
        .commands
        .insert("web".to_owned(), "exit 3".to_owned());
    let err = f
        .scheduler
        .converge(&desired("quitter", crashing, &[("web", 1)]))
        .await
        .expect_err("a container that exits is not deployed");
    assert!(
        err.to_string().contains("exited as soon as it started")
            || err.to_string().contains("exited before it served"),
        "{err}"
    );
    assert_eq!(
        routes(&f.store, "quitter").await,
        before,
        "v1 keeps serving"
    );
    f.docker.cleanup().await;
}

#[tokio::test]
async fn run_returns_output_and_exit_code_and_leaves_nothing() {
    let f = fixture().await;
    let (code, output) = f
        .scheduler
        .run(
            &app("oneoff"),
            &release(&f.image, 3, &[("GREETING", "hello")]),
            "echo $GREETING from $DEIS_RELEASE_NUM; exit 3",
        )
        .await
        .expect("run");
    assert_eq!(code, 3);
    assert_eq!(output, "hello from 3\n");
    // Kept a moment for the log shipper, then removed.
    let client = f.docker.client();
    let filters =
        std::collections::HashMap::from([("label".to_owned(), vec!["deis.app=oneoff".to_owned()])]);
    eventually(
        Duration::from_secs(20),
        "the one-off container removed",
        || async {
            let left = client
                .list_containers(Some(
                    bollard::query_parameters::ListContainersOptionsBuilder::new()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(|e| e.to_string())?;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    // Its own tasks (supervisor, route lease, clean-ups) end once the platform shuts down.
    f._shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), f.scheduler.drain())
        .await
        .expect("the scheduler's tasks end after shutdown");
    f.docker.cleanup().await;
}

#[tokio::test]
async fn destroy_removes_containers_and_routes() {
    let f = fixture().await;
    f.scheduler
        .converge(&desired("doomed", release(&f.image, 1, &[]), &[("web", 2)]))
        .await
        .expect("converge");
    assert_eq!(routes(&f.store, "doomed").await.len(), 2);
    f.scheduler.destroy(&app("doomed")).await.expect("destroy");
    assert!(routes(&f.store, "doomed").await.is_empty());
    let names = desired("doomed", release(&f.image, 1, &[]), &[("web", 2)]).containers;
    eventually(
        Duration::from_secs(10),
        "the containers to be gone",
        || async {
            let states = f.scheduler.states(&names).await;
            if states.iter().all(|s| s.state == ContainerState::Destroyed) {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            }
        },
    )
    .await;
    f.docker.cleanup().await;
}

#[tokio::test]
async fn a_new_scheduler_adopts_running_containers_without_restarting_them() {
    let f = fixture().await;
    let want = desired("steady", release(&f.image, 1, &[]), &[("web", 2)]);
    f.scheduler.converge(&want).await.expect("converge");
    let started = |docker: &TestDocker| {
        let client = docker.client().clone();
        let names: Vec<String> = want.containers.iter().map(|n| n.to_string()).collect();
        async move {
            let mut out = Vec::new();
            for n in names {
                let c = client.inspect_container(&n, None).await.expect("inspect");
                out.push((c.id, c.state.and_then(|s| s.started_at)));
            }
            out
        }
    };
    let before = started(&f.docker).await;
    // A controller restart: a new scheduler on a fresh store converges to the same state.
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let config = DockerConfig {
        extra_labels: f.docker.labels(),
        ..DockerConfig::default()
    };
    let again = DockerScheduler::connect(store.clone(), config, CancellationToken::new())
        .await
        .expect("docker");
    again.converge(&want).await.expect("converge");
    assert_eq!(
        started(&f.docker).await,
        before,
        "same containers, never restarted"
    );
    assert_eq!(
        routes(&store, "steady").await.len(),
        2,
        "routes published again"
    );
    f.docker.cleanup().await;
}

#[tokio::test]
async fn containers_spread_over_a_list_of_engines() {
    // Two entries for this host's engine, advertised as two addresses (127.0.0.1 and
    // 127.0.0.2 both reach loopback): the scheduler treats them as two engines.
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let engine = |ip: &str| deis_scheduler::EngineEndpoint {
        url: String::new(),
        advertise_host: ip.to_owned(),
        bind_ip: ip.to_owned(),
    };
    let config = DockerConfig {
        engines: vec![engine("127.0.0.1"), engine("127.0.0.2")],
        extra_labels: docker.labels(),
        drain: Duration::from_millis(200),
        stop_timeout: Duration::from_secs(2),
        ..DockerConfig::default()
    };
    let scheduler = DockerScheduler::connect(store.clone(), config, CancellationToken::new())
        .await
        .expect("docker");
    scheduler
        .converge(&desired("spread", release(&image, 1, &[]), &[("web", 4)]))
        .await
        .expect("converge");
    let r = routes(&store, "spread").await;
    assert_eq!(r.len(), 4);
    let hosts: BTreeMap<String, usize> = r.values().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.split(':').next().unwrap_or_default().to_owned())
            .or_default() += 1;
        m
    });
    assert_eq!(
        hosts,
        BTreeMap::from([("127.0.0.1".to_owned(), 2), ("127.0.0.2".to_owned(), 2)])
    );
    for target in r.values() {
        assert_eq!(get(target, "/").as_deref(), Some("v1"), "{target}");
    }
    scheduler
        .converge(&desired("spread", release(&image, 2, &[]), &[("web", 2)]))
        .await
        .expect("v2");
    let r = routes(&store, "spread").await;
    assert_eq!(r.len(), 2);
    assert!(
        r.values().any(|t| t.starts_with("127.0.0.1:"))
            && r.values().any(|t| t.starts_with("127.0.0.2:")),
        "{r:?}"
    );
    scheduler.destroy(&app("spread")).await.expect("destroy");
    assert!(routes(&store, "spread").await.is_empty());
    docker.cleanup().await;
}

/// An image whose own labels claim `deis.*` (a one-off container, a platform component, another
/// app) is run as the app's with those labels blanked: the platform does not misread it.
#[tokio::test]
async fn an_images_deis_labels_do_not_reach_its_containers_and_limits_do() {
    let f = fixture().await;
    let forged = format!("deis-test-labelled-{}:v1", f.docker.id());
    let made = std::process::Command::new("docker")
        .args(["create", &f.image, "true"])
        .output()
        .expect("docker runs");
    let container = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let committed = std::process::Command::new("docker")
        .args([
            "commit",
            "--change",
            &format!("LABEL deis.test={}", f.docker.id()),
            "--change",
            "LABEL deis.run=true deis.platform=deis deis.component=controller deis.app=victim",
            &container,
            &forged,
        ])
        .status()
        .expect("docker runs");
    assert!(committed.success());
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &container])
        .status();
    let wanted = desired(
        "labelled",
        release(&forged, 1, &[]),
        &[("web", 1), ("worker", 1)],
    );
    f.scheduler.converge(&wanted).await.expect("deployed");
    assert_eq!(routes(&f.store, "labelled").await.len(), 1, "it serves");
    // The operator's limits hold every container: the type's own memory limit, else the
    // default; processes; the engine's log files.
    let client = f.docker.client();
    let inspect = |name: &'static str| async move {
        client
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .expect("inspect")
    };
    for (name, memory) in [
        ("labelled_v1.web.1", 64 << 20),
        ("labelled_v1.worker.1", 512 << 20),
    ] {
        let host = inspect(name).await.host_config.unwrap_or_default();
        assert_eq!(host.memory, Some(memory), "{name}");
        assert_eq!(host.pids_limit, Some(1024), "{name}");
        let log = host.log_config.and_then(|l| l.config).unwrap_or_default();
        assert_eq!(
            log.get("max-size").map(String::as_str),
            Some("10m"),
            "{name}"
        );
    }
    let inspected = inspect("labelled_v1.web.1").await;
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("deis.app").map(String::as_str), Some("labelled"));
    for key in ["deis.run", "deis.platform", "deis.component"] {
        assert_eq!(labels.get(key).map(String::as_str), Some(""), "{key}");
    }
    // Converging again adopts it as the app's web container (not a one-off): nothing restarts.
    f.scheduler.converge(&wanted).await.expect("converged");
    let again = inspect("labelled_v1.web.1").await;
    assert_eq!(again.id, inspected.id);
    f.docker.cleanup().await;
}
