//! The user's day in a browser: the dashboard at `http://deis.<domain>/`, in a headless
//! Chromium, on the README's platform. Register, sign in, create an app, deploy an image and
//! see it answer, set a config var, see processes and a new log line arrive live (while the
//! `deis` client changes the app in another terminal), a refused scale, a restart, a rollback,
//! a tag set and removed, a domain with its certificate added and removed, a collaborator who
//! then sees the app, sign out (the cookie opens nothing after); and a
//! second user who can neither see nor change the app. Screenshots of the main pages at desktop
//! and phone width go to `docs/dashboard/`.

use std::time::Duration;

use deis_testkit::eventually;
use fantoccini::Locator;

use super::serving_image;
use crate::browser::Browser;
use crate::setup::{Setup, SingleHost};
use crate::support::{API, app_name, certificate, docker_lines};

#[tokio::test(flavor = "multi_thread")]
async fn a_users_day_in_the_dashboard_in_chromium() {
    let platform = SingleHost::start().await;
    let browser = Browser::start().await;
    a_users_day(&platform, &browser).await;
    browser.close().await;
}

/// A token for `username` (password `pw`), as `deis login` gets it.
async fn token(setup: &impl Setup, username: &str) -> String {
    let login = format!(r#"{{"username": "{username}", "password": "pw"}}"#);
    let (status, body) = setup.api("POST", "/v1/auth/login/", None, &login).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["token"].as_str().expect("token").to_owned()
}

/// Signs in through the form.
async fn sign_in(b: &Browser, home: &str, username: &str) {
    let fields = [("#username", username), ("#password", "pw")];
    b.submit(
        &format!("{home}signin"),
        &fields,
        "form[action='/signin'] button",
    )
    .await;
    assert_eq!(b.path().await, "/", "{username}: {}", b.text("main").await);
}

async fn sign_out(b: &Browser, home: &str) {
    b.submit(home, &[], "form.signout button").await;
    assert_eq!(b.path().await, "/signin");
}

/// Marks the page, to tell later that it was not reloaded.
async fn mark(b: &Browser) {
    b.client
        .execute("window.__unreloaded = 'yes';", vec![])
        .await
        .expect("script runs");
}

async fn still_marked(b: &Browser) -> bool {
    b.client
        .execute("return window.__unreloaded || 'reloaded';", vec![])
        .await
        .expect("script runs")
        == "yes"
}

/// When each of the app's containers started (`id time` lines, sorted).
fn started(app: &str) -> Vec<String> {
    let ids = docker_lines(&["ps", "-q", "--filter", &format!("label=deis.app={app}")]);
    if ids.is_empty() {
        return ids;
    }
    let mut args = vec!["inspect", "-f", "{{.Id}} {{.State.StartedAt}}"];
    args.extend(ids.iter().map(String::as_str));
    let mut lines = docker_lines(&args);
    lines.sort();
    lines
}

async fn a_users_day(setup: &SingleHost, b: &Browser) {
    let port = setup.router().port();
    let home = format!("http://{API}:{port}/");
    // The platform's first user is its administrator; the day's users are not.
    setup.user("root").await;
    setup.user("bob").await;
    setup.user("mallory").await;

    // Signed out, the dashboard asks to sign in.
    b.phone(false).await;
    b.goto(&home).await;
    assert_eq!(b.path().await, "/signin");
    b.screenshot("signin-desktop").await;
    b.phone(true).await;
    b.screenshot("signin-phone").await;
    b.phone(false).await;

    // Register: signed in at once, on an empty apps list.
    let fields = [
        ("#username", "alice"),
        ("#email", "alice@example.com"),
        ("#password", "pw"),
    ];
    b.submit(
        &format!("{home}register"),
        &fields,
        "form[action='/register'] button",
    )
    .await;
    assert_eq!(b.path().await, "/", "{}", b.text("main").await);
    assert!(b.text("main").await.contains("No apps yet."));
    sign_out(b, &home).await;
    sign_in(b, &home, "alice").await;

    // Create an app: its page.
    let app = app_name("dash");
    b.submit(&home, &[("#app-name", &app)], "form:has(#app-name) button")
        .await;
    let page = format!("{home}apps/{app}");
    assert_eq!(b.path().await, format!("/apps/{app}"));
    assert_eq!(b.text("h1").await, app);

    // Deploy an image made here, and see it answer on its URL.
    let image = serving_image(&setup.base_image(), "dashboard");
    b.submit(&page, &[("#image", &image)], "form:has(#image) button")
        .await;
    assert_eq!(b.path().await, format!("/apps/{app}"));
    assert!(
        b.text("#releases").await.contains(&image),
        "the deploy's release"
    );
    assert_eq!(setup.get_app(&app).await, (200, "dashboard\n".to_owned()));
    let url = b
        .client
        .find(Locator::Css("#app-url"))
        .await
        .expect("the URL");
    let href = url.attr("href").await.expect("href").expect("an href");
    assert_eq!(href, format!("http://{app}.example.com/"));
    b.goto(&format!("http://{app}.example.com:{port}/")).await;
    assert_eq!(b.text("body").await, "dashboard");
    b.goto(&page).await;

    // A config var: a new release, shown; a refused one shows the API's message in its section.
    let set = [("#config-key", "GREETING"), ("#config-value", "hi")];
    b.submit(&page, &set, "form:has(#config-key) button").await;
    let config = b.text("#config").await;
    assert!(
        config.contains("GREETING") && config.contains("hi"),
        "{config}"
    );
    assert!(b.text("#releases").await.contains("alice added GREETING"));
    let bad = [("#config-key", "BAD KEY"), ("#config-value", "x")];
    b.submit(&page, &bad, "form:has(#config-key) button").await;
    let refused = b.text("#config .error").await;
    assert!(
        !refused.is_empty(),
        "the refusal is shown in the config section"
    );

    // While the page is open, the `deis` client scales to 3 and changes the config in another
    // terminal: three processes and the new log line appear without a reload.
    let alice = token(setup, "alice").await;
    b.goto(&page).await;
    mark(b).await;
    let scaled = setup
        .api(
            "POST",
            &format!("/v1/apps/{app}/scale/"),
            Some(&alice),
            r#"{"cmd": 3}"#,
        )
        .await;
    assert_eq!(scaled.0, 204, "{scaled:?}");
    eventually(
        Duration::from_secs(30),
        "three processes up on the page",
        || async {
            let up = b.count("#ps-list li.process[data-state='up']").await;
            if up == 3 {
                Ok(())
            } else {
                Err(format!("{up} up: {}", b.text("#ps-list").await))
            }
        },
    )
    .await;
    let changed = setup
        .api(
            "POST",
            &format!("/v1/apps/{app}/config/"),
            Some(&alice),
            r#"{"values": {"FOLLOWED": "live"}}"#,
        )
        .await;
    assert_eq!(changed.0, 201, "{changed:?}");
    b.until_text("#log", "the new log line on the page", |t| {
        t.contains("added FOLLOWED")
    })
    .await;
    assert!(still_marked(b).await, "the page was not reloaded");
    b.screenshot("app-desktop").await;
    b.phone(true).await;
    b.screenshot("app-phone").await;
    b.phone(false).await;

    // Scaling above the platform's limit is refused where the control is.
    let scale = "form:has(#scale-cmd) button";
    b.submit(&page, &[("#scale-cmd", "51")], scale).await;
    let refusal = b.text("#processes .error").await;
    assert!(
        refusal.contains("above the platform's maximum"),
        "{refusal}"
    );
    b.submit(&page, &[("#scale-cmd", "1")], scale).await;
    assert!(b.text("#processes").await.contains("cmd=1"));

    // Restart the processes: each starts anew and comes back up, and the app answers.
    let before = eventually(Duration::from_secs(30), "one container", || async {
        let now = started(&app);
        if now.len() == 1 {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    b.submit(&page, &[], "form[action$='/restart'] button")
        .await;
    assert_eq!(b.path().await, format!("/apps/{app}"));
    assert_eq!(
        b.count("#processes .error").await,
        0,
        "{}",
        b.text("#processes").await
    );
    eventually(
        Duration::from_secs(30),
        "the restarted process up again",
        || async {
            let now = started(&app);
            let up = b.count("#ps-list li.process[data-state='up']").await;
            if now.len() == 1 && now != before && up == 1 {
                Ok(())
            } else {
                Err(format!("{now:?} (before: {before:?}); {up} up"))
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the app answering again",
        || async {
            match setup.get_app(&app).await {
                (200, body) if body == "dashboard\n" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Roll back the last config change.
    let rollback = "#releases button";
    b.goto(&page).await;
    let label = b.text(rollback).await;
    b.submit(&page, &[], rollback).await;
    let top = b.text("#releases tbody tr").await;
    assert!(top.contains("rolled back to"), "{top} after {label}");
    assert!(!b.text("#config").await.contains("FOLLOWED"));

    // A tag, set and removed again.
    let tag = [
        ("#limit-kind", "tags"),
        ("#limit-key", "environ"),
        ("#limit-value", "prod"),
    ];
    b.submit(&page, &tag, "form:has(#limit-key) button").await;
    let limits = b.text("#limits").await;
    assert!(
        limits.contains("environ") && limits.contains("prod"),
        "{limits}"
    );
    assert!(b.text("#releases").await.contains("environ"));
    b.submit(&page, &[], "#limits button[aria-label='Remove environ']")
        .await;
    assert!(!b.text("#limits").await.contains("environ"));

    // A custom domain with its certificate, which is listed, then removed.
    let domain = format!("{app}.example.org");
    b.submit(&page, &[("#domain", &domain)], "form:has(#domain) button")
        .await;
    assert!(b.text("#domain-list").await.contains(&domain));
    let (cert, key) = certificate(&domain);
    let pem = [("#cert", cert.as_str()), ("#cert-key", key.as_str())];
    b.submit(&page, &pem, "form:has(#cert) button").await;
    assert_eq!(
        b.count("#domains .error").await,
        0,
        "{}",
        b.text("#domains").await
    );
    assert!(b.text("#cert-list").await.contains(&domain));
    b.submit(&page, &[], "#cert-list button").await;
    assert!(!b.text("#cert-list").await.contains(&domain));
    let bob = [("#collaborator", "bob")];
    b.submit(&page, &bob, "form:has(#collaborator) button")
        .await;
    assert!(b.text("#collaborator-list").await.contains("bob"));

    // The apps list.
    b.goto(&home).await;
    let row = b.text("#apps tbody").await;
    assert!(
        row.contains(&app) && row.contains("alice") && row.contains("cmd=1"),
        "{row}"
    );
    b.screenshot("apps-desktop").await;
    b.phone(true).await;
    b.screenshot("apps-phone").await;
    b.phone(false).await;

    // Signing out revokes the session: its cookie, sent again, opens nothing.
    let cookie = b
        .client
        .get_named_cookie("deis_session")
        .await
        .expect("the session cookie");
    sign_out(b, &home).await;
    b.client.add_cookie(cookie.clone()).await.expect("cookie");
    b.goto(&page).await;
    assert_eq!(b.path().await, "/signin");
    b.client
        .delete_all_cookies()
        .await
        .expect("cookies deleted");

    // The collaborator sees the app.
    sign_in(b, &home, "bob").await;
    assert!(b.text("#apps").await.contains(&app));
    b.goto(&page).await;
    assert_eq!(b.text("h1").await, app);
    sign_out(b, &home).await;

    // Another user neither sees nor changes it.
    sign_in(b, &home, "mallory").await;
    assert!(!b.text("main").await.contains(&app));
    b.goto(&page).await;
    assert_eq!(b.text("h1").await, "Forbidden");
    assert!(b.text("main").await.contains("You do not have permission"));
    assert!(!b.text("main").await.contains("GREETING"));
    // Nor with a form of their own made up in the page, carrying their valid CSRF token.
    let status = b
        .client
        .execute(
            "const csrf = document.querySelector('form.signout input[name=csrf]').value; \
             return fetch(arguments[0], {method: 'POST', redirect: 'manual', \
               body: new URLSearchParams({csrf, key: 'GREETING', value: 'pwned'})}) \
             .then(r => r.status);",
            vec![serde_json::json!(format!("/apps/{app}/config"))],
        )
        .await
        .expect("script runs");
    assert_eq!(status, 403);
    let (_, config) = setup
        .api("GET", &format!("/v1/apps/{app}/config/"), Some(&alice), "")
        .await;
    assert!(!config.contains("pwned"), "{config}");
    sign_out(b, &home).await;

    let (status, body) = setup
        .api("DELETE", &format!("/v1/apps/{app}/"), Some(&alice), "")
        .await;
    assert_eq!(status, 204, "{body}");
    docker_lines(&["rmi", "-f", &image]);
}
