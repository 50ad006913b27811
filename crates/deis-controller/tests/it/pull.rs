//! `deis pull` with a registry: the platform's (a real `docker-registry` behind an in-process
//! registry proxy on the controller's store) and another one outside it. An image from the
//! outside registry (or one only the engine has) is copied into the platform's registry and
//! deployed from there; an unknown image or an unreachable registry is a 400 that names the
//! registry and records nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_controller::SchedulerKind;
use deis_runtime::Endpoint;
use deis_store::keys::Component;
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{Registry, TestDocker, eventually, free_port, http_get};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::docker::served;
use crate::support::{Backend, Controller};

/// What an image made for these tests serves on `$PORT`.
const SERVE: &str =
    "mkdir -p /tmp/www && echo pulled > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

/// A controller whose platform has a registry, a registry outside the platform, and the user
/// `dev` (whose token this holds) with the app `shop`.
struct Platform {
    c: Controller,
    token: String,
    docker: TestDocker,
    /// The platform's registry, behind the proxy.
    registry: Registry,
    outside: Registry,
    /// The proxy: `host:port` as image references name it.
    proxy: String,
    _cache: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Platform {
    async fn start(scheduler: SchedulerKind, pull_timeout: Duration) -> Platform {
        let docker = TestDocker::connect().await;
        let registry = Registry::start().await;
        let outside = Registry::start().await;
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let cache = tempfile::tempdir().expect("cache directory");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the proxy");
        let proxy = listener.local_addr().expect("address").to_string();
        let config = deis_registry_proxy::Config {
            listen: listener.local_addr().expect("address"),
            upstream: format!("http://{}", registry.addr()),
            cache_dir: cache.path().to_owned(),
            drain: Duration::from_secs(2),
            ..deis_registry_proxy::Config::default()
        };
        let stop = CancellationToken::new();
        tokio::spawn(deis_registry_proxy::run(
            config,
            store.clone(),
            deis_registry_proxy::Listeners { http: listener },
            stop.clone(),
        ));
        let published = proxy.clone();
        eventually(
            Duration::from_secs(10),
            "the proxy to publish its endpoint",
            || async {
                match Endpoint::lookup(store.as_ref(), Component::Registry).await {
                    Some(e) if format!("{}:{}", e.host, e.port) == published => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let c = Controller::start_full(
            Backend::Sqlite,
            scheduler,
            docker.labels(),
            dir,
            store,
            |config| config.pull_timeout = pull_timeout,
        )
        .await;
        let token = c.user("dev").await;
        c.app(&token, "shop").await;
        Platform {
            c,
            token,
            docker,
            registry,
            outside,
            proxy,
            _cache: cache,
            stop,
        }
    }

    /// An image serving `pulled`, pushed to the outside registry as `<outside>/<name>:1` and
    /// then removed from the engine (so the controller must pull it).
    async fn outside_image(&self, name: &str) -> String {
        let base = self.docker.base_image().await;
        let local = format!("deis-test-{name}-{}:1", self.docker.id());
        self.docker
            .build_image(
                &local,
                &format!("FROM {base}\nEXPOSE 5000\nCMD [\"sh\", \"-c\", \"{SERVE}\"]\n"),
            )
            .await;
        let repository = format!("{}/{name}", self.outside.addr());
        self.docker.tag_image(&local, &repository, "1").await;
        self.docker
            .push(&repository, "1", None)
            .await
            .unwrap_or_else(|e| panic!("pushing {repository}:1: {e}"));
        let image = format!("{repository}:1");
        self.docker.remove_image(&image).await;
        image
    }

    /// `POST /v1/apps/<app>/builds` of `image` as `dev`.
    async fn pull(&self, app: &str, image: &str) -> crate::support::Resp {
        self.c
            .req(
                "POST",
                &format!("/v1/apps/{app}/builds"),
                Some(&self.token),
                Some(json!({ "image": image })),
            )
            .await
    }

    /// Pulls `image` into `app` (201) and returns the build's image, the platform's copy, and
    /// its tag there.
    async fn copied(&self, app: &str, image: &str) -> (String, String) {
        let created = self.pull(app, image).await;
        created.expect(201, "CREATED");
        let copy = created.json()["image"].as_str().expect("image").to_owned();
        let tag = copy
            .strip_prefix(&format!("{}/{app}:", self.proxy))
            .unwrap_or_else(|| panic!("{copy} is not in the platform's repository of {app}"))
            .to_owned();
        (copy, tag)
    }

    /// The tags the platform's registry itself holds for `repository`.
    fn platform_tags(&self, repository: &str) -> Vec<String> {
        let (status, body) = http_get(self.registry.addr(), &format!("/v2/{repository}/tags/list"))
            .unwrap_or_else(|e| panic!("the platform's registry: {e}"));
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).expect("a tag list");
        list["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    }

    /// A list endpoint of `app` (`releases`, `builds`) as `dev` sees it.
    async fn list(&self, app: &str, list: &str) -> Value {
        self.c
            .req(
                "GET",
                &format!("/v1/apps/{app}/{list}"),
                Some(&self.token),
                None,
            )
            .await
            .json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_image_is_copied_into_the_platform_registry_and_deployed() {
    let p = Platform::start(SchedulerKind::Docker, Duration::from_secs(600)).await;
    let image = p.outside_image("web").await;

    let (copy, tag) = p.copied("shop", &image).await;
    assert!(
        tag.starts_with("pull-") && tag.len() == "pull-".len() + 12,
        "{copy}"
    );
    assert_eq!(
        p.platform_tags("shop"),
        [tag],
        "the platform's registry holds the copy"
    );
    assert_eq!(served(&p.c, "shop").await, ["pulled"]);
    let container = p
        .docker
        .client()
        .inspect_container("shop_v2.cmd.1", None)
        .await
        .expect("the app's container");
    assert_eq!(
        container.config.and_then(|c| c.image).as_deref(),
        Some(copy.as_str()),
        "the container runs the copy"
    );
    let releases = p.list("shop", "releases").await;
    assert_eq!(releases["results"][0]["version"], 2);
    assert_eq!(
        releases["results"][0]["summary"],
        format!("dev deployed {image}"),
        "the summary names the image as the user did"
    );

    // The copy, named as the platform names it, is used as it is; another app may not run it.
    p.pull("shop", &copy).await.expect(201, "CREATED");
    let builds = p.list("shop", "builds").await;
    assert_eq!(builds["results"][0]["image"], copy.as_str());
    p.c.app(&p.token, "other").await;
    let refused = p.pull("other", &copy).await;
    refused.expect(403, "FORBIDDEN");
    assert_eq!(
        refused.json()["detail"],
        format!(
            "{copy} is in the repository shop of the platform's registry; the app other runs images of {}/other only",
            p.proxy
        )
    );
    assert_eq!(p.list("other", "releases").await["count"], 1);
    p.docker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_images_and_unreachable_registries_are_refused_and_record_nothing() {
    let p = Platform::start(SchedulerKind::None, Duration::from_secs(600)).await;
    let outside = p.outside.addr();
    let nowhere = format!("127.0.0.1:{}", free_port());
    for (image, registry, reason) in [
        (
            format!("{outside}/nope:1"),
            outside.to_string(),
            "manifest unknown",
        ),
        (
            format!("{nowhere}/gone:1"),
            nowhere.clone(),
            "connection refused",
        ),
    ] {
        let refused = p.pull("shop", &image).await;
        refused.expect(400, "BAD REQUEST");
        assert_eq!(
            refused.json(),
            json!({ "detail": format!("image {image} cannot be pulled from {registry}: {reason}") })
        );
    }
    // The refusals of other apps' builds and of the platform's images come first.
    for (image, status) in [
        (format!("{outside}/victim:git-0123456"), 403),
        ("deis/registry:latest".to_owned(), 403),
    ] {
        assert_eq!(p.pull("shop", &image).await.status, status, "{image}");
    }
    assert_eq!(p.list("shop", "builds").await["count"], 0);
    assert_eq!(p.list("shop", "releases").await["count"], 1);

    // Recording only, an image only the engine has is copied all the same.
    let base = p.docker.base_image().await;
    let (_, tag) = p.copied("shop", &base).await;
    assert_eq!(p.platform_tags("shop"), [tag]);
    p.docker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_never_answers_is_given_up_on_in_time() {
    let p = Platform::start(SchedulerKind::None, Duration::from_secs(3)).await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            open.push(connection);
        }
    });
    let image = format!("{addr}/slow:1");
    let refused = p.pull("shop", &image).await;
    refused.expect(504, "GATEWAY TIMEOUT");
    assert_eq!(
        refused.json(),
        json!({ "detail": format!("image {image} was not pulled from {addr} within 3 seconds") })
    );
    assert_eq!(p.list("shop", "releases").await["count"], 1);
    held.abort();
}
