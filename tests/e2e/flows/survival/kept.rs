//! What users must find again after every fault: their account (they can still log in), the
//! apps, each app's releases and config, and the log lines the platform had acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use deis_testkit::eventually;

use crate::flows::Day;
use crate::setup::Setup;
use crate::support::Ran;

/// The user-visible state at one moment.
pub(crate) struct Kept {
    apps: BTreeSet<String>,
    releases: BTreeSet<String>,
    config: BTreeSet<String>,
    log_lines: BTreeSet<String>,
}

/// The non-empty lines of a listing.
fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The lines of `deis releases` that name a release (`v3 ... deployed ...`).
fn releases(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('v'))
        .map(str::to_owned)
        .collect()
}

/// The app's own lines of `deis logs` (a container's `started <id>`), without the time stamp.
fn log_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.find("started ").map(|at| l[at..].trim().to_owned()))
        .collect()
}

/// `deis <args>` as the owner, following the controller if it moved
/// ([`crate::support::Deis::run_following`]).
pub(crate) async fn run(day: &Day<'_, impl Setup>, args: &[&str]) -> Ran {
    day.owner.run_following(day.setup, &day.work, args).await
}

/// [`run`], expecting success: what it printed.
pub(crate) async fn ok(day: &Day<'_, impl Setup>, args: &[&str]) -> String {
    let ran = run(day, args).await;
    assert!(ran.ok, "deis {args:?} failed: {}", ran.out);
    ran.out
}

/// `deis <args>` as the owner, asked again for a while if the API is away (a controller
/// starting again after the previous fault): what it printed, and whether it had to ask again.
async fn patiently(day: &Day<'_, impl Setup>, args: &[&str]) -> (String, bool) {
    let mut again = false;
    eventually(Duration::from_secs(60), "the API answering", || {
        let was_again = again;
        again = true;
        async move {
            let ran = run(day, args).await;
            if ran.ok {
                Ok((ran.out, was_again))
            } else {
                Err(ran.out)
            }
        }
    })
    .await
}

impl Kept {
    /// What the day's owner sees now; `away` is told if the API was away for a moment.
    pub(crate) async fn take(day: &Day<'_, impl Setup>, away: impl Fn()) -> Kept {
        let mut outs = Vec::new();
        for args in [
            &["apps"][..],
            &["releases"],
            &["config"],
            &["logs", "-n", "1000"],
        ] {
            let (out, again) = patiently(day, args).await;
            if again {
                away();
            }
            outs.push(out);
        }
        Kept {
            apps: lines(&outs[0]),
            releases: releases(&outs[1]),
            config: lines(&outs[2]),
            log_lines: log_lines(&outs[3]),
        }
    }

    /// Waits until the API answers again, then checks that nothing of `self` is lost: every
    /// app, config value, release and log line is still there (new ones may have been added).
    pub(crate) async fn still_there(&self, day: &Day<'_, impl Setup>, after: &str) {
        let now = eventually(
            Duration::from_secs(90),
            "the API answering the owner",
            || async {
                let ran = run(day, &["releases"]).await;
                if ran.ok { Ok(ran.out) } else { Err(ran.out) }
            },
        )
        .await;
        let now = releases(&now);
        let lost: Vec<&String> = self.releases.difference(&now).collect();
        assert!(lost.is_empty(), "after {after}, releases lost: {lost:?}");
        let apps = lines(&ok(day, &["apps"]).await);
        let lost: Vec<&String> = self.apps.difference(&apps).collect();
        assert!(lost.is_empty(), "after {after}, apps lost: {lost:?}");
        let config = lines(&ok(day, &["config"]).await);
        let lost: Vec<&String> = self.config.difference(&config).collect();
        assert!(lost.is_empty(), "after {after}, config lost: {lost:?}");
        // Lines acknowledged before the fault may reach the logger's store a little later
        // (shippers retry); none may be missing for good.
        eventually(Duration::from_secs(60), "the log lines kept", || async {
            let ran = run(day, &["logs", "-n", "1000"]).await;
            if !ran.ok {
                return Err(format!("after {after}, deis logs: {}", ran.out));
            }
            let logs = log_lines(&ran.out);
            let lost: Vec<&String> = self.log_lines.difference(&logs).collect();
            if lost.is_empty() {
                Ok(())
            } else {
                Err(format!("after {after}, log lines lost: {lost:?}"))
            }
        })
        .await;
    }
}
