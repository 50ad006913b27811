//! Apps: create, list, info, transfer, destroy, and registration modes (§4.5, §4.3).

use serde_json::json;

use crate::support::Controller;

on_both_databases!(app_lifecycle, listing_and_pagination);

async fn app_lifecycle(c: Controller) {
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    let created = c
        .req(
            "POST",
            "/v1/apps",
            Some(&alice),
            Some(json!({"id": "example-go"})),
        )
        .await;
    created.expect(201, "CREATED");
    let app = created.json();
    assert_eq!(app["id"], "example-go");
    assert_eq!(app["owner"], "alice");
    assert_eq!(app["url"], "example-go.example.com");
    assert_eq!(app["structure"], json!({}));
    assert_eq!(app["uuid"].as_str().map(str::len), Some(36));
    assert!(
        app["created"]
            .as_str()
            .is_some_and(|t| t.ends_with("UTC") && t.len() == 22),
        "{app}"
    );

    let generated = c.req("POST", "/v1/apps", Some(&alice), None).await;
    generated.expect(201, "CREATED");
    let name = generated.json()["id"].as_str().expect("an id").to_owned();
    assert!(name.contains('-'), "{name}");

    for (id, message) in [
        ("Bad_Name", "App IDs can only contain [a-z0-9-]."),
        ("deis", "deis is a reserved name."),
        ("example-go", "This field must be unique."),
    ] {
        let r = c
            .req("POST", "/v1/apps", Some(&alice), Some(json!({"id": id})))
            .await;
        r.expect(400, "BAD REQUEST");
        assert_eq!(r.json(), json!({"id": [message]}), "{id}");
    }

    // The app's existence is published for the router.
    let key = c
        .store
        .get("/deis/services/example-go")
        .await
        .expect("store")
        .expect("the app key");
    assert_eq!(key.value, "alice");

    let info = c
        .req("GET", "/v1/apps/example-go/", Some(&alice), None)
        .await;
    info.expect(200, "OK");
    assert_eq!(info.json()["id"], "example-go");
    let other = c.req("GET", "/v1/apps/example-go", Some(&bob), None).await;
    other.expect(403, "FORBIDDEN");
    let missing = c.req("GET", "/v1/apps/nope", Some(&alice), None).await;
    missing.expect(404, "NOT FOUND");
    assert_eq!(missing.json(), json!({"detail": "Not found."}));

    // Transfer: the new owner gets it, the old owner loses it.
    c.req(
        "POST",
        "/v1/apps/example-go",
        Some(&bob),
        Some(json!({"owner": "bob"})),
    )
    .await
    .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/apps/example-go",
        Some(&alice),
        Some(json!({"owner": "ghost"})),
    )
    .await
    .expect(404, "NOT FOUND");
    let moved = c
        .req(
            "POST",
            "/v1/apps/example-go",
            Some(&alice),
            Some(json!({"owner": "bob"})),
        )
        .await;
    moved.expect(200, "OK");
    assert_eq!(moved.body, "");
    assert_eq!(
        c.req("GET", "/v1/apps/example-go", Some(&bob), None)
            .await
            .json()["owner"],
        "bob"
    );

    // alice is admin (first user) so she still sees it; a third user does not.
    let carol = c.user("carol").await;
    c.req("GET", "/v1/apps/example-go", Some(&carol), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("DELETE", "/v1/apps/example-go", Some(&carol), None)
        .await
        .expect(403, "FORBIDDEN");
    let gone = c
        .req("DELETE", "/v1/apps/example-go", Some(&bob), None)
        .await;
    gone.expect(204, "NO CONTENT");
    assert_eq!(gone.body, "");
    c.req("GET", "/v1/apps/example-go", Some(&bob), None)
        .await
        .expect(404, "NOT FOUND");
    assert_eq!(
        c.store
            .get("/deis/services/example-go")
            .await
            .expect("store"),
        None
    );
    // The name is free again.
    c.app(&bob, "example-go").await;
}

async fn listing_and_pagination(c: Controller) {
    let admin = c.user("admin").await;
    let bob = c.user("bob").await;
    for id in ["app-a", "app-b", "app-c"] {
        c.app(&bob, id).await;
    }
    c.app(&admin, "admins-app").await;
    let page = c.req("GET", "/v1/apps?page_size=2", Some(&bob), None).await;
    page.expect(200, "OK");
    let body = page.json();
    assert_eq!(body["count"], 3, "bob sees his own apps only");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["previous"], json!(null));
    let next = body["next"].as_str().expect("a next link");
    assert!(
        next.starts_with("http://") && next.contains("page=2") && next.contains("page_size=2"),
        "{next}"
    );
    let rest = c
        .req("GET", "/v1/apps?page=2&page_size=2", Some(&bob), None)
        .await
        .json();
    assert_eq!(rest["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["next"], json!(null));
    assert!(rest["previous"].as_str().is_some());
    assert_eq!(
        c.req("GET", "/v1/apps", Some(&admin), None).await.json()["count"],
        4,
        "admins see all"
    );
    c.req("GET", "/v1/apps?page=0", Some(&bob), None)
        .await
        .expect(404, "NOT FOUND");
}

#[tokio::test]
async fn registration_modes() {
    let c = Controller::start(crate::support::Backend::Sqlite).await;
    let admin = c.user("admin").await;
    c.store
        .put("/deis/controller/registrationMode", "disabled", None)
        .await
        .expect("store");
    let closed = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "x", "password": "y"})),
        )
        .await;
    closed.expect(403, "FORBIDDEN");
    assert_eq!(closed.json(), json!({"detail": "Registration is disabled"}));
    c.store
        .put("/deis/controller/registrationMode", "admin_only", None)
        .await
        .expect("store");
    c.req(
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"username": "x", "password": "y"})),
    )
    .await
    .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/auth/register",
        Some(&admin),
        Some(json!({"username": "x", "password": "y"})),
    )
    .await
    .expect(201, "CREATED");
    c.store
        .put("/deis/controller/registrationMode", "enabled", None)
        .await
        .expect("store");
    c.req(
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"username": "z", "password": "y"})),
    )
    .await
    .expect(201, "CREATED");
}
