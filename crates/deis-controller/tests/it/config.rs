//! Config and releases: every change is a release with the right summary, and rollbacks
//! (§4.6, §4.8, §7.2).

use serde_json::json;

use crate::support::Controller;

on_both_databases!(
    config_changes_are_releases,
    rollback_restores_config,
    buildpack_urls_that_reach_the_host_are_refused,
    limits_above_the_maxima_are_refused
);

async fn config_changes_are_releases(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "go").await;
    let initial = c.req("GET", "/v1/apps/go/config", Some(&alice), None).await;
    initial.expect(200, "OK");
    let body = initial.json();
    for field in ["values", "memory", "cpu", "tags"] {
        assert_eq!(body[field], json!({}), "{field}");
    }
    assert_eq!(body["owner"], "alice");

    let set = c
        .req(
            "POST",
            "/v1/apps/go/config",
            Some(&alice),
            Some(json!({"values": {"FOO": "bar", "NUM": 42}})),
        )
        .await;
    set.expect(201, "CREATED");
    assert_eq!(set.header("deis-release"), Some("2"));
    assert_eq!(set.header("x-deis-release"), Some("2"));
    assert_eq!(set.json()["values"], json!({"FOO": "bar", "NUM": "42"}));
    assert!(
        set.json()["values"].get("DEIS_APP").is_none(),
        "no build yet"
    );

    let changed = c
        .req(
            "POST",
            "/v1/apps/go/config",
            Some(&alice),
            Some(json!({"values": "{\"FOO\": \"baz\", \"NUM\": null}"})),
        )
        .await;
    changed.expect(201, "CREATED");
    assert_eq!(
        changed.json()["values"],
        json!({"FOO": "baz"}),
        "merged, null removes"
    );

    c.req(
        "POST",
        "/v1/apps/go/config",
        Some(&alice),
        Some(json!({"memory": {"web": "512M"}, "cpu": {"web": 512}})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/go/config",
        Some(&alice),
        Some(json!({"tags": {"environ": "prod"}})),
    )
    .await
    .expect(201, "CREATED");
    c.req("POST", "/v1/apps/go/config", Some(&alice), Some(json!({})))
        .await
        .expect(201, "CREATED");

    for (body, field, message) in [
        (
            json!({"values": {"FOO-BAR": "x"}}),
            "values",
            "Config keys must start with a letter or underscore and only contain [A-z0-9_]",
        ),
        (
            json!({"memory": {"web": "20MK"}}),
            "memory",
            "Limit format: <number><unit>, where unit = B, K, M or G",
        ),
        (
            json!({"memory": {"1web": "20M"}}),
            "memory",
            "Process types can only contain [a-z]",
        ),
        (
            json!({"cpu": {"web": "lots"}}),
            "cpu",
            "CPU shares must be an integer",
        ),
        (
            json!({"cpu": {"web": 2048}}),
            "cpu",
            "CPU shares must be between 0 and 1024",
        ),
        (
            json!({"tags": {"in.valid": "x"}}),
            "tags",
            "Tag keys can only contain [a-z]",
        ),
        (
            json!({"tags": {"valid": "in\nvalid"}}),
            "tags",
            "Invalid tag value",
        ),
    ] {
        let r = c
            .req("POST", "/v1/apps/go/config", Some(&alice), Some(body))
            .await;
        r.expect(400, "BAD REQUEST");
        assert_eq!(r.json(), json!({field: [message]}));
    }

    let releases = c
        .req("GET", "/v1/apps/go/releases", Some(&alice), None)
        .await;
    releases.expect(200, "OK");
    let list = releases.json();
    assert_eq!(list["count"], 6, "nothing invalid was saved");
    let summaries: Vec<String> = list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            format!(
                "v{} {}",
                r["version"],
                r["summary"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        summaries,
        [
            "v6 alice changed nothing",
            "v5 alice added tag environ",
            "v4 alice changed limits for memory, cpu",
            "v3 alice changed FOO, deleted NUM",
            "v2 alice added FOO, NUM",
            "v1 alice created initial release",
        ]
    );
    let v1 = c
        .req("GET", "/v1/apps/go/releases/v1", Some(&alice), None)
        .await;
    v1.expect(200, "OK");
    assert_eq!(v1.json()["build"], json!(null));
    c.req("GET", "/v1/apps/go/releases/v99", Some(&alice), None)
        .await
        .expect(404, "NOT FOUND");

    // The router's copy of the config.
    let mirrored = c
        .store
        .get("/deis/config/go/foo")
        .await
        .expect("store")
        .expect("mirrored");
    assert_eq!(mirrored.value, "baz");
    assert_eq!(
        c.store.get("/deis/config/go/num").await.expect("store"),
        None
    );
}

async fn rollback_restores_config(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "go").await;
    for v in ["one", "two"] {
        c.req(
            "POST",
            "/v1/apps/go/config",
            Some(&alice),
            Some(json!({"values": {"V": v}})),
        )
        .await
        .expect(201, "CREATED");
    }
    let back = c
        .req("POST", "/v1/apps/go/releases/rollback/", Some(&alice), None)
        .await;
    back.expect(201, "CREATED");
    assert_eq!(back.json(), json!({"version": 4}));
    let v4 = c
        .req("GET", "/v1/apps/go/releases/v4", Some(&alice), None)
        .await
        .json();
    assert_eq!(v4["summary"], "alice rolled back to v2");
    let v2 = c
        .req("GET", "/v1/apps/go/releases/v2", Some(&alice), None)
        .await
        .json();
    assert_eq!(v4["config"], v2["config"], "the target's config is reused");
    let config = c
        .req("GET", "/v1/apps/go/config", Some(&alice), None)
        .await
        .json();
    assert_eq!(config["values"], json!({"V": "one"}));
    // The next change builds on what runs now, not on the rolled-back-from values.
    c.req(
        "POST",
        "/v1/apps/go/config",
        Some(&alice),
        Some(json!({"values": {"W": "x"}})),
    )
    .await
    .expect(201, "CREATED");
    let config = c
        .req("GET", "/v1/apps/go/config", Some(&alice), None)
        .await
        .json();
    assert_eq!(config["values"], json!({"V": "one", "W": "x"}));

    let explicit = c
        .req(
            "POST",
            "/v1/apps/go/releases/rollback",
            Some(&alice),
            Some(json!({"version": 1})),
        )
        .await;
    explicit.expect(201, "CREATED");
    assert_eq!(explicit.json(), json!({"version": 6}));
    assert_eq!(
        c.req("GET", "/v1/apps/go/config", Some(&alice), None)
            .await
            .json()["values"],
        json!({})
    );
    let below = c
        .req(
            "POST",
            "/v1/apps/go/releases/rollback",
            Some(&alice),
            Some(json!({"version": 0})),
        )
        .await;
    below.expect(400, "BAD REQUEST");
    assert_eq!(below.json(), json!({"detail": "version cannot be below 0"}));
    c.req(
        "POST",
        "/v1/apps/go/releases/rollback",
        Some(&alice),
        Some(json!({"version": 42})),
    )
    .await
    .expect(404, "NOT FOUND");
}

