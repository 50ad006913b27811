//! Many changes to one app at once: each gets its own consecutive release and none is lost.

use serde_json::json;

use crate::support::Controller;

on_both_databases!(
    fifty_concurrent_config_changes,
    scaling_during_config_changes_is_not_undone
);

async fn fifty_concurrent_config_changes(c: Controller) {
    const N: usize = 50;
    let alice = c.user("alice").await;
    c.app(&alice, "busy").await;
    let c = std::sync::Arc::new(c);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (c, token) = (c.clone(), alice.clone());
        tasks.spawn(async move {
            let r = c
                .req(
                    "POST",
                    "/v1/apps/busy/config",
                    Some(&token),
                    Some(json!({"values": {format!("KEY_{i}"): i.to_string()}})),
                )
                .await;
            r.expect(201, "CREATED");
            r.header("deis-release")
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a release number")
        });
    }
    let mut versions = Vec::new();
    while let Some(v) = tasks.join_next().await {
        versions.push(v.expect("task"));
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..N + 2).collect::<Vec<_>>(),
        "distinct and consecutive"
    );
    let config = c
        .req("GET", "/v1/apps/busy/config", Some(&alice), None)
        .await
        .json();
    let values = config["values"].as_object().expect("values");
    assert_eq!(values.len(), N, "no key lost");
    for i in 0..N {
        assert_eq!(values[&format!("KEY_{i}")], i.to_string());
    }
}

async fn scaling_during_config_changes_is_not_undone(c: Controller) {
    let alice = c.user("alice").await;
    c.app(&alice, "busy").await;
    c.req(
        "POST",
        "/v1/apps/busy/builds",
        Some(&alice),
        Some(json!({"image": "img", "sha": "abc1234", "procfile": {"web": "run"}})),
    )
    .await
    .expect(201, "CREATED");
    let c = std::sync::Arc::new(c);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (c, token) = (c.clone(), alice.clone());
        tasks.spawn(async move {
            c.req(
                "POST",
                "/v1/apps/busy/config",
                Some(&token),
                Some(json!({"values": {format!("K{i}"): "v"}})),
            )
            .await
            .expect(201, "CREATED");
        });
    }
    let (scaler, token) = (c.clone(), alice.clone());
    tasks.spawn(async move {
        scaler
            .req(
                "POST",
                "/v1/apps/busy/scale",
                Some(&token),
                Some(json!({"web": 3})),
            )
            .await
            .expect(204, "NO CONTENT");
    });
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    // Whatever the order, every deploy after the scale kept web=3.
    let app = c
        .req("GET", "/v1/apps/busy", Some(&alice), None)
        .await
        .json();
    assert_eq!(app["structure"], json!({"web": 3}));
    let ps = c
        .req("GET", "/v1/apps/busy/containers", Some(&alice), None)
        .await
        .json();
    assert_eq!(ps["count"], 3);
}
