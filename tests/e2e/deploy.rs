//! A user's path through the single-host platform in one process: register, create an app,
//! deploy an image, and reach it at `http://<app>.<domain>` through the router; then change its
//! config and scale it, and it keeps answering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_platform::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{TestDocker, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const WEB: &str = "mkdir -p /tmp/www && echo $GREETING > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

/// One HTTP/1.1 request; the status and body.
async fn http(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: token {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_deployed_through_the_api_answers_on_its_app_domain() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config::default();
    config.controller.listen = loopback;
    config.controller.data_dir = dir.path().to_owned();
    config.controller.container_labels = docker.labels();
    config.builder.http_listen = loopback;
    config.builder.ssh_listen = loopback;
    config.builder.data_dir = dir.path().join("builder");
    config.router.listen = loopback;
    config.router.admin_listen = loopback;
    config.router.https_listen = Some(loopback);
    config.logger.listen = loopback;
    config.registry_proxy.listen = loopback;
    let listeners = Listeners::bind(&config).await.expect("bind");
    let router = listeners.router.http.local_addr().expect("addr");
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    store
        .put("/deis/platform/domain", "example.com", None)
        .await
        .expect("store");
    let shutdown = CancellationToken::new();
    let platform = tokio::spawn(deis_platform::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));

    // The controller is reached through the router, as the deis client does.
    let api = "deis.example.com";
    eventually(
        Duration::from_secs(20),
        "the controller behind the router",
        || async {
            match http(router, "GET", api, "/v1/", None, "").await {
                (401, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let user = r#"{"username": "dev", "password": "pw"}"#;
    assert_eq!(
        http(router, "POST", api, "/v1/auth/register/", None, user)
            .await
            .0,
        201
    );
    let (status, body) = http(router, "POST", api, "/v1/auth/login/", None, user).await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    let t = Some(token.as_str());
    assert_eq!(
        http(router, "POST", api, "/v1/apps/", t, r#"{"id": "hello"}"#)
            .await
            .0,
        201
    );
    assert_eq!(
        http(
            router,
            "POST",
            api,
            "/v1/apps/hello/config/",
            t,
            r#"{"values": {"GREETING": "hi"}}"#
        )
        .await
        .0,
        201
    );
    let build = serde_json::json!({"image": image, "sha": "0123456789", "procfile": {"web": WEB}})
        .to_string();
    let (status, body) = http(router, "POST", api, "/v1/apps/hello/builds/", t, &build).await;
    assert_eq!(status, 201, "{body}");

    // Served on its domain as soon as the deploy returned.
    assert_eq!(
        http(router, "GET", "hello.example.com", "/", None, "").await,
        (200, "hi\n".to_owned())
    );
    assert_eq!(
        http(
            router,
            "POST",
            api,
            "/v1/apps/hello/config/",
            t,
            r#"{"values": {"GREETING": "hello"}}"#
        )
        .await
        .0,
        201
    );
    assert_eq!(
        http(router, "GET", "hello.example.com", "/", None, "").await,
        (200, "hello\n".to_owned())
    );
    assert_eq!(
        http(
            router,
            "POST",
            api,
            "/v1/apps/hello/scale/",
            t,
            r#"{"web": 3}"#
        )
        .await
        .0,
        204
    );
    for _ in 0..6 {
        assert_eq!(
            http(router, "GET", "hello.example.com", "/", None, "").await,
            (200, "hello\n".to_owned())
        );
    }
    assert_eq!(
        http(router, "DELETE", api, "/v1/apps/hello/", t, "")
            .await
            .0,
        204
    );
    // The router drops the app as soon as its keys go (about a millisecond later).
    eventually(
        Duration::from_secs(5),
        "the destroyed app to be unknown",
        || async {
            match http(router, "GET", "hello.example.com", "/", None, "").await {
                (404, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), platform)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean stop");
    docker.cleanup().await;
}
