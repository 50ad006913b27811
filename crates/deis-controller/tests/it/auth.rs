//! Accounts: register, login, tokens, passwords, cancel, users and admins (§4.3, §4.4).

use serde_json::json;

use crate::support::Controller;

on_both_databases!(
    accounts_flow,
    token_rotation,
    passwords,
    cancel_and_admins,
    one_first_administrator,
    failed_logins_are_held_back
);

async fn accounts_flow(c: Controller) {
    let probe = c.req("GET", "/v1/", None, None).await;
    probe.expect(401, "UNAUTHORIZED");
    assert_eq!(
        probe.json(),
        json!({"detail": "Authentication credentials were not provided."})
    );
    assert_eq!(probe.header("www-authenticate"), Some("Token"));

    let first = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "alice", "password": "s3cret", "email": "a@example.com"})),
        )
        .await;
    first.expect(201, "CREATED");
    let body = first.json();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["is_superuser"], true, "the first user is admin");
    assert_eq!(body["is_staff"], true);
    assert!(body.get("password").is_none(), "the password is write-only");
    assert!(
        body["date_joined"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    );

    let second = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "bob", "password": "pw", "is_superuser": true})),
        )
        .await;
    second.expect(201, "CREATED");
    assert_eq!(
        second.json()["is_superuser"],
        false,
        "a client cannot make itself admin"
    );

    let dup = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "bob", "password": "x"})),
        )
        .await;
    dup.expect(400, "BAD REQUEST");
    assert_eq!(
        dup.json(),
        json!({"username": ["This field must be unique."]})
    );
    let missing = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "carol"})),
        )
        .await;
    missing.expect(400, "BAD REQUEST");
    assert_eq!(
        missing.json(),
        json!({"password": ["This field is required."]})
    );
    let bad_name = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": "a b", "password": "x"})),
        )
        .await;
    bad_name.expect(400, "BAD REQUEST");
    let wrong_type = c
        .req(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"username": 5, "password": "x"})),
        )
        .await;
    wrong_type.expect(400, "BAD REQUEST");

    let bad = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "alice", "password": "nope"})),
        )
        .await;
    bad.expect(400, "BAD REQUEST");
    assert_eq!(
        bad.json(),
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
    let unknown = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "nobody", "password": "nope"})),
        )
        .await;
    unknown.expect(400, "BAD REQUEST");

    let login = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "alice", "password": "s3cret"})),
        )
        .await;
    login.expect(200, "OK");
    let token = login.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 40);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let again = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "alice", "password": "s3cret"})),
        )
        .await;
    assert_eq!(
        again.json()["token"],
        token.as_str(),
        "login does not rotate the token"
    );

    // A form-encoded login works too.
    let form = c
        .raw(
            "POST",
            "/v1/auth/login/",
            &["Content-Type: application/x-www-form-urlencoded".to_owned()],
            Some("username=alice&password=s3cret"),
        )
        .await
        .expect("form login");
    assert_eq!(form.status, 200, "{}", form.body);

    let root = c.req("GET", "/v1/", Some(&token), None).await;
    root.expect(200, "OK");
    assert_eq!(root.json(), json!({}));
    let forged = c
        .req(
            "GET",
            "/v1/",
            Some("0000000000000000000000000000000000000000"),
            None,
        )
        .await;
    forged.expect(401, "UNAUTHORIZED");

    // Registering while logged in as admin still works; the list shows everyone to admins only.
    let users = c.req("GET", "/v1/users", Some(&token), None).await;
    users.expect(200, "OK");
    assert_eq!(users.json()["count"], 2);
    let bob = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "bob", "password": "pw"})),
        )
        .await;
    let bob = bob.json()["token"].as_str().expect("token").to_owned();
    let denied = c.req("GET", "/v1/users/", Some(&bob), None).await;
    denied.expect(403, "FORBIDDEN");
    assert_eq!(
        denied.json(),
        json!({"detail": "You do not have permission to perform this action."})
    );
}

