//! The end-to-end suite: the platform as a user meets it. `setup/` starts a platform, whichever
//! way (the `Setup` trait and its two set-ups); `flows/` holds the user flows, one module each,
//! and the tests that run them; `support.rs` holds the user's tools (keys, git, HTTP, the `deis`
//! client), and `browser.rs` a headless Chromium for the dashboard.

mod browser;
mod flows;
mod setup;
mod support;
