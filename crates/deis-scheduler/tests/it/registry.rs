//! Images in the platform's registry: a real `docker-registry` behind the registry proxy
//! started in this process on the scheduler's store. An app's image the engine does not have
//! is pulled with the app's credential and runs (Docker backend and Swarm); another app's
//! credential cannot pull it, and the deploy fails with the image and the proxy's message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_scheduler::{DockerConfig, DockerScheduler, Scheduler, SwarmScheduler};
use deis_store::keys::{Component, Key};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{Registry, TestDocker, eventually, http_get};
use tokio_util::sync::CancellationToken;

use crate::docker::{desired, release};
use crate::swarm::serving;

/// A registry, the registry proxy in front of it (published in `store`), and the engine.
struct Platform {
    docker: TestDocker,
    store: Arc<dyn ConfigStore>,
    /// The proxy's `host:port`, as image references name it.
    proxy: SocketAddr,
    _registry: Registry,
    _cache: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Platform {
    async fn start() -> Platform {
        let registry = Registry::start().await;
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let cache = tempfile::tempdir().expect("cache directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let proxy = listener.local_addr().expect("address");
        let config = deis_registry_proxy::Config {
            listen: proxy,
            upstream: format!("http://{}", registry.addr()),
            cache_dir: cache.path().to_owned(),
            drain: Duration::from_secs(1),
            ..deis_registry_proxy::Config::default()
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(deis_registry_proxy::run(
            config,
            store.clone(),
            deis_registry_proxy::Listeners { http: listener },
            shutdown.clone(),
        ));
        let published = store.clone();
        eventually(
            Duration::from_secs(10),
            "the proxy to answer and publish /deis/registry/port",
            || {
                let store = published.clone();
                async move {
                    let port = store.get(&Key::port(Component::Registry).path()).await;
                    match (http_get(proxy, "/healthz"), port) {
                        (Ok((200, _)), Ok(Some(kv))) if kv.value == proxy.port().to_string() => {
                            Ok(())
                        }
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
        Platform {
            docker: TestDocker::connect().await,
            store,
            proxy,
            _registry: registry,
            _cache: cache,
            shutdown,
        }
    }

    /// A new app name of this test's.
    fn app(&self, base: &str) -> String {
        format!("{base}{}", &self.docker.id()[1..].replace('x', "-"))
    }

    /// Builds an image for `app`, pushes it through the proxy as the builder does
    /// (`<proxy>/<app>:git-1234567`) and removes it from the engine: its reference.
    async fn pushed_and_gone(&self, app: &str) -> String {
        let repository = format!("{}/{app}", self.proxy);
        let image = format!("{repository}:git-1234567");
        let base = self.docker.base_image().await;
        self.docker
            .build_image(&image, &format!("FROM {base}\nRUN echo {app} > /app\n"))
            .await;
        let builder = deis_runtime::push_credential(self.store.as_ref())
            .await
            .expect("the builder's credential");
        let credentials = deis_docker::registry_credentials(
            builder.username(),
            builder.password(),
            &self.proxy.to_string(),
        );
        self.docker
            .push(&repository, "git-1234567", Some(credentials))
            .await
            .expect("the builder pushes through the proxy");
        self.docker.remove_image(&image).await;
        self.assert_absent(&image).await;
        image
    }

    async fn assert_absent(&self, image: &str) {
        let inspected = self.docker.client().inspect_image(image).await;
        assert!(inspected.is_err(), "{image} is still on the engine");
    }

    /// The Docker backend, or the Swarm backend on a single-node swarm, on the proxy's store.
    async fn scheduler(&self, swarm: bool) -> Box<dyn Scheduler> {
        let config = DockerConfig {
            extra_labels: self.docker.labels(),
            health_timeout: Duration::from_secs(30),
            drain: Duration::from_millis(300),
            stop_timeout: Duration::from_secs(2),
            ..DockerConfig::default()
        };
        let (store, stop) = (self.store.clone(), CancellationToken::new());
        if swarm {
            self.docker.ensure_swarm().await;
            Box::new(
                SwarmScheduler::connect(store, config, stop)
                    .await
                    .expect("swarm"),
            )
        } else {
            Box::new(
                DockerScheduler::connect(store, config, stop)
                    .await
                    .expect("docker"),
            )
        }
    }

    /// What the app's routes answer.
    async fn answers(&self, app: &str) -> Vec<String> {
        serving(&self.store, app).await.into_values().collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_image_is_pulled_with_its_credential_and_no_other_apps() {
    let platform = Platform::start().await;
    let scheduler = platform.scheduler(false).await;
    // What the users are told, as the controller's events would show it.
    let told: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let sink = told.clone();
    scheduler.report_to(deis_scheduler::Progress::new(move |app, line| {
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!("{app}: {line}"));
    }));
    let (owner, other) = (platform.app("pull"), platform.app("steal"));
    let image = platform.pushed_and_gone(&owner).await;

    // The engine does not have it: it is pulled with the owner's credential, and runs.
    scheduler
        .converge(&desired(&owner, release(&image, 1, &[]), &[("web", 1)]))
        .await
        .expect("the owner's image is pulled and runs");
    assert_eq!(platform.answers(&owner).await, ["v1"]);

    // Gone from the engine again, another app cannot pull it: the deploy fails, naming the
    // image and the proxy's refusal.
    platform.docker.remove_image(&image).await;
    let refused = scheduler
        .converge(&desired(&other, release(&image, 1, &[]), &[("web", 1)]))
        .await
        .expect_err("another app's credential pulls nothing of the owner's");
    let text = refused.to_string();
    assert!(
        text.starts_with(&format!("cannot pull {image}: ")),
        "{text}"
    );
    assert!(
        text.contains("requested access to the resource is denied"),
        "{text}"
    );
    assert!(!refused.is_retryable(), "{text}");
    platform.assert_absent(&image).await;
    assert!(platform.answers(&other).await.is_empty());
    let told = told
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(
        told.iter()
            .map(|l| l.split(": ").take(2).collect::<Vec<_>>().join(": "))
            .collect::<Vec<_>>(),
        [
            format!("{owner}: pulling {image} onto a host that does not have it"),
            format!("{owner}: pulled {image}"),
            format!("{other}: pulling {image} onto a host that does not have it"),
            format!("{other}: pulling {image} failed"),
        ],
        "{told:?}"
    );

    for app in [&owner, &other] {
        scheduler
            .destroy(&app.parse().expect("app"))
            .await
            .expect("destroy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_service_pulls_the_apps_image_with_its_credential() {
    let platform = Platform::start().await;
    let swarm = platform.scheduler(true).await;
    let app = platform.app("swpull");
    let image = platform.pushed_and_gone(&app).await;

    swarm
        .converge(&desired(&app, release(&image, 1, &[]), &[("web", 2)]))
        .await
        .expect("the service's image is pulled and runs");
    assert_eq!(platform.answers(&app).await, ["v1", "v1"]);
    swarm
        .destroy(&app.parse().expect("app"))
        .await
        .expect("destroy");
}
