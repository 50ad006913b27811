//! The dashboard's flows: sign-in and registration (with the registration mode), the session
//! cookie and its end, the CSRF token on every form, actions that are the API's (its rules and
//! messages), and what a user may not see or change of another's app.

use super::browser::{FORM, encode, get, header, post, sign_in};
use crate::support::Controller;

on_both_databases!(the_dashboard_keeps_users_apart, keys_and_administrators);

async fn the_dashboard_keeps_users_apart(c: Controller) {
    let _admin = c.user("admin").await;

    // Without a session every page and action sends the browser to sign in; the API is as it was.
    for path in ["/", "/apps/any", "/keys", "/admin", "/apps/any/live/logs"] {
        let r = get(&c, path, None).await;
        assert_eq!(
            (r.status, header(&r, "location")),
            (303, "/signin"),
            "{path}"
        );
    }
    let r = post(
        &c,
        "/apps/any/config",
        None,
        &[("key", "A"), ("value", "1")],
    )
    .await;
    assert_eq!((r.status, header(&r, "location")), (303, "/signin"));
    assert_eq!(c.req("GET", "/v1/", None, None).await.status, 401);
    let signin = get(&c, "/signin", None).await;
    assert!(
        signin.body.contains("<label for=\"username\">"),
        "{signin:?}"
    );

    // Registering signs in with a cookie scripts cannot read and other sites cannot send.
    let r = post(
        &c,
        "/register",
        None,
        &[
            ("username", "alice"),
            ("password", "opensesame"),
            ("email", "a@example.com"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{r:?}");
    let set = header(&r, "set-cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    // The API's rules and messages: a taken name, a wrong password.
    let taken = post(
        &c,
        "/register",
        None,
        &[("username", "alice"), ("password", "x")],
    )
    .await;
    assert_eq!(taken.status, 400);
    assert!(
        taken.body.contains("This field must be unique."),
        "{taken:?}"
    );
    let wrong = post(
        &c,
        "/signin",
        None,
        &[("username", "alice"), ("password", "nope")],
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .body
            .contains("Unable to log in with provided credentials.")
    );
    assert!(header(&wrong, "set-cookie").is_empty());

    let alice = sign_in(&c, "alice").await;
    let created = post(
        &c,
        "/",
        Some(&alice.cookie),
        &[("csrf", &alice.csrf), ("id", "garden")],
    )
    .await;
    assert_eq!(
        (created.status, header(&created, "location")),
        (303, "/apps/garden")
    );
    let bad_name = post(
        &c,
        "/",
        Some(&alice.cookie),
        &[("csrf", &alice.csrf), ("id", "Bad_Name")],
    )
    .await;
    assert_eq!(bad_name.status, 400);
    assert!(bad_name.body.contains("role=\"alert\""), "{bad_name:?}");

    // A form without the session's token, or with another, changes nothing.
    let config = |csrf: &'static str| [("csrf", csrf), ("key", "COLOUR"), ("value", "green")];
    let no_token = post(
        &c,
        "/apps/garden/config",
        Some(&alice.cookie),
        &config("")[1..],
    )
    .await;
    assert_eq!(no_token.status, 403);
    let forged = post(
        &c,
        "/apps/garden/config",
        Some(&alice.cookie),
        &config("0123abcd"),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("security token"), "{forged:?}");
    let page = get(&c, "/apps/garden", Some(&alice.cookie)).await;
    assert!(!page.body.contains("COLOUR"));

    // With it, the change is the API's: a new release, shown on the page.
    let set = post(
        &c,
        "/apps/garden/config",
        Some(&alice.cookie),
        &[("csrf", &alice.csrf), ("key", "COLOUR"), ("value", "green")],
    )
    .await;
    assert_eq!(
        (set.status, header(&set, "location")),
        (303, "/apps/garden#config")
    );
    let page = get(&c, "/apps/garden", Some(&alice.cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("COLOUR") && page.body.contains("green"));
    assert!(page.body.contains("alice added COLOUR"), "{}", page.body);

    // Another user neither sees nor changes it.
    let bob_token = c.user("bob").await;
    let bob = sign_in(&c, "bob").await;
    let list = get(&c, "/", Some(&bob.cookie)).await;
    assert!(!list.body.contains("garden"), "{}", list.body);
    let peek = get(&c, "/apps/garden", Some(&bob.cookie)).await;
    assert_eq!(peek.status, 403);
    assert!(!peek.body.contains("green"));
    let live = get(&c, "/apps/garden/live/ps", Some(&bob.cookie)).await;
    assert_eq!(live.status, 403);
    let change = post(
        &c,
        "/apps/garden/config",
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("key", "COLOUR"), ("value", "red")],
    )
    .await;
    assert_eq!(change.status, 403, "{change:?}");
    let share = post(
        &c,
        "/apps/garden/perm-add",
        Some(&bob.cookie),
        &[("csrf", &bob.csrf), ("username", "bob")],
    )
    .await;
    assert_eq!(share.status, 403);
    // Alice's token and page are unchanged; her CSRF token is no use in Bob's session.
    let stolen = post(
        &c,
        "/apps/garden/config",
        Some(&bob.cookie),
        &[("csrf", &alice.csrf), ("key", "COLOUR"), ("value", "red")],
    )
    .await;
    assert_eq!(stolen.status, 403);
    let page = get(&c, "/apps/garden", Some(&alice.cookie)).await;
    assert!(page.body.contains("green") && !page.body.contains("red<"));

    // Shared with Bob, the app is on his list.
    let shared = post(
        &c,
        "/apps/garden/perm-add",
        Some(&alice.cookie),
        &[("csrf", &alice.csrf), ("username", "bob")],
    )
    .await;
    assert_eq!(shared.status, 303);
    assert!(
        get(&c, "/", Some(&bob.cookie))
            .await
            .body
            .contains("/apps/garden")
    );

    // Bob is no administrator: the users page is the API's refusal.
    assert_eq!(get(&c, "/admin", Some(&bob.cookie)).await.status, 403);

    // A form an app on a sibling name posts (same site, other origin) is refused, even with a
    // valid session and token: nothing changes.
    let forged = c
        .raw(
            "POST",
            "/apps/garden/config",
            &[
                FORM.to_owned(),
                format!("Cookie: deis_session={}", alice.cookie),
                "Origin: http://evil.example.com".to_owned(),
                "Sec-Fetch-Site: same-site".to_owned(),
            ],
            Some(&encode(&[
                ("csrf", &alice.csrf),
                ("key", "FORGED"),
                ("value", "1"),
            ])),
        )
        .await
        .expect("POST");
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged.body.contains("sent from another site"), "{forged:?}");
    assert!(
        !get(&c, "/apps/garden", Some(&alice.cookie))
            .await
            .body
            .contains("FORGED")
    );

    // Two session cookies (an app can set one for the whole domain): signed out, not whichever.
    let two = c
        .raw(
            "GET",
            "/",
            &[format!(
                "Cookie: deis_session={}; deis_session={}",
                bob.cookie, alice.cookie
            )],
            None,
        )
        .await
        .expect("GET");
    assert_eq!((two.status, header(&two, "location")), (303, "/signin"));

    // Bob changes his password with the client: his browser's session ends with the old one.
    c.req(
        "POST",
        "/v1/auth/passwd",
        Some(&bob_token),
        Some(serde_json::json!({"password": "opensesame", "new_password": "n3w"})),
    )
    .await
    .expect(200, "OK");
    let stale = get(&c, "/", Some(&bob.cookie)).await;
    assert_eq!((stale.status, header(&stale, "location")), (303, "/signin"));

    // Signing out ends the session: its cookie opens nothing any more.
    let out = post(
        &c,
        "/signout",
        Some(&alice.cookie),
        &[("csrf", &alice.csrf)],
    )
    .await;
    assert_eq!((out.status, header(&out, "location")), (303, "/signin"));
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    let after = get(&c, "/apps/garden", Some(&alice.cookie)).await;
    assert_eq!((after.status, header(&after, "location")), (303, "/signin"));

    // The registration mode is honoured.
    c.store
        .put("/deis/controller/registrationMode", "disabled", None)
        .await
        .expect("store");
    let closed = get(&c, "/register", None).await;
    assert!(
        closed.body.contains("Registration is disabled"),
        "{closed:?}"
    );
    let refused = post(
        &c,
        "/register",
        None,
        &[("username", "eve"), ("password", "x")],
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("Registration is disabled"));
}

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 alice@example.com";

async fn keys_and_administrators(c: Controller) {
    let _admin = c.user("admin").await;
    let _alice = c.user("alice").await;
    let alice = sign_in(&c, "alice").await;

    // A key named by its comment, as `deis keys:add` names it; a bad one is the API's refusal.
    let csrf = alice.csrf.as_str();
    let added = post(
        &c,
        "/keys",
        Some(&alice.cookie),
        &[("csrf", csrf), ("action", "add"), ("public", KEY)],
    )
    .await;
    assert_eq!(
        (added.status, header(&added, "location")),
        (303, "/keys"),
        "{added:?}"
    );
    let keys = get(&c, "/keys", Some(&alice.cookie)).await;
    assert!(keys.body.contains("alice@example.com"), "{}", keys.body);
    let bad = post(
        &c,
        "/keys",
        Some(&alice.cookie),
        &[
            ("csrf", csrf),
            ("action", "add"),
            ("id", "x"),
            ("public", "ssh-rsa AAAAB3NzaC1 x"),
        ],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Incorrect padding"), "{}", bad.body);
    let removed = post(
        &c,
        "/keys",
        Some(&alice.cookie),
        &[
            ("csrf", csrf),
            ("action", "remove"),
            ("id", "alice@example.com"),
        ],
    )
    .await;
    assert_eq!(removed.status, 303);
    assert!(
        get(&c, "/keys", Some(&alice.cookie))
            .await
            .body
            .contains("No keys yet")
    );

    // Users and administrators: the administrator's page only; a grant makes another.
    assert_eq!(get(&c, "/admin", Some(&alice.cookie)).await.status, 403);
    let refused = post(
        &c,
        "/admin",
        Some(&alice.cookie),
        &[("csrf", csrf), ("action", "grant"), ("username", "alice")],
    )
    .await;
    assert_eq!(refused.status, 403);
    let admin = sign_in(&c, "admin").await;
    let users = get(&c, "/admin", Some(&admin.cookie)).await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("alice") && users.body.contains("Make alice an administrator"));
    let granted = post(
        &c,
        "/admin",
        Some(&admin.cookie),
        &[
            ("csrf", &admin.csrf),
            ("action", "grant"),
            ("username", "alice"),
        ],
    )
    .await;
    assert_eq!(
        (granted.status, header(&granted, "location")),
        (303, "/admin")
    );
    let now = get(&c, "/admin", Some(&alice.cookie)).await;
    assert_eq!(now.status, 200);
    assert!(now.body.contains("Revoke alice"), "{}", now.body);
}
