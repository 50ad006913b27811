//! A user's path through the API alone: register, create an app, deploy an image, and reach it
//! at `http://<app>.<domain>` through the router; then change its config and scale it, and it
//! keeps answering; destroyed, it is unknown.

use std::time::Duration;

use deis_testkit::eventually;

use super::serve;
use crate::setup::Setup;
use crate::support::app_name;

pub(crate) async fn an_image_deployed_through_the_api_answers_on_its_app_domain(
    setup: &impl Setup,
) {
    let token = setup.user("deployer").await;
    let t = Some(token.as_str());
    let app = app_name("hello");
    setup.create_app(&token, &app).await;
    let config = |greeting: &str| format!(r#"{{"values": {{"GREETING": "{greeting}"}}}}"#);
    let path = |what: &str| format!("/v1/apps/{app}/{what}");
    assert_eq!(
        setup
            .api("POST", &path("config/"), t, &config("hi"))
            .await
            .0,
        201
    );
    let build = serde_json::json!({"image": setup.base_image(), "sha": "0123456789",
        "procfile": {"web": serve("$GREETING")}})
    .to_string();
    let (status, body) = setup.api("POST", &path("builds/"), t, &build).await;
    assert_eq!(status, 201, "{body}");

    // Served on its domain as soon as the deploy returned.
    assert_eq!(setup.get_app(&app).await, (200, "hi\n".to_owned()));
    assert_eq!(
        setup
            .api("POST", &path("config/"), t, &config("hello"))
            .await
            .0,
        201
    );
    assert_eq!(setup.get_app(&app).await, (200, "hello\n".to_owned()));
    assert_eq!(
        setup
            .api("POST", &path("scale/"), t, r#"{"web": 3}"#)
            .await
            .0,
        204
    );
    for _ in 0..6 {
        assert_eq!(setup.get_app(&app).await, (200, "hello\n".to_owned()));
    }
    setup.destroy_app(&token, &app).await;
    // The router drops the app as soon as its keys go (about a millisecond later).
    eventually(
        Duration::from_secs(5),
        "the destroyed app to be unknown",
        || async {
            match setup.get_app(&app).await {
                (404, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}
