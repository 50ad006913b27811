//! SSH keys, custom domains and certificates (§4.10-§4.12).

use serde_json::json;

use crate::support::Controller;

on_both_databases!(ssh_keys, custom_domains, certificates);

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 alice@example.com";

async fn ssh_keys(c: Controller) {
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    let added = c
        .req(
            "POST",
            "/v1/keys",
            Some(&alice),
            Some(json!({"id": "alice@example.com", "public": KEY})),
        )
        .await;
    added.expect(201, "CREATED");
    let key = added.json();
    let fingerprint = key["fingerprint"].as_str().expect("fingerprint").to_owned();
    assert_eq!(fingerprint.len(), 47, "16 hex pairs joined by ':'");
    assert_eq!(key["owner"], "alice");

    let padding = c
        .req(
            "POST",
            "/v1/keys",
            Some(&alice),
            Some(json!({"id": "x", "public": "ssh-rsa AAAAB3NzaC1 x"})),
        )
        .await;
    padding.expect(400, "BAD REQUEST");
    assert_eq!(padding.json(), json!({"public": ["Incorrect padding"]}));
    let taken = c
        .req(
            "POST",
            "/v1/keys",
            Some(&bob),
            Some(json!({"id": "mine", "public": KEY})),
        )
        .await;
    taken.expect(400, "BAD REQUEST");
    assert_eq!(
        taken.json(),
        json!({"public": ["This field must be unique."]})
    );
    let comment_only = c
        .req(
            "POST",
            "/v1/keys",
            Some(&bob),
            Some(json!({"id": "mine", "public": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other"})),
        )
        .await;
    comment_only.expect(400, "BAD REQUEST");

    let mine = c.req("GET", "/v1/keys", Some(&alice), None).await.json();
    assert_eq!(mine["count"], 1);
    assert_eq!(
        c.req("GET", "/v1/keys", Some(&bob), None).await.json()["count"],
        0,
        "keys are private"
    );
    let one = c
        .req("GET", "/v1/keys/alice@example.com", Some(&alice), None)
        .await;
    one.expect(200, "OK");
    assert_eq!(one.json()["public"], KEY);
    c.req("GET", "/v1/keys/alice@example.com", Some(&bob), None)
        .await
        .expect(404, "NOT FOUND");

    let path = format!("/deis/builder/users/alice/{fingerprint}");
    assert_eq!(
        c.store.get(&path).await.expect("store").map(|kv| kv.value),
        Some(KEY.to_owned())
    );
    c.req("DELETE", "/v1/keys/alice@example.com", Some(&alice), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("DELETE", "/v1/keys/alice@example.com", Some(&alice), None)
        .await
        .expect(404, "NOT FOUND");
    assert_eq!(c.store.get(&path).await.expect("store"), None);
}

async fn custom_domains(c: Controller) {
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    c.app(&alice, "go").await;
    c.app(&bob, "other").await;
    c.req(
        "POST",
        "/v1/apps/go/perms",
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await
    .expect(201, "CREATED");

    let added = c
        .req(
            "POST",
            "/v1/apps/go/domains",
            Some(&alice),
            Some(json!({"domain": "www.example.org."})),
        )
        .await;
    added.expect(201, "CREATED");
    let domain = added.json();
    assert_eq!(
        domain["domain"], "www.example.org",
        "the trailing dot is stripped"
    );
    assert_eq!(domain["app"], "go");
    assert_eq!(
        c.store
            .get("/deis/domains/www.example.org")
            .await
            .expect("store")
            .map(|kv| kv.value),
        Some("go".into())
    );

    for (domain, message) in [
        (
            "www.example.org",
            "The domain www.example.org is already in use by another app".to_owned(),
        ),
        (
            "*.example.org",
            "Adding a wildcard subdomain is currently not supported.".to_owned(),
        ),
        (
            "this_is_an.invalid.domain",
            "Hostname does not look valid.".to_owned(),
        ),
        (
            &"a".repeat(256),
            "Hostname must be 255 characters or less.".to_owned(),
        ),
    ] {
        let r = c
            .req(
                "POST",
                "/v1/apps/other/domains",
                Some(&bob),
                Some(json!({"domain": domain})),
            )
            .await;
        r.expect(400, "BAD REQUEST");
        assert_eq!(r.json(), json!({"domain": [message]}));
    }
    c.req(
        "POST",
        "/v1/apps/go/domains",
        Some(&bob),
        Some(json!({"domain": "MYDOMAIN.NET"})),
    )
    .await
    .expect(201, "CREATED");
    let list = c
        .req("GET", "/v1/apps/go/domains", Some(&bob), None)
        .await
        .json();
    assert_eq!(list["count"], 2);
    // Collaborators may add but not remove.
    c.req(
        "DELETE",
        "/v1/apps/go/domains/MYDOMAIN.NET",
        Some(&bob),
        None,
    )
    .await
    .expect(403, "FORBIDDEN");
    c.req(
        "DELETE",
        "/v1/apps/go/domains/MYDOMAIN.NET",
        Some(&alice),
        None,
    )
    .await
    .expect(204, "NO CONTENT");
    c.req(
        "DELETE",
        "/v1/apps/go/domains/unknown.example.org",
        Some(&alice),
        None,
    )
    .await
    .expect(404, "NOT FOUND");
    // Destroying the app frees its domains.
    c.req("DELETE", "/v1/apps/go", Some(&alice), None)
        .await
        .expect(204, "NO CONTENT");
    assert_eq!(
        c.store
            .get("/deis/domains/www.example.org")
            .await
            .expect("store"),
        None
    );
    c.req(
        "POST",
        "/v1/apps/other/domains",
        Some(&bob),
        Some(json!({"domain": "www.example.org"})),
    )
    .await
    .expect(201, "CREATED");
}

/// A self-signed certificate and key for `cn`, made by openssl.
fn self_signed(cn: &str) -> (String, String) {
    let openssl = deis_testkit::require("openssl", "openssl");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = std::process::Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(cert).expect("certificate"),
        std::fs::read_to_string(key).expect("key"),
    )
}

async fn certificates(c: Controller) {
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    let (cert, key) = self_signed("test.example.com");
    let added = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": cert, "key": key})),
        )
        .await;
    added.expect(201, "CREATED");
    let body = added.json();
    assert_eq!(body["common_name"], "test.example.com");
    assert_eq!(body["id"], 1);
    assert!(body["expires"].as_str().is_some_and(|e| e.ends_with("UTC")));
    assert!(
        body.get("key").is_none() && body.get("certificate").is_none(),
        "write-only"
    );
    assert!(
        c.store
            .get("/deis/certs/test.example.com/cert")
            .await
            .expect("store")
            .is_some()
    );

    let dup = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": cert, "key": key})),
        )
        .await;
    dup.expect(400, "BAD REQUEST");
    assert_eq!(
        dup.json(),
        json!({"common_name": ["This field must be unique."]})
    );
    let wildcard = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": cert, "key": key, "common_name": "*.example.com"})),
        )
        .await;
    wildcard.expect(400, "BAD REQUEST");
    assert_eq!(
        wildcard.json(),
        json!({"common_name": ["Wildcard certificates are not supported"]})
    );
    let garbage = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": "nope", "key": key})),
        )
        .await;
    garbage.expect(400, "BAD REQUEST");
    assert!(
        garbage.json()["certificate"][0]
            .as_str()
            .is_some_and(|m| m.starts_with("Could not load certificate"))
    );
    let san = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": cert, "key": key, "common_name": "www.example.com"})),
        )
        .await;
    san.expect(201, "CREATED");
    assert_eq!(san.json()["id"], 2);

    assert_eq!(
        c.req("GET", "/v1/certs", Some(&alice), None).await.json()["count"],
        2
    );
    assert_eq!(
        c.req("GET", "/v1/certs", Some(&bob), None).await.json()["count"],
        0,
        "only your own"
    );
    c.req("GET", "/v1/certs/test.example.com", Some(&alice), None)
        .await
        .expect(200, "OK");
    c.req("DELETE", "/v1/certs/test.example.com", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req("DELETE", "/v1/certs/test.example.com", Some(&alice), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("GET", "/v1/certs/test.example.com", Some(&alice), None)
        .await
        .expect(404, "NOT FOUND");
    assert_eq!(
        c.store
            .get("/deis/certs/test.example.com/cert")
            .await
            .expect("store"),
        None
    );
    c.req("PUT", "/v1/certs/www.example.com", Some(&alice), None)
        .await
        .expect(405, "METHOD NOT ALLOWED");
}
