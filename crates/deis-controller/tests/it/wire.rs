//! Wire details the Deis client depends on (§2): version headers on every response, upper-case
//! reason phrases, trailing-slash tolerance, error shapes for bad input.

use serde_json::json;

use crate::support::{Backend, Controller};

#[tokio::test]
async fn every_response_carries_the_version_headers() {
    let c = Controller::start(Backend::Sqlite).await;
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/v1/"),
        ("GET", "/v1/apps/x"),
        ("GET", "/nowhere"),
    ] {
        let r = c.req(method, path, None, None).await;
        assert_eq!(r.header("deis_api_version"), Some("1.7"), "{path}");
        assert_eq!(r.header("x_deis_api_version"), Some("1.7"), "{path}");
        assert_eq!(r.header("deis_platform_version"), Some("1.13.4"), "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
    }
    let health = c.req("GET", "/healthz", None, None).await;
    health.expect(200, "OK");
    assert_eq!(health.body, "OK");
    c.req("HEAD", "/healthz", None, None)
        .await
        .expect(200, "OK");
    let post = c.req("POST", "/healthz", None, None).await;
    post.expect(405, "METHOD NOT ALLOWED");
    assert_eq!(
        post.json(),
        json!({"detail": "Method \"POST\" not allowed."})
    );
}

#[tokio::test]
async fn paths_work_with_and_without_a_trailing_slash() {
    let c = Controller::start(Backend::Sqlite).await;
    let token = c.user("alice").await;
    for path in ["/v1/apps", "/v1/apps/"] {
        c.req("GET", path, Some(&token), None)
            .await
            .expect(200, "OK");
    }
    for path in ["/v1/auth/login", "/v1/auth/login/"] {
        c.req(
            "POST",
            path,
            None,
            Some(json!({"username": "alice", "password": "opensesame"})),
        )
        .await
        .expect(200, "OK");
    }
    c.app(&token, "go").await;
    for path in [
        "/v1/apps/go/config",
        "/v1/apps/go/builds",
        "/v1/apps/go/releases",
    ] {
        for method in ["PUT", "PATCH", "DELETE"] {
            c.req(method, path, Some(&token), None)
                .await
                .expect(405, "METHOD NOT ALLOWED");
        }
    }
    c.req("PATCH", "/v1/apps/go", Some(&token), None)
        .await
        .expect(405, "METHOD NOT ALLOWED");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_message() {
    let c = Controller::start(Backend::Sqlite).await;
    let token = c.user("alice").await;
    let headers = vec![format!("Authorization: token {token}")];
    let malformed = c
        .raw("POST", "/v1/apps", &headers, Some("{not json"))
        .await
        .expect("request");
    malformed.expect(400, "BAD REQUEST");
    assert!(
        malformed.json()["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("JSON parse error"))
    );
    let array = c
        .raw("POST", "/v1/apps", &headers, Some("[1, 2]"))
        .await
        .expect("request");
    array.expect(400, "BAD REQUEST");
    let huge = format!("{{\"id\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let too_big = c
        .raw("POST", "/v1/apps", &headers, Some(&huge))
        .await
        .expect("request");
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(too_big.json()["detail"].is_string());
    let wrong_type = c
        .req("POST", "/v1/apps", Some(&token), Some(json!({"id": 12})))
        .await;
    wrong_type.expect(400, "BAD REQUEST");
    let mismatch = c
        .raw(
            "GET",
            "/v1/apps",
            &[headers[0].clone(), "DEIS_VERSION: 2".into()],
            None,
        )
        .await
        .expect("request");
    mismatch.expect(405, "METHOD NOT ALLOWED");
    assert_eq!(
        mismatch.json(),
        json!({"error": "Client and server versions do not match. Client version: 2 Server version: 1"})
    );
    let matching = c
        .raw(
            "GET",
            "/v1/apps",
            &[headers[0].clone(), "DEIS_VERSION: 1".into()],
            None,
        )
        .await
        .expect("request");
    matching.expect(200, "OK");
    // curl -d labels its JSON as a form; it still works.
    let curl = c
        .raw(
            "POST",
            "/v1/apps",
            &[
                headers[0].clone(),
                "Content-Type: application/x-www-form-urlencoded".into(),
            ],
            Some("{\"id\": \"curled\"}"),
        )
        .await
        .expect("request");
    curl.expect(201, "CREATED");
    let unknown = c.req("GET", "/v1/nothing/here", Some(&token), None).await;
    unknown.expect(404, "NOT FOUND");
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let c = Controller::start(Backend::Sqlite).await;
    let doc = c.req("GET", "/v1/openapi.json", None, None).await;
    doc.expect(200, "OK");
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["info"]["version"], "1.7");
    let paths = doc["paths"].as_object().expect("paths");
    let operations: usize = paths
        .values()
        .filter_map(|p| p.as_object())
        .map(|p| p.len())
        .sum();
    assert!(operations >= 50, "{operations} operations");
    for (method, path) in [
        ("post", "/v1/auth/register"),
        ("post", "/v1/auth/login"),
        ("get", "/v1/apps/{app}/releases/{version}"),
        ("post", "/v1/apps/{app}/scale"),
        ("delete", "/v1/keys/{id}"),
        ("post", "/v1/hooks/build"),
    ] {
        let op = &paths[path][method];
        assert!(op["summary"].is_string(), "{method} {path}");
    }
    assert_eq!(
        paths["/v1/apps/{app}/domains/{domain}"]["delete"]["parameters"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(paths["/v1/apps"]["get"]["security"], json!([{"token": []}]));
}

#[tokio::test]
async fn nul_characters_are_a_400_on_postgresql_too() {
    let c = Controller::start(Backend::Postgres).await;
    let token = c.user("alice").await;
    let register = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "bob\u{0}", "password": "pw\u{0}", "email": "b@example.com"})),
        )
        .await;
    register.expect(400, "BAD REQUEST");
    assert!(register.body.contains("NUL"), "{}", register.body);
    let config = c
        .req(
            "POST",
            "/v1/apps/x/config",
            Some(&token),
            Some(json!({"values": {"KEY": "a\u{0}b"}})),
        )
        .await;
    config.expect(400, "BAD REQUEST");
    let path = c
        .req("GET", "/v1/admin/perms/bob%00", Some(&token), None)
        .await;
    path.expect(400, "BAD REQUEST");
    assert!(path.body.contains("%00"), "{}", path.body);
    // Nothing was stored, and the API still answers.
    c.req("GET", "/v1/users", Some(&token), None)
        .await
        .expect(200, "OK");
}

/// With the database out of reach (its host lost), a change is refused with a 503 that says so
/// and what to do, not a 500; the client can try again later.
#[tokio::test]
async fn a_lost_database_is_a_503_that_says_so() {
    let mut c = Controller::start(Backend::Postgres).await;
    let token = c.user("alice").await;
    c.app(&token, "before").await;
    c.lose_database();
    let refused = c
        .req(
            "POST",
            "/v1/apps",
            Some(&token),
            Some(json!({"id": "after"})),
        )
        .await;
    refused.expect(503, "SERVICE UNAVAILABLE");
    assert!(
        refused.body.contains("database cannot be reached") && refused.body.contains("try again"),
        "{}",
        refused.body
    );
}
