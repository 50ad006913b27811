//! Where a sign-in comes from: the dashboard passes on the address the platform's router saw,
//! the last entry of `X-Forwarded-For` (over every line of the header), so failed sign-ins are
//! counted against the real client, whatever the client wrote in front of it.

use super::browser::{FORM, encode};
use crate::support::{Controller, Resp};

on_both_databases!(failed_sign_ins_count_against_the_address_the_router_saw);

/// Failed logins the API allows one address within its window (`login_limit::PER_ADDRESS`).
const PER_ADDRESS: usize = 20;

/// A failed sign-in of `username` with these `X-Forwarded-For` lines.
async fn sign_in_from(c: &Controller, username: &str, forwarded: &[&str]) -> Resp {
    let mut headers = vec![FORM.to_owned()];
    headers.extend(forwarded.iter().map(|f| format!("X-Forwarded-For: {f}")));
    let form = encode(&[("username", username), ("password", "wrong")]);
    c.raw("POST", "/signin", &headers, Some(&form))
        .await
        .expect("POST /signin")
}

async fn failed_sign_ins_count_against_the_address_the_router_saw(c: Controller) {
    // A client that writes a new address of its own each time, in front of the router's entry
    // (as a line of its own, or in the same line).
    for n in 0..PER_ADDRESS {
        let own = format!("203.0.113.{n}");
        let lines = if n % 2 == 0 {
            vec![own.clone(), "192.0.2.7".to_owned()]
        } else {
            vec![format!("{own}, 192.0.2.7")]
        };
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let r = sign_in_from(&c, &format!("guess{n}"), &lines).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(
            r.body
                .contains("Unable to log in with provided credentials.")
        );
    }
    let refused = sign_in_from(&c, "guess-more", &["203.0.113.99", "192.0.2.7"]).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        refused.body.contains("from 192.0.2.7"),
        "the router's address is held back: {refused:?}"
    );

    // Another client, whatever it writes first, is not held back for that one's failures.
    let other = sign_in_from(&c, "someone", &["192.0.2.7, 192.0.2.8"]).await;
    assert_eq!(other.status, 400, "{other:?}");
}
