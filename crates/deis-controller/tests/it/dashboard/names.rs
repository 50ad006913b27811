//! Names that are no names: an app, domain, key or user that is empty, `.` or `..` would turn
//! the REST request's path into the collection's or the parent's (`/v1/apps//config`,
//! `/v1/apps/../config`). They are refused with a 400 that says why, before any request; and a
//! form that names an action a page does not have is a 404 that says so.

use super::browser::{get, owner_of, post, sign_in};
use crate::support::Controller;

on_both_databases!(names_that_would_be_other_paths_are_refused);

async fn names_that_would_be_other_paths_are_refused(c: Controller) {
    let _admin = c.user("admin").await;
    let alice = owner_of(&c, "alice", "garden").await;
    let csrf = alice.csrf.as_str();
    let cookie = Some(alice.cookie.as_str());

    // An app named `..` in the URL: the page and its forms and live views.
    let page = get(&c, "/apps/%2E%2E", cookie).await;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("is not a valid app name"), "{page:?}");
    let form = post(
        &c,
        "/apps/%2E/config",
        cookie,
        &[("csrf", csrf), ("key", "A")],
    )
    .await;
    assert_eq!(form.status, 400, "{form:?}");
    assert!(form.body.contains("is not a valid app name"), "{form:?}");
    let live = get(&c, "/apps/%2E%2E/live/ps", cookie).await;
    assert_eq!(live.status, 400, "{live:?}");

    // An empty domain, a certificate named `..`: shown in the app page's section.
    let domain = post(
        &c,
        "/apps/garden/domain-remove",
        cookie,
        &[("csrf", csrf), ("domain", "")],
    )
    .await;
    assert_eq!(domain.status, 400, "{domain:?}");
    assert!(
        domain
            .body
            .contains("The domain name is empty; fill it in and try again"),
        "{domain:?}"
    );
    assert!(domain.body.contains("id=\"domains\""), "the app page");
    let cert = post(
        &c,
        "/apps/garden/cert-remove",
        cookie,
        &[("csrf", csrf), ("common_name", "..")],
    )
    .await;
    assert_eq!(cert.status, 400, "{cert:?}");
    assert!(cert.body.contains("is not a valid certificate name"));
    let unknown = post(&c, "/apps/garden/explode", cookie, &[("csrf", csrf)]).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("There is no such action"));

    // The keys page and the users page.
    let key = post(
        &c,
        "/keys",
        cookie,
        &[("csrf", csrf), ("action", "remove"), ("id", ".")],
    )
    .await;
    assert_eq!(key.status, 400, "{key:?}");
    assert!(key.body.contains("is not a valid key name"), "{key:?}");
    assert!(key.body.contains("Add a key"), "the keys page: {key:?}");
    let unknown = post(&c, "/keys", cookie, &[("csrf", csrf), ("action", "x")]).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("There is no such action"));
    let admin = sign_in(&c, "admin").await;
    let revoke = post(
        &c,
        "/admin",
        Some(&admin.cookie),
        &[
            ("csrf", &admin.csrf),
            ("action", "revoke"),
            ("username", ""),
        ],
    )
    .await;
    assert_eq!(revoke.status, 400, "{revoke:?}");
    assert!(revoke.body.contains("The user name is empty"), "{revoke:?}");
    assert!(
        revoke.body.contains("Make alice an administrator"),
        "the users page"
    );
}