/// A `BUILDPACK_URL` that would use the host's identity or reach the builder's own data is
/// refused when it is set, and no release is made.
async fn buildpack_urls_that_reach_the_host_are_refused(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "bp").await;
    for (url, reason) in [
        (
            "file:///var/lib/deis/buil%64er/repos/victim.git",
            "a file:// path may hold no % escapes and no ..",
        ),
        (
            "file://x/var/lib/deis/builder/repos/victim.git",
            "a file:// URL names an absolute path (file:///path)",
        ),
        (
            "git@github.com:me/bp.git",
            "use an https://, http:// or git:// repository (or file:// below the platform's buildpacks folder)",
        ),
        (
            "ssh://git@github.com/me/bp.git",
            "use an https://, http:// or git:// repository (or file:// below the platform's buildpacks folder)",
        ),
    ] {
        let r = c
            .req(
                "POST",
                "/v1/apps/bp/config",
                Some(&alice),
                Some(json!({"values": {"BUILDPACK_URL": url}})),
            )
            .await;
        r.expect(400, "BAD REQUEST");
        assert_eq!(
            r.json(),
            json!({"values": [format!("BUILDPACK_URL {url} cannot be used: {reason}")]})
        );
    }
    c.req(
        "POST",
        "/v1/apps/bp/config",
        Some(&alice),
        Some(json!({"values": {"BUILDPACK_URL": "https://example.com/bp.git#v2"}})),
    )
    .await
    .expect(201, "CREATED");
    let releases = c
        .req("GET", "/v1/apps/bp/releases", Some(&alice), None)
        .await
        .json();
    assert_eq!(
        releases["count"], 2,
        "only the accepted change made a release"
    );
}

/// Memory and CPU limits above the operator's maxima are refused with the maximum named.
async fn limits_above_the_maxima_are_refused(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "big").await;
    for (body, field, message) in [
        (
            json!({"memory": {"web": "9G"}}),
            "memory",
            "web=9G is above the platform's maximum of 8G per container",
        ),
        (
            json!({"memory": {"web": "0M"}}),
            "memory",
            "web=0M is below the smallest memory limit, 6M",
        ),
        (
            json!({"cpu": {"web": 1024}}),
            "cpu",
            "CPU shares must be between 0 and 1024",
        ),
    ] {
        let r = c
            .req("POST", "/v1/apps/big/config", Some(&alice), Some(body))
            .await;
        if field == "cpu" {
            // 1024 is the maximum: accepted.
            r.expect(201, "CREATED");
            continue;
        }
        r.expect(400, "BAD REQUEST");
        assert_eq!(r.json(), json!({field: [message]}));
    }
    c.req(
        "POST",
        "/v1/apps/big/config",
        Some(&alice),
        Some(json!({"memory": {"web": "8G"}})),
    )
    .await
    .expect(201, "CREATED");
}
