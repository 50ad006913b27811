//! A user's path through the single-host platform in one process: register, create an app,
//! deploy an image, and reach it at `http://<app>.<domain>` through the router; then change its
//! config and scale it, and it keeps answering.

use std::time::Duration;

use deis_testkit::eventually;

use crate::support::{Platform, User};

const WEB: &str = "mkdir -p /tmp/www && echo $GREETING > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_deployed_through_the_api_answers_on_its_app_domain() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let t = Some(token.as_str());
    p.create_app(&token, "hello").await;
    let config = |greeting: &str| format!(r#"{{"values": {{"GREETING": "{greeting}"}}}}"#);
    assert_eq!(
        p.api("POST", "/v1/apps/hello/config/", t, &config("hi"))
            .await
            .0,
        201
    );
    let build =
        serde_json::json!({"image": p.image, "sha": "0123456789", "procfile": {"web": WEB}})
            .to_string();
    let (status, body) = p.api("POST", "/v1/apps/hello/builds/", t, &build).await;
    assert_eq!(status, 201, "{body}");

    // Served on its domain as soon as the deploy returned.
    assert_eq!(p.get_app("hello").await, (200, "hi\n".to_owned()));
    assert_eq!(
        p.api("POST", "/v1/apps/hello/config/", t, &config("hello"))
            .await
            .0,
        201
    );
    assert_eq!(p.get_app("hello").await, (200, "hello\n".to_owned()));
    assert_eq!(
        p.api("POST", "/v1/apps/hello/scale/", t, r#"{"web": 3}"#)
            .await
            .0,
        204
    );
    for _ in 0..6 {
        assert_eq!(p.get_app("hello").await, (200, "hello\n".to_owned()));
    }
    assert_eq!(p.api("DELETE", "/v1/apps/hello/", t, "").await.0, 204);
    // The router drops the app as soon as its keys go (about a millisecond later).
    eventually(
        Duration::from_secs(5),
        "the destroyed app to be unknown",
        || async {
            match p.get_app("hello").await {
                (404, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    p.stop().await;
}
