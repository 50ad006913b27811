//! Under load: a steady client requests the app while it is redeployed, scaled up and down,
//! reconfigured and rolled back, and not one request fails. Both set-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{dockerfile, use_builder};
use crate::setup::{Containers, Setup, SingleHost};
use crate::support::{Deis, app_name, commit, figure, http, work_tree};

/// Requests sent and failed by [`Steady`], and the failures' answers.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) last_failure: std::sync::Mutex<String>,
}

/// A client requesting the app in a loop on `workers` connections at a time, one request per
/// connection (so each one is routed afresh), until stopped.
pub(crate) struct Steady {
    pub(crate) tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Steady {
    pub(crate) fn start(router: std::net::SocketAddr, app: &str, workers: usize) -> Steady {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let host = format!("{app}.example.com");
        let tasks = (0..workers)
            .map(|_| {
                let (tally, stop, host) = (tally.clone(), stop.clone(), host.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let (status, body) = http(router, "GET", &host, "/", None, "").await;
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        if status != 200 {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut last) = tally.last_failure.lock() {
                                *last = format!("{status} {body}");
                            }
                        }
                    }
                })
            })
            .collect();
        Steady { tally, stop, tasks }
    }

    /// `(sent, failed)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.tally.sent.load(Ordering::Relaxed),
            self.tally.failed.load(Ordering::Relaxed),
        )
    }

    pub(crate) async fn stop(self) -> (u64, u64, String) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let last = self
            .tally
            .last_failure
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let (sent, failed) = (
            self.tally.sent.load(Ordering::Relaxed),
            self.tally.failed.load(Ordering::Relaxed),
        );
        (sent, failed, last)
    }
}

/// An app pushed and scaled to two containers, answering: the owner's client and work tree.
pub(crate) async fn deployed_app(setup: &impl Setup, app: &str) -> (Deis, std::path::PathBuf) {
    let owner = Deis::register(setup, "owner").await;
    let work = work_tree(
        &setup.dir().join(app),
        &[("Dockerfile", &dockerfile(&setup.base_image()))],
    );
    owner.ok(&work, &["create", app]).await;
    use_builder(setup, &work, app);
    let pushed = owner.push(&work).await;
    assert!(pushed.ok, "{}", pushed.out);
    owner.ok(&work, &["scale", "cmd=2"]).await;
    deis_testkit::eventually(Duration::from_secs(60), "the app answers", || async {
        match setup.get_app(app).await {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    (owner, work)
}

async fn changes_under_load(setup: &impl Setup, name: &str) {
    let app = &app_name("steady");
    let (owner, work) = deployed_app(setup, app).await;
    let client = Steady::start(setup.router(), app, 4);
    let timed = |what: &'static str, started: Instant| {
        figure(format_args!(
            "{name}: {what} took {} ms",
            started.elapsed().as_millis()
        ));
    };

    let started = Instant::now();
    commit(&work, &[("README", "redeploy\n")], "redeploy");
    let pushed = owner.push(&work).await;
    assert!(pushed.ok, "{}", pushed.out);
    timed("git push (redeploy of 2 containers)", started);
    for (what, args) in [
        ("scale up to 4", vec!["scale", "cmd=4"]),
        ("scale down to 1", vec!["scale", "cmd=1"]),
        ("config:set", vec!["config:set", "GREETING=load"]),
        ("scale up to 3", vec!["scale", "cmd=3"]),
        ("rollback", vec!["rollback"]),
    ] {
        let started = Instant::now();
        owner.ok(&work, &args).await;
        timed(what, started);
    }
    // Keep requesting a little after the last change, while the old release drains.
    let (sent_before, _) = client.counts();
    deis_testkit::eventually(
        Duration::from_secs(30),
        "more requests after the changes",
        || async {
            let (sent, _) = client.counts();
            if sent > sent_before + 200 {
                Ok(())
            } else {
                Err(format!("{sent}"))
            }
        },
    )
    .await;
    let (sent, failed, last) = client.stop().await;
    figure(format_args!(
        "{name}: {sent} requests during the changes, {failed} failed"
    ));
    assert!(sent > 500, "the client kept requesting: {sent}");
    assert_eq!(failed, 0, "no request fails (last failure: {last})");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_fails_while_the_app_changes_on_the_single_host_platform() {
    let host = SingleHost::start().await;
    changes_under_load(&host, "single host").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_fails_while_the_app_changes_on_the_platform_deisctl_runs() {
    let containers = Containers::start();
    changes_under_load(&containers, "deisctl").await;
}