async fn token_rotation(c: Controller) {
    let admin = c.user("admin").await;
    let bob = c.user("bob").await;
    let rotated = c
        .req("POST", "/v1/auth/tokens/", Some(&bob), Some(json!({})))
        .await;
    rotated.expect(200, "OK");
    let new_bob = rotated.json()["token"].as_str().expect("token").to_owned();
    assert_ne!(new_bob, bob);
    c.req("GET", "/v1/", Some(&bob), None)
        .await
        .expect(401, "UNAUTHORIZED");
    c.req("GET", "/v1/", Some(&new_bob), None)
        .await
        .expect(200, "OK");

    c.req(
        "POST",
        "/v1/auth/tokens/",
        Some(&new_bob),
        Some(json!({"username": "admin"})),
    )
    .await
    .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/auth/tokens",
        Some(&new_bob),
        Some(json!({"all": true})),
    )
    .await
    .expect(403, "FORBIDDEN");
    let for_bob = c
        .req(
            "POST",
            "/v1/auth/tokens/",
            Some(&admin),
            Some(json!({"username": "bob"})),
        )
        .await;
    for_bob.expect(200, "OK");
    let newest = for_bob.json()["token"].as_str().expect("token").to_owned();
    c.req("GET", "/v1/", Some(&new_bob), None)
        .await
        .expect(401, "UNAUTHORIZED");
    c.req("GET", "/v1/", Some(&newest), None)
        .await
        .expect(200, "OK");
    c.req(
        "POST",
        "/v1/auth/tokens/",
        Some(&admin),
        Some(json!({"username": "ghost"})),
    )
    .await
    .expect(404, "NOT FOUND");

    let all = c
        .req(
            "POST",
            "/v1/auth/tokens/",
            Some(&admin),
            Some(json!({"all": true})),
        )
        .await;
    all.expect(200, "OK");
    assert_eq!(all.json(), json!(""));
    c.req("GET", "/v1/", Some(&admin), None)
        .await
        .expect(401, "UNAUTHORIZED");
    c.req("GET", "/v1/", Some(&newest), None)
        .await
        .expect(401, "UNAUTHORIZED");
}

async fn passwords(c: Controller) {
    let admin = c.user("admin").await;
    let bob = c.user("bob").await;
    let wrong = c
        .req(
            "POST",
            "/v1/auth/passwd",
            Some(&bob),
            Some(json!({"password": "bad", "new_password": "n3w"})),
        )
        .await;
    wrong.expect(400, "BAD REQUEST");
    assert_eq!(
        wrong.json(),
        json!({"detail": "Current password does not match"})
    );
    c.req(
        "POST",
        "/v1/auth/passwd",
        Some(&bob),
        Some(json!({"password": "opensesame"})),
    )
    .await
    .expect(400, "BAD REQUEST");
    let ok = c
        .req(
            "POST",
            "/v1/auth/passwd",
            Some(&bob),
            Some(json!({"password": "opensesame", "new_password": "n3w"})),
        )
        .await;
    ok.expect(200, "OK");
    assert_eq!(ok.json(), json!({"status": "password set"}));
    c.req(
        "POST",
        "/v1/auth/login/",
        None,
        Some(json!({"username": "bob", "password": "n3w"})),
    )
    .await
    .expect(200, "OK");
    // An admin resets someone else's password without knowing it; a user cannot.
    c.req(
        "POST",
        "/v1/auth/passwd",
        Some(&admin),
        Some(json!({"username": "bob", "new_password": "reset"})),
    )
    .await
    .expect(200, "OK");
    c.req(
        "POST",
        "/v1/auth/login/",
        None,
        Some(json!({"username": "bob", "password": "reset"})),
    )
    .await
    .expect(200, "OK");
    c.req(
        "POST",
        "/v1/auth/passwd",
        Some(&bob),
        Some(json!({"username": "admin", "new_password": "x"})),
    )
    .await
    .expect(403, "FORBIDDEN");
}

