//! Collaborators (§3, §4.14): what sharing allows and what it does not.

use serde_json::json;

use crate::support::Controller;

on_both_databases!(sharing);

async fn sharing(c: Controller) {
    let _admin = c.user("admin").await;
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    let carol = c.user("carol").await;
    c.app(&alice, "shared").await;
    c.req("GET", "/v1/apps/shared/perms", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/apps/shared/perms",
        Some(&alice),
        Some(json!({"username": "ghost"})),
    )
    .await
    .expect(404, "NOT FOUND");
    let granted = c
        .req(
            "POST",
            "/v1/apps/shared/perms",
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    granted.expect(201, "CREATED");
    assert_eq!(granted.body, "");
    c.req(
        "POST",
        "/v1/apps/shared/perms",
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await
    .expect(201, "CREATED");
    let perms = c
        .req("GET", "/v1/apps/shared/perms", Some(&bob), None)
        .await;
    perms.expect(200, "OK");
    assert_eq!(perms.json(), json!({"users": ["bob"]}));

    // The collaborator sees the app, changes it, but cannot destroy it or share it further.
    let listed = c.req("GET", "/v1/apps", Some(&bob), None).await.json();
    assert_eq!(listed["count"], 1);
    c.req(
        "POST",
        "/v1/apps/shared/config",
        Some(&bob),
        Some(json!({"values": {"X": "1"}})),
    )
    .await
    .expect(201, "CREATED");
    c.req("DELETE", "/v1/apps/shared", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/apps/shared/perms",
        Some(&bob),
        Some(json!({"username": "carol"})),
    )
    .await
    .expect(403, "FORBIDDEN");

    c.req(
        "POST",
        "/v1/apps/shared/perms",
        Some(&alice),
        Some(json!({"username": "carol"})),
    )
    .await
    .expect(201, "CREATED");
    // Removing someone else takes the owner; a collaborator may leave by themselves.
    c.req("DELETE", "/v1/apps/shared/perms/carol", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("DELETE", "/v1/apps/shared/perms/bob", Some(&bob), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("DELETE", "/v1/apps/shared/perms/bob", Some(&alice), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("GET", "/v1/apps/shared", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("DELETE", "/v1/apps/shared/perms/carol", Some(&alice), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("GET", "/v1/apps/shared", Some(&carol), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("DELETE", "/v1/apps/nope/perms/carol", Some(&alice), None)
        .await
        .expect(404, "NOT FOUND");
}
