//! The builder's REST hooks (§4.13): authenticated by the builder key, acting for a user.

use serde_json::json;

use crate::support::Controller;

on_both_databases!(builder_hooks);

async fn builder_hooks(c: Controller) {
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    c.app(&alice, "go").await;
    let key = c
        .store
        .get("/deis/controller/builderKey")
        .await
        .expect("store")
        .expect("the controller made a builder key")
        .value;
    let auth = vec![format!("X-Deis-Builder-Auth: {key}")];
    let push = json!({"receive_user": "alice", "receive_repo": "go", "sha": "df1e628f",
                      "fingerprint": "88:25:ed", "ssh_connection": "10.0.1.10 50337 172.17.0.143 22",
                      "ssh_original_command": "git-receive-pack 'go.git'"});
    let send = |path: &'static str, headers: Vec<String>, body: serde_json::Value| {
        let c = &c;
        async move {
            c.raw("POST", path, &headers, Some(&body.to_string()))
                .await
                .expect("request")
        }
    };

    send("/v1/hooks/push", vec![], push.clone())
        .await
        .expect(401, "UNAUTHORIZED");
    send(
        "/v1/hooks/push",
        vec![format!("Authorization: token {alice}")],
        push.clone(),
    )
    .await
    .expect(403, "FORBIDDEN");
    send(
        "/v1/hooks/push",
        vec!["X-Deis-Builder-Auth: wrong".into()],
        push.clone(),
    )
    .await
    .expect(403, "FORBIDDEN");
    let recorded = send("/v1/hooks/push", auth.clone(), push.clone()).await;
    recorded.expect(201, "CREATED");
    assert_eq!(recorded.json()["receive_repo"], "go");

    let mut stranger = push.clone();
    stranger["receive_user"] = json!("bob");
    send("/v1/hooks/push", auth.clone(), stranger)
        .await
        .expect(403, "FORBIDDEN");
    let mut ghost = push.clone();
    ghost["receive_user"] = json!("ghost");
    send("/v1/hooks/push", auth.clone(), ghost)
        .await
        .expect(404, "NOT FOUND");

    let build = json!({"receive_user": "alice", "receive_repo": "go", "image": "go:git-ecdff91",
                       "sha": "ecdff91c", "procfile": {"web": "node server.js"}, "dockerfile": "true"});
    let built = send("/v1/hooks/build", auth.clone(), build.clone()).await;
    built.expect(200, "OK");
    assert_eq!(
        built.json(),
        json!({"release": {"version": 2}, "domains": ["go.example.com"]})
    );
    send("/v1/hooks/builds", auth.clone(), build)
        .await
        .expect(200, "OK");

    c.req(
        "POST",
        "/v1/apps/go/config",
        Some(&alice),
        Some(json!({"values": {"BUILDPACK_URL": "file:///bp"}})),
    )
    .await
    .expect(201, "CREATED");
    let config = send(
        "/v1/hooks/config",
        auth.clone(),
        json!({"receive_user": "alice", "receive_repo": "go"}),
    )
    .await;
    config.expect(200, "OK");
    assert_eq!(
        config.json()["values"],
        json!({"BUILDPACK_URL": "file:///bp"})
    );
    let _ = bob;
}