async fn cancel_and_admins(c: Controller) {
    let admin = c.user("admin").await;
    let bob = c.user("bob").await;
    c.app(&bob, "bobs-app").await;
    let busy = c.req("DELETE", "/v1/auth/cancel", Some(&bob), None).await;
    busy.expect(409, "CONFLICT");
    assert_eq!(
        busy.json(),
        json!({"detail": "bob still has applications assigned. Delete or transfer ownership"})
    );
    c.req("DELETE", "/v1/apps/bobs-app", Some(&bob), None)
        .await
        .expect(204, "NO CONTENT");
    c.req(
        "DELETE",
        "/v1/auth/cancel",
        Some(&bob),
        Some(json!({"username": "admin"})),
    )
    .await
    .expect(403, "FORBIDDEN");

    // Admin grants and revokes admin rights.
    c.req("GET", "/v1/admin/perms", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/admin/perms",
        Some(&admin),
        Some(json!({"username": "bob"})),
    )
    .await
    .expect(201, "CREATED");
    let admins = c.req("GET", "/v1/admin/perms", Some(&bob), None).await;
    admins.expect(200, "OK");
    let names: Vec<String> = admins.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    c.req("DELETE", "/v1/admin/perms/bob", Some(&admin), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("GET", "/v1/admin/perms", Some(&bob), None)
        .await
        .expect(403, "FORBIDDEN");
    c.req(
        "POST",
        "/v1/admin/perms",
        Some(&admin),
        Some(json!({"username": "ghost"})),
    )
    .await
    .expect(404, "NOT FOUND");

    c.req(
        "DELETE",
        "/v1/auth/cancel",
        Some(&admin),
        Some(json!({"username": "bob"})),
    )
    .await
    .expect(204, "NO CONTENT");
    c.req("GET", "/v1/", Some(&bob), None)
        .await
        .expect(401, "UNAUTHORIZED");
    c.req(
        "POST",
        "/v1/auth/login/",
        None,
        Some(json!({"username": "bob", "password": "opensesame"})),
    )
    .await
    .expect(400, "BAD REQUEST");
    c.req(
        "DELETE",
        "/v1/auth/cancel",
        Some(&admin),
        Some(json!({"username": "ghost"})),
    )
    .await
    .expect(404, "NOT FOUND");
    // The last administrator can neither leave nor give up the role; with a second one, both
    // can.
    let last = json!({"detail": "admin is the last administrator; make another user an administrator first (deis perms:create <user> --admin)"});
    let refused = c.req("DELETE", "/v1/auth/cancel", Some(&admin), None).await;
    refused.expect(409, "CONFLICT");
    assert_eq!(refused.json(), last);
    let refused = c
        .req("DELETE", "/v1/admin/perms/admin", Some(&admin), None)
        .await;
    refused.expect(409, "CONFLICT");
    assert_eq!(refused.json(), last);
    c.req("GET", "/v1/admin/perms", Some(&admin), None)
        .await
        .expect(200, "OK");
    let carol = c.user("carol").await;
    c.req(
        "POST",
        "/v1/admin/perms",
        Some(&admin),
        Some(json!({"username": "carol"})),
    )
    .await
    .expect(201, "CREATED");
    c.req("DELETE", "/v1/auth/cancel", Some(&admin), None)
        .await
        .expect(204, "NO CONTENT");
    c.req("DELETE", "/v1/admin/perms/carol", Some(&carol), None)
        .await
        .expect(409, "CONFLICT");
}

/// Simultaneous first registrations make exactly one administrator.
async fn one_first_administrator(c: Controller) {
    let registrations = (0..12).map(|i| {
        let c = &c;
        async move {
            let body = json!({"username": format!("racer{i}"), "password": "pw", "email": ""});
            c.req("POST", "/v1/auth/register", None, Some(body)).await
        }
    });
    let replies = futures_util::future::join_all(registrations).await;
    let admins = replies
        .iter()
        .inspect(|r| assert_eq!(r.status, 201, "{}", r.body))
        .filter(|r| r.json()["is_superuser"] == json!(true))
        .count();
    assert_eq!(admins, 1);
}

/// Repeated failed logins for one user get 429 with Retry-After; other users log in.
async fn failed_logins_are_held_back(c: Controller) {
    c.user("target").await;
    c.user("bystander").await;
    let attempt = |user: &str, password: &str| json!({"username": user, "password": password});
    for _ in 0..5 {
        c.req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(attempt("target", "guess")),
        )
        .await
        .expect(400, "BAD REQUEST");
    }
    let held = c
        .req(
            "POST",
            "/v1/auth/login/",
            None,
            Some(attempt("target", "opensesame")),
        )
        .await;
    held.expect(429, "TOO MANY REQUESTS");
    let wait: u64 = held
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        held.json()["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Too many failed logins for target")),
        "{}",
        held.body
    );
    c.req(
        "POST",
        "/v1/auth/login/",
        None,
        Some(attempt("bystander", "opensesame")),
    )
    .await
    .expect(200, "OK");
}
