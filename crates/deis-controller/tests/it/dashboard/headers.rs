//! What every dashboard answer carries so that a page cannot be framed, sent elsewhere or made
//! to run another site's code: its Content-Security-Policy, checked directive by directive on a
//! page, a refusal, the sign-in page and the stylesheet.

use super::browser::{get, header, owner_of};
use crate::support::Controller;

on_both_databases!(every_dashboard_answer_carries_its_content_security_policy);

async fn every_dashboard_answer_carries_its_content_security_policy(c: Controller) {
    let _admin = c.user("admin").await;
    let alice = owner_of(&c, "alice", "garden").await;
    let cookie = Some(alice.cookie.as_str());
    let answers = [
        ("/signin", get(&c, "/signin", None).await),
        ("/", get(&c, "/", cookie).await),
        ("/apps/garden", get(&c, "/apps/garden", cookie).await),
        ("/admin (refused)", get(&c, "/admin", cookie).await),
        (
            "/static/style.css",
            get(&c, "/static/style.css", None).await,
        ),
    ];
    for (what, r) in &answers {
        let policy: Vec<&str> = header(r, "content-security-policy")
            .split(';')
            .map(str::trim)
            .collect();
        for directive in [
            "default-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(
                policy.contains(&directive),
                "{what}: {directive} in {policy:?}"
            );
        }
        assert_eq!(header(r, "x-frame-options"), "DENY", "{what}");
    }
}
