//! The API driving real containers on the local Docker engine: what `deis pull`, `deis scale`,
//! `deis config:set`, `deis run` and `deis destroy` do to running containers and routes.

use std::time::Duration;

use deis_controller::SchedulerKind;
use deis_testkit::{TestDocker, eventually, http_get};
use serde_json::json;

use crate::support::{Backend, Controller};

const WEB: &str = "mkdir -p /tmp/www && echo $GREETING > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

/// The bodies `/` answers on each of `app`'s routes.
pub(crate) async fn served(c: &Controller, app: &str) -> Vec<String> {
    let routes = c
        .store
        .list(&format!("/deis/services/{app}/"))
        .await
        .expect("list")
        .kvs;
    routes
        .iter()
        .filter_map(|kv| kv.value.parse().ok())
        .filter_map(|addr| http_get(addr, "/").ok())
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_runs_releases_as_containers() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let c = Controller::start_with(Backend::Sqlite, SchedulerKind::Docker, docker.labels()).await;
    let token = c.user("dev").await;
    c.app(&token, "hello").await;
    let t = Some(token.as_str());
    c.req(
        "POST",
        "/v1/apps/hello/config",
        t,
        Some(json!({"values": {"GREETING": "hi"}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/hello/builds",
        t,
        Some(json!({"image": image, "sha": "0123456789abcdef", "procfile": {"web": WEB}})),
    )
    .await
    .expect(201, "CREATED");
    // The first git-style build with a web process runs web=1, serving at once.
    assert_eq!(served(&c, "hello").await, ["hi"]);

    c.req("POST", "/v1/apps/hello/scale", t, Some(json!({"web": 3})))
        .await
        .expect(204, "NO CONTENT");
    assert_eq!(served(&c, "hello").await, ["hi", "hi", "hi"]);
    let ps = c
        .req("GET", "/v1/apps/hello/containers", t, None)
        .await
        .json();
    let states: Vec<&str> = ps["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|c| c["state"].as_str())
        .collect();
    assert_eq!(states, ["up", "up", "up"]);

    c.req(
        "POST",
        "/v1/apps/hello/config",
        t,
        Some(json!({"values": {"GREETING": "hello"}})),
    )
    .await
    .expect(201, "CREATED");
    assert_eq!(
        served(&c, "hello").await,
        ["hello", "hello", "hello"],
        "the new release replaced every container"
    );

    let run = c
        .req(
            "POST",
            "/v1/apps/hello/run",
            t,
            Some(json!({"command": "echo $GREETING; exit 2"})),
        )
        .await;
    run.expect(200, "OK");
    assert_eq!(run.json(), json!([2, "hello\n"]));

    // An image that is nowhere is refused before anything is recorded (there is no registry:
    // the engine tried Docker Hub).
    let missing = c
        .req(
            "POST",
            "/v1/apps/hello/builds",
            t,
            Some(json!({"image": "deis-test-missing-image:nope", "procfile": {"web": WEB}})),
        )
        .await;
    missing.expect(400, "BAD REQUEST");
    let detail = missing.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.starts_with("image deis-test-missing-image:nope cannot be pulled from docker.io: "),
        "{detail}"
    );
    // A release that cannot start (a builder's image, not pulled) is reported and the old one
    // keeps serving.
    let broken = c
        .req(
            "POST",
            "/v1/apps/hello/builds",
            t,
            Some(json!({"image": "deis-test-missing-image:nope", "sha": "0123456789abcdef", "procfile": {"web": WEB}})),
        )
        .await;
    broken.expect(503, "SERVICE UNAVAILABLE");
    assert_eq!(served(&c, "hello").await, ["hello", "hello", "hello"]);
    let releases = c
        .req("GET", "/v1/apps/hello/releases", t, None)
        .await
        .json();
    assert_eq!(
        releases["results"][0]["version"], 4,
        "the failed release was not kept"
    );

    c.req("POST", "/v1/apps/hello/scale", t, Some(json!({"web": 0})))
        .await
        .expect(204, "NO CONTENT");
    assert!(served(&c, "hello").await.is_empty());
    c.req("POST", "/v1/apps/hello/scale", t, Some(json!({"web": 1})))
        .await
        .expect(204, "NO CONTENT");
    c.req("DELETE", "/v1/apps/hello", t, None)
        .await
        .expect(204, "NO CONTENT");
    eventually(
        Duration::from_secs(10),
        "no container of the app",
        || async {
            let routes = c
                .store
                .list("/deis/services/hello/")
                .await
                .expect("list")
                .kvs;
            if routes.is_empty() {
                Ok(())
            } else {
                Err(format!("{routes:?}"))
            }
        },
    )
    .await;
    docker.cleanup().await;
}

/// The id and start time of every container of the apps, by name.
async fn containers_of(
    docker: &TestDocker,
    apps: &[&str],
) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for app in apps {
        let filters = std::collections::HashMap::from([(
            "label".to_owned(),
            vec![format!("deis.app={app}")],
        )]);
        let listed = docker
            .client()
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .expect("list");
        for c in listed {
            let id = c.id.unwrap_or_default();
            let started = docker
                .client()
                .inspect_container(&id, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.started_at);
            out.push((
                c.names.and_then(|n| n.first().cloned()).unwrap_or_default(),
                id,
                started,
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_container_removed_by_hand_is_replaced() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let c = Controller::start_with(Backend::Sqlite, SchedulerKind::Docker, docker.labels()).await;
    let token = c.user("dev").await;
    c.app(&token, "sturdy").await;
    let t = Some(token.as_str());
    c.req(
        "POST",
        "/v1/apps/sturdy/builds",
        t,
        Some(json!({"image": image, "sha": "abcdef0", "procfile": {"web": WEB}})),
    )
    .await
    .expect(201, "CREATED");
    c.req("POST", "/v1/apps/sturdy/scale", t, Some(json!({"web": 2})))
        .await
        .expect(204, "NO CONTENT");
    docker
        .client()
        .remove_container(
            "sturdy_v2.web.2",
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("remove by hand");
    eventually(
        Duration::from_secs(20),
        "the container to be replaced and routed",
        || async {
            let names: Vec<String> = containers_of(&docker, &["sturdy"])
                .await
                .into_iter()
                .map(|(n, _, _)| n)
                .collect();
            let serving = served(&c, "sturdy").await.len();
            if names.len() == 2 && serving == 2 {
                Ok(())
            } else {
                Err(format!("{names:?}, {serving} serving"))
            }
        },
    )
    .await;
    docker.cleanup().await;
}

/// What `deis ps` shows of an app.
async fn ps(c: &Controller, token: &str, app: &str) -> Vec<String> {
    let list = c
        .req(
            "GET",
            &format!("/v1/apps/{app}/containers"),
            Some(token),
            None,
        )
        .await
        .json();
    list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| {
            format!(
                "{}.{} {} ({})",
                x["type"], x["num"], x["state"], x["release"]
            )
        })
        .collect()
}

#[tokio::test]
async fn a_controller_restart_restarts_no_container() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let c = Controller::start_with(Backend::Sqlite, SchedulerKind::Docker, docker.labels()).await;
    let token = c.user("dev").await;
    let apps = ["one", "two", "three"];
    for (i, app) in apps.iter().enumerate() {
        c.app(&token, app).await;
        let t = Some(token.as_str());
        c.req(
            "POST",
            &format!("/v1/apps/{app}/builds"),
            t,
            Some(json!({"image": image, "sha": "abcdef0", "procfile": {"web": WEB}})),
        )
        .await
        .expect(201, "CREATED");
        c.req(
            "POST",
            &format!("/v1/apps/{app}/scale"),
            t,
            Some(json!({"web": i + 1})),
        )
        .await
        .expect(204, "NO CONTENT");
    }
    let mut ps_before = Vec::new();
    for app in apps {
        ps_before.push(ps(&c, &token, app).await);
    }
    let before = containers_of(&docker, &apps).await;
    assert_eq!(before.len(), 6);

    let store = c.store.clone();
    let dir = c.stop().await;
    let c = Controller::start_full(
        Backend::Sqlite,
        SchedulerKind::Docker,
        docker.labels(),
        dir,
        store,
        |_| {},
    )
    .await;
    // The restarted controller publishes the routes again, from the containers as they are.
    eventually(
        Duration::from_secs(20),
        "every app to be routed again",
        || async {
            let mut counts = Vec::new();
            for app in apps {
                counts.push(served(&c, app).await.len());
            }
            if counts == [1, 2, 3] {
                Ok(())
            } else {
                Err(format!("{counts:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        containers_of(&docker, &apps).await,
        before,
        "the same containers, never restarted"
    );
    let mut ps_after = Vec::new();
    for app in apps {
        ps_after.push(ps(&c, &token, app).await);
    }
    assert_eq!(ps_after, ps_before);
    docker.cleanup().await;
}

#[tokio::test]
async fn the_api_runs_releases_as_swarm_services() {
    let docker = TestDocker::connect().await;
    docker.ensure_swarm().await;
    let image = docker.base_image().await;
    let c = Controller::start_with(Backend::Sqlite, SchedulerKind::Swarm, docker.labels()).await;
    let token = c.user("dev").await;
    let app = format!("swarmy-{}", docker.id().replace('x', "-").to_lowercase());
    c.app(&token, &app).await;
    let t = Some(token.as_str());
    c.req(
        "POST",
        &format!("/v1/apps/{app}/config"),
        t,
        Some(json!({"values": {"GREETING": "hi"}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        &format!("/v1/apps/{app}/builds"),
        t,
        Some(json!({"image": image, "sha": "abcdef0", "procfile": {"web": WEB}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        &format!("/v1/apps/{app}/scale"),
        t,
        Some(json!({"web": 3})),
    )
    .await
    .expect(204, "NO CONTENT");
    assert_eq!(served(&c, &app).await, ["hi", "hi", "hi"]);
    c.req(
        "POST",
        &format!("/v1/apps/{app}/config"),
        t,
        Some(json!({"values": {"GREETING": "hello"}})),
    )
    .await
    .expect(201, "CREATED");
    assert_eq!(served(&c, &app).await, ["hello", "hello", "hello"]);
    let ps = ps(&c, &token, &app).await;
    assert_eq!(ps.len(), 3);
    assert!(
        ps.iter()
            .all(|line| line.contains("\"up\"") && line.contains("v4")),
        "{ps:?}"
    );
    c.req("DELETE", &format!("/v1/apps/{app}"), t, None)
        .await
        .expect(204, "NO CONTENT");
    assert!(served(&c, &app).await.is_empty());
    docker.cleanup().await;
}
