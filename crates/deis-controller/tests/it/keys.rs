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

    let platform = |d: &str| {
        format!(
            "The domain {d} is the platform's (example.com and the names under it belong to the controller and the apps); only an administrator may add it"
        )
    };
    for (domain, message) in [
        (
            "www.example.org",
            "The domain www.example.org is already in use by another app".to_owned(),
        ),
        (
            "WWW.Example.ORG",
            "The domain www.example.org is already in use by another app".to_owned(),
        ),
        ("deis.example.com", platform("deis.example.com")),
        ("go.EXAMPLE.com", platform("go.example.com")),
        ("example.com", platform("example.com")),
        ("a.b.example.com", platform("a.b.example.com")),
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
    let upper = c
        .req(
            "POST",
            "/v1/apps/go/domains",
            Some(&bob),
            Some(json!({"domain": "MYDOMAIN.NET"})),
        )
        .await;
    upper.expect(201, "CREATED");
    assert_eq!(
        upper.json()["domain"],
        "mydomain.net",
        "names are lower-cased"
    );
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
    // Nothing of the refusals reached the router's keys.
    assert_eq!(
        c.store
            .get("/deis/domains/deis.example.com")
            .await
            .expect("store"),
        None
    );
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

/// A self-signed certificate and key made by rcgen for `names` (the first is the subject's
/// common name, all are subject alternative names).
fn with_names(names: &[&str]) -> (String, String) {
    let owned: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(owned).expect("parameters");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].to_owned());
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

async fn certificates(c: Controller) {
    // alice registered first: the administrator, who may file any name.
    let alice = c.user("alice").await;
    let bob = c.user("bob").await;
    let carol = c.user("carol").await;
    c.app(&bob, "shop").await;
    c.app(&carol, "evil").await;
    for domain in ["shop.example.org", "a.example.org", "b.example.org"] {
        c.req(
            "POST",
            "/v1/apps/shop/domains",
            Some(&bob),
            Some(json!({"domain": domain})),
        )
        .await
        .expect(201, "CREATED");
    }
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
    // A common name the certificate does not cover.
    let elsewhere = c
        .req(
            "POST",
            "/v1/certs",
            Some(&alice),
            Some(json!({"certificate": cert, "key": key, "common_name": "www.example.com"})),
        )
        .await;
    elsewhere.expect(400, "BAD REQUEST");
    assert_eq!(
        elsewhere.json(),
        json!({"common_name": ["The certificate is not valid for www.example.com (it names test.example.com)"]})
    );

    // Another tenant's name: refused, and the owner files the real one afterwards.
    let (forged, forged_key) = with_names(&["shop.example.org"]);
    let refused = c
        .req(
            "POST",
            "/v1/certs",
            Some(&carol),
            Some(json!({"certificate": forged, "key": forged_key})),
        )
        .await;
    refused.expect(403, "FORBIDDEN");
    assert_eq!(
        refused.json()["detail"],
        "The certificate names shop.example.org, which is not a custom domain of an app of yours; add it first with deis domains:add shop.example.org"
    );
    assert_eq!(
        c.store
            .get("/deis/certs/shop.example.org/cert")
            .await
            .expect("store"),
        None
    );
    // A key that is not the certificate's.
    let (real, real_key) = with_names(&["shop.example.org"]);
    let mismatched = c
        .req(
            "POST",
            "/v1/certs",
            Some(&bob),
            Some(json!({"certificate": real, "key": forged_key})),
        )
        .await;
    mismatched.expect(400, "BAD REQUEST");
    assert_eq!(
        mismatched.json(),
        json!({"key": ["The key does not belong to the certificate"]})
    );
    c.req(
        "POST",
        "/v1/certs",
        Some(&bob),
        Some(json!({"certificate": real, "key": real_key})),
    )
    .await
    .expect(201, "CREATED");
    // Every name a certificate covers must be the caller's; a SAN certificate for two of
    // them is filed under the common name asked for.
    let (partly, partly_key) = with_names(&["a.example.org", "victim.example.net"]);
    c.req(
        "POST",
        "/v1/certs",
        Some(&bob),
        Some(json!({"certificate": partly, "key": partly_key})),
    )
    .await
    .expect(403, "FORBIDDEN");
    let (san, san_key) = with_names(&["a.example.org", "b.example.org"]);
    let filed = c
        .req(
            "POST",
            "/v1/certs",
            Some(&bob),
            Some(json!({"certificate": san, "key": san_key, "common_name": "B.example.org"})),
        )
        .await;
    filed.expect(201, "CREATED");
    assert_eq!(filed.json()["common_name"], "b.example.org");

    assert_eq!(
        c.req("GET", "/v1/certs", Some(&bob), None).await.json()["count"],
        2
    );
    assert_eq!(
        c.req("GET", "/v1/certs", Some(&carol), None).await.json()["count"],
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

    // When the domain goes to another tenant, the old holder's certificate gives way.
    c.req(
        "DELETE",
        "/v1/apps/shop/domains/shop.example.org",
        Some(&bob),
        None,
    )
    .await
    .expect(204, "NO CONTENT");
    c.req(
        "POST",
        "/v1/apps/evil/domains",
        Some(&carol),
        Some(json!({"domain": "shop.example.org"})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/certs",
        Some(&carol),
        Some(json!({"certificate": forged, "key": forged_key})),
    )
    .await
    .expect(201, "CREATED");
}
