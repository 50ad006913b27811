//! The user flows, one module each, every one written against [`Setup`] so that any set-up can
//! run it. Starting a platform is the slow part, so the flows that can share one run in order on
//! it, and each test below starts one platform:
//!
//! | Test | Set-up | Flows |
//! |---|---|---|
//! | `day::a_users_day_on_the_single_host_platform` | [`SingleHost`] | the day, then `buildpack`'s custom buildpack from the operator's folder |
//! | `day::a_users_day_on_the_platform_deisctl_runs` | [`Containers`] | the day |
//! | `logs::controller_events_...` | [`SingleHost`] | the controller's events from the first app on, a follower of a container |
//! | `push::with_a_registry_...` | [`SingleHost`], a registry and a 64 KiB push limit | pushes to two apps at once, one too large |
//! | `push::pushes_to_one_app_wait_...` | [`SingleHost`], a 15 s build timeout | pushes in turn, a clone, a slow build |
//! | `restart::...` | [`SingleHost`], stopped and started again | the README command, what a restart keeps and sweeps |
//! | `one_process::...` | [`SingleHost`] on etcd | every component on the one store, leases revoked at the stop |
//! | `load::...` | both | no request fails while the app changes |
//! | `faults::...` | both | components, the platform mid-deploy and app containers killed |
//! | `deisctl::...` | [`Containers`] | deisctl's own commands |
//! | `cluster::...` | [`ClusterPlatform`] (3 simulated hosts, deisctl through an SSH tunnel) | install and start across the hosts, a day's apps flow, the app on several hosts and every router, logs from every host, stop/start keeping data, uninstall leaving nothing |
//! | `survival::...` | [`ClusterPlatform`] (3 managers and a spare host) | under a steady client: Redis lost, the builder killed mid-push, the leader killed mid-deploy, etcd's majority lost, a host lost, its etcd member replaced; nothing of the users' lost |
//! | `dashboard::...` | [`SingleHost`] and a headless Chromium | the user's day in the web dashboard, a collaborator and another user; screenshots to `docs/dashboard/` |
//! | `units::...` | none | the unit files |
//! | `systemd::...` | a host of its own whose systemd runs the unit files | deisctl's systemd backend |
//!
//! The day (`day.rs`): an app's output in the logs, the README's example app (`quickstart`), a
//! deploy through the API (`deploy`), `git push` of a Dockerfile app and its refusals (`push`),
//! apps, `deis logs`, domains and certificates, a tenant's attacks, pull and run (`images`), on a
//! platform with a registry an image pulled back through the proxy (`registry`), Deis
//! users' habits and last log lines (`parity`), perms, limits, a buildpack from the network,
//! destroy. App names carry a unique suffix: container names are per Docker engine, shared by
//! concurrent tests.
//!
//! [`Setup`]: crate::setup::Setup
//! [`SingleHost`]: crate::setup::SingleHost
//! [`Containers`]: crate::setup::Containers
//! [`ClusterPlatform`]: crate::setup::ClusterPlatform

mod apps;
mod attacks;
mod buildpack;
mod cluster;
mod dashboard;
mod day;
mod deisctl;
mod deploy;
mod destroy;
mod domains;
mod faults;
mod images;
mod limits;
mod load;
mod logs;
mod one_process;
mod parity;
mod perms;
mod push;
mod quickstart;
mod registry;
mod restart;
mod survival;
mod systemd;
mod units;

use std::path::{Path, PathBuf};
use std::time::Duration;

use deis_testkit::eventually;

use crate::setup::Setup;
use crate::support::{Deis, docker_lines};
pub(crate) use crate::support::{serve, serving_dockerfile};

/// The Dockerfile app of the day: says its greeting and container host name, and prints a line
/// when it starts.
pub(crate) fn dockerfile(image: &str) -> String {
    format!(
        "FROM {image}\nCMD echo \"started $HOSTNAME\" && {}\n",
        serve("\"${GREETING:-hello} $HOSTNAME\"")
    )
}

/// A new image (removed by the caller): `base` with a command that serves `text` on `$PORT`.
pub(crate) fn serving_image(base: &str, text: &str) -> String {
    let image = format!("e2e-{text}-{}:v1", deis_testkit::unique_id());
    let made = docker_lines(&["create", base, "true"]);
    docker_lines(&[
        "commit",
        "--change",
        "EXPOSE 5000",
        "--change",
        &format!("CMD [\"sh\", \"-c\", \"{}\"]", serve(text)),
        &made[0],
        &image,
    ]);
    docker_lines(&["rm", "-f", &made[0]]);
    image
}

/// The ids of `app`'s containers on this platform.
pub(crate) fn app_containers(setup: &impl Setup, app: &str) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label={}", setup.app_label()),
        "--filter",
        &format!("label=deis.app={app}"),
    ])
}

/// Points `work`'s `deis` remote at the builder's actual SSH port: the Deis client writes port
/// 2222 (the default), and the single-host test platform listens elsewhere.
pub(crate) fn use_builder(setup: &impl Setup, work: &Path, app: &str) {
    let status = std::process::Command::new("git")
        .args(["remote", "set-url", "deis", &setup.remote(app)])
        .current_dir(work)
        .status()
        .expect("git runs");
    assert!(status.success(), "git remote set-url");
}

/// Waits until `app` answers 200 with a body that satisfies `want`; the body.
pub(crate) async fn until_app(
    setup: &impl Setup,
    app: &str,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    eventually(Duration::from_secs(60), what, || async {
        match setup.get_app(app).await {
            (200, body) if want(&body) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The day's shared state: the owner's client, the app the flows share and its work tree.
pub(crate) struct Day<'a, S: Setup> {
    pub(crate) setup: &'a S,
    pub(crate) owner: Deis,
    pub(crate) app: String,
    pub(crate) work: PathBuf,
}

impl<S: Setup> Day<'_, S> {
    /// `deis <args>` as the owner, in the work tree (so of the day's app unless `-a` says).
    pub(crate) async fn deis(&self, args: &[&str]) -> String {
        self.owner.ok(&self.work, args).await
    }

    /// Waits until `app`'s answer satisfies `want`; the body.
    pub(crate) async fn until_app(
        &self,
        app: &str,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> String {
        until_app(self.setup, app, what, want).await
    }
}
