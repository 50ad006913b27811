//! How many sessions a user has: signing in past the cap ends the oldest session (its cookie
//! opens nothing any more) while the newest, and other users' sessions, go on working.

use super::browser::{get, header, sign_in};
use crate::support::Controller;

on_both_databases!(signing_in_past_the_cap_ends_the_oldest_session);

/// What `deis_controller`'s dashboard keeps per user (`session::PER_USER`).
const PER_USER: usize = 20;

async fn signing_in_past_the_cap_ends_the_oldest_session(c: Controller) {
    let _admin = c.user("admin").await;
    let _alice = c.user("alice").await;
    let _bob = c.user("bob").await;
    let bob = sign_in(&c, "bob").await;

    let mut sessions = Vec::new();
    for _ in 0..PER_USER + 2 {
        sessions.push(sign_in(&c, "alice").await.cookie);
    }
    let (ended, kept) = sessions.split_at(2);
    for (n, cookie) in ended.iter().enumerate() {
        let page = get(&c, "/", Some(cookie)).await;
        assert_eq!(
            (page.status, header(&page, "location")),
            (303, "/signin"),
            "sign-in {n} of alice, older than her newest {PER_USER}, is over"
        );
    }
    for (n, cookie) in kept.iter().enumerate() {
        let page = get(&c, "/", Some(cookie)).await;
        assert_eq!(
            page.status, 200,
            "alice's newest sign-in {n} still works: {page:?}"
        );
        assert!(page.body.contains("alice"), "{page:?}");
    }
    let page = get(&c, "/", Some(&bob.cookie)).await;
    assert_eq!(page.status, 200, "bob's session is his own: {page:?}");
}
