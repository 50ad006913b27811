//! Builds (`deis pull`), default structure, scaling, containers and run (§4.7, §4.9, §7.4).

use serde_json::json;

use crate::support::Controller;

on_both_databases!(pull_scale_and_containers, images_of_others_are_refused);

async fn pull_scale_and_containers(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "web").await;
    let early = c
        .req(
            "POST",
            "/v1/apps/web/scale",
            Some(&alice),
            Some(json!({"web": 1})),
        )
        .await;
    early.expect(400, "BAD REQUEST");
    assert_eq!(
        early.json(),
        json!({"detail": "No build associated with this release"})
    );
    let early_run = c
        .req(
            "POST",
            "/v1/apps/web/run",
            Some(&alice),
            Some(json!({"command": "ls"})),
        )
        .await;
    early_run.expect(400, "BAD REQUEST");
    assert_eq!(
        early_run.json(),
        json!({"detail": "No build associated with this release to run this command"})
    );

    c.req("POST", "/v1/apps/web/builds", Some(&alice), Some(json!({})))
        .await
        .expect(400, "BAD REQUEST");
    let pulled = c
        .req(
            "POST",
            "/v1/apps/web/builds",
            Some(&alice),
            Some(json!({"image": "deis/example-go:latest"})),
        )
        .await;
    pulled.expect(201, "CREATED");
    assert_eq!(pulled.header("deis-release"), Some("2"));
    let build = pulled.json();
    assert_eq!(build["image"], "deis/example-go:latest");
    assert_eq!(build["procfile"], json!({}));
    let uuid = build["uuid"].as_str().expect("uuid").to_owned();
    let fetched = c
        .req(
            "GET",
            &format!("/v1/apps/web/builds/{uuid}"),
            Some(&alice),
            None,
        )
        .await;
    fetched.expect(200, "OK");
    assert_eq!(fetched.json()["uuid"], uuid.as_str());

    // A pulled image runs as `cmd` by default.
    let app = c
        .req("GET", "/v1/apps/web", Some(&alice), None)
        .await
        .json();
    assert_eq!(app["structure"], json!({"cmd": 1}));
    let containers = c
        .req("GET", "/v1/apps/web/containers", Some(&alice), None)
        .await;
    containers.expect(200, "OK");
    let list = containers.json();
    assert_eq!(list["count"], 1);
    let one = &list["results"][0];
    assert_eq!(
        (
            one["type"].as_str(),
            one["num"].as_i64(),
            one["release"].as_str()
        ),
        (Some("cmd"), Some(1), Some("v2"))
    );
    assert_eq!(one["owner"], "alice");
    assert!(one["state"].is_string());

    let not_a_type = c
        .req(
            "POST",
            "/v1/apps/web/scale",
            Some(&alice),
            Some(json!({"web": 1})),
        )
        .await;
    not_a_type.expect(400, "BAD REQUEST");
    assert_eq!(
        not_a_type.json(),
        json!({"detail": "Container type web does not exist in application"})
    );

    // A git-style build with a Procfile.
    let built = c
        .req(
            "POST",
            "/v1/apps/web/builds",
            Some(&alice),
            Some(json!({"image": "web:git-060da68", "sha": "060da68f2244b73f9cdf944f880a2b3470a122f4",
                        "procfile": {"web": "./server", "worker": "./work"}})),
        )
        .await;
    built.expect(201, "CREATED");
    let v3 = c
        .req("GET", "/v1/apps/web/releases/v3", Some(&alice), None)
        .await
        .json();
    assert_eq!(v3["summary"], "alice deployed 060da68");
    let v2 = c
        .req("GET", "/v1/apps/web/releases/v2", Some(&alice), None)
        .await
        .json();
    assert_eq!(v2["summary"], "alice deployed deis/example-go:latest");

    for (body, detail) in [
        (
            json!({"web": "not_an_int"}),
            "Invalid scaling format: invalid literal for int() with base 10: 'not_an_int'",
        ),
        (
            json!({"web": -1}),
            "Invalid scaling format: Must be greater than or equal to zero",
        ),
    ] {
        let r = c
            .req("POST", "/v1/apps/web/scale", Some(&alice), Some(body))
            .await;
        r.expect(400, "BAD REQUEST");
        assert_eq!(r.json(), json!({"detail": detail}));
    }
    c.req(
        "POST",
        "/v1/apps/web/scale",
        Some(&alice),
        Some(json!({"web": [1]})),
    )
    .await
    .expect(400, "BAD REQUEST");

    let scaled = c
        .req(
            "POST",
            "/v1/apps/web/scale",
            Some(&alice),
            Some(json!({"web": 3, "worker": "1", "cmd": 0})),
        )
        .await;
    scaled.expect(204, "NO CONTENT");
    assert_eq!(scaled.body, "");
    let app = c
        .req("GET", "/v1/apps/web", Some(&alice), None)
        .await
        .json();
    assert_eq!(app["structure"], json!({"cmd": 0, "web": 3, "worker": 1}));
    let list = c
        .req("GET", "/v1/apps/web/containers", Some(&alice), None)
        .await
        .json();
    assert_eq!(list["count"], 4);
    let webs = c
        .req("GET", "/v1/apps/web/containers/web", Some(&alice), None)
        .await
        .json();
    let nums: Vec<i64> = webs["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|c| c["num"].as_i64())
        .collect();
    assert_eq!(nums, [1, 2, 3]);
    let single = c
        .req("GET", "/v1/apps/web/containers/web/2", Some(&alice), None)
        .await;
    single.expect(200, "OK");
    assert_eq!(single.json()["num"], 2);
    c.req("GET", "/v1/apps/web/containers/web/9", Some(&alice), None)
        .await
        .expect(404, "NOT FOUND");

    // Scaling down keeps the lowest numbers; later builds keep the structure.
    c.req(
        "POST",
        "/v1/apps/web/scale",
        Some(&alice),
        Some(json!({"web": 1})),
    )
    .await
    .expect(204, "NO CONTENT");
    c.req(
        "POST",
        "/v1/apps/web/config",
        Some(&alice),
        Some(json!({"values": {"A": "1"}})),
    )
    .await
    .expect(201, "CREATED");
    let list = c
        .req("GET", "/v1/apps/web/containers", Some(&alice), None)
        .await
        .json();
    let rows: Vec<String> = list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| {
            format!(
                "{}.{} {}",
                c["type"].as_str().unwrap_or(""),
                c["num"],
                c["release"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(rows, ["web.1 v4", "worker.1 v4"]);

    // With a build, the config response carries DEIS_APP and DEIS_RELEASE for the client.
    let set = c
        .req(
            "POST",
            "/v1/apps/web/config",
            Some(&alice),
            Some(json!({"values": {"B": "2"}})),
        )
        .await
        .json();
    assert_eq!(set["values"]["DEIS_APP"], "web");
    assert_eq!(set["values"]["DEIS_RELEASE"], "v5");
    let get = c
        .req("GET", "/v1/apps/web/config", Some(&alice), None)
        .await
        .json();
    assert!(get["values"].get("DEIS_RELEASE").is_none(), "not stored");

    let restarted = c
        .req(
            "POST",
            "/v1/apps/web/containers/web/restart",
            Some(&alice),
            None,
        )
        .await;
    restarted.expect(200, "OK");
    assert_eq!(restarted.json().as_array().map(Vec::len), Some(1));
    c.req(
        "POST",
        "/v1/apps/web/containers/restart",
        Some(&alice),
        None,
    )
    .await
    .expect(200, "OK");
    let builds = c
        .req("GET", "/v1/apps/web/builds", Some(&alice), None)
        .await
        .json();
    assert_eq!(builds["count"], 2);
    assert_eq!(
        builds["results"][0]["image"], "web:git-060da68",
        "newest first"
    );
}

/// An app cannot deploy another app's built image, a platform image, or an image ID; the
/// refusal says why and creates no release.
async fn images_of_others_are_refused(c: Controller) {
    let victim = c.user("victim").await;
    let mallory = c.user("mallory").await;
    c.app(&victim, "victim").await;
    c.app(&mallory, "evil").await;
    for (image, status, message) in [
        (
            "victim:git-0123456",
            403,
            json!({"detail": "victim:git-0123456 was built for the app victim; only that app may run it"}),
        ),
        (
            "127.0.0.1:5000/victim:git-0123456",
            403,
            json!({"detail": "127.0.0.1:5000/victim:git-0123456 was built for the app victim; only that app may run it"}),
        ),
        (
            "deis/controller:latest",
            403,
            json!({"detail": "Repository name deis/controller:latest is not allowed: it is one of the platform's own images"}),
        ),
        (
            "0123abc",
            400,
            json!({"image": ["0123abc looks like an image ID; name the image with its repository and tag (e.g. 0123abc:latest if that is its name)"]}),
        ),
    ] {
        let r = c
            .req(
                "POST",
                "/v1/apps/evil/builds",
                Some(&mallory),
                Some(json!({"image": image})),
            )
            .await;
        assert_eq!(r.status, status, "{image}: {}", r.body);
        assert_eq!(r.json(), message, "{image}");
    }
    let releases = c
        .req("GET", "/v1/apps/evil/releases", Some(&mallory), None)
        .await
        .json();
    assert_eq!(releases["count"], 1, "only the initial release");
}
