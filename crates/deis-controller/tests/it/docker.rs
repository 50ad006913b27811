//! The API driving real containers on the local Docker engine: what `deis pull`, `deis scale`,
//! `deis config:set`, `deis run` and `deis destroy` do to running containers and routes.

use std::time::Duration;

use deis_controller::SchedulerKind;
use deis_testkit::{TestDocker, eventually, http_get};
use serde_json::json;

use crate::support::{Backend, Controller};

const WEB: &str = "mkdir -p /tmp/www && echo $GREETING > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

async fn served(c: &Controller, app: &str) -> Vec<String> {
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

    // A release that cannot start is reported and the old one keeps serving.
    let broken = c
        .req(
            "POST",
            "/v1/apps/hello/builds",
            t,
            Some(json!({"image": "deis-test-missing-image:nope", "procfile": {"web": WEB}})),
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
