//! Many changes to one app at once: each gets its own consecutive release and none is lost.

use serde_json::json;

use crate::support::Controller;

on_both_databases!(fifty_concurrent_config_changes);

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
