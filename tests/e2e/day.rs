//! The user's day, end to end, on both set-ups: the README's single-host process and the
//! containers `deisctl` runs. One flow per module, run in order on one platform per set-up
//! (starting a platform is the slow part); each step asserts what the user sees.

mod apps;
mod attacks;
mod buildpack;
mod destroy;
mod domains;
mod images;
mod limits;
mod logs;
mod parity;
mod perms;
mod quickstart;

use std::path::{Path, PathBuf};
use std::time::Duration;

use deis_testkit::eventually;

use crate::containers::Containers;
use crate::setup::{Deis, Setup};
use crate::single_host::SingleHost;
use crate::support::work_tree;

/// The Dockerfile app every flow uses: says its greeting and container host name, and prints
/// a line when it starts.
pub(crate) fn dockerfile(image: &str) -> String {
    format!(
        "FROM {image}\nCMD echo \"started $HOSTNAME\" && mkdir -p /tmp/www && echo \"${{GREETING:-hello}} $HOSTNAME\" > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www\n"
    )
}

/// The day's shared state: the owner's client, the app the flows share and its work tree.
pub(crate) struct Day<'a, S: Setup> {
    pub(crate) setup: &'a S,
    pub(crate) owner: Deis,
    pub(crate) app: String,
    pub(crate) work: PathBuf,
}

/// An app name no other test on this Docker engine uses (container names are per engine).
pub(crate) fn app_name(base: &str) -> String {
    format!("{base}-{}", deis_testkit::unique_id())
}

impl<S: Setup> Day<'_, S> {
    /// `deis <args> -a shop` as the owner, in the work tree.
    pub(crate) async fn deis(&self, args: &[&str]) -> String {
        self.owner.ok(&self.work, args).await
    }

    /// Waits until the app's answer satisfies `want`; the body.
    pub(crate) async fn until_app(
        &self,
        app: &str,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> String {
        eventually(Duration::from_secs(60), what, || async {
            match self.setup.get_app(app).await {
                (200, body) if want(&body) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }
}

/// Points `work`'s `deis` remote at the builder's actual SSH port: the Deis client writes port
/// 2222 (the default), and the single-host test platform listens elsewhere.
pub(crate) fn use_builder(setup: &impl Setup, work: &Path, app: &str) {
    let ssh = setup.ssh();
    let url = format!("ssh://git@{}:{}/{app}.git", ssh.ip(), ssh.port());
    let status = std::process::Command::new("git")
        .args(["remote", "set-url", "deis", &url])
        .current_dir(work)
        .status()
        .expect("git runs");
    assert!(status.success(), "git remote set-url");
}

/// Every flow, in order.
async fn run_day(setup: &impl Setup) {
    let owner = Deis::register(setup, "owner").await;
    let app = app_name("shop");
    let work = work_tree(
        &setup.dir().join(&app),
        &[("Dockerfile", &dockerfile(&setup.base_image()))],
    );
    let day = Day {
        setup,
        owner,
        app,
        work,
    };
    quickstart::the_readme_example_app(&day).await;
    apps::push_config_scale_and_roll_back(&day).await;
    logs::logs_and_follow(&day).await;
    domains::custom_domain_and_certificate(&day).await;
    attacks::a_tenant_attacks_and_nothing_changes(&day).await;
    images::pull_and_run(&day).await;
    parity::deis_users_as_they_type(&day).await;
    perms::collaborator_deploys_stranger_cannot_see(&day).await;
    limits::limits_and_restart(&day).await;
    buildpack::buildpack_app(&day).await;
    destroy::destroy_leaves_nothing(&day).await;
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
        &format!(
            "CMD [\"sh\", \"-c\", \"mkdir -p /tmp/w && echo {text} > /tmp/w/index.html && exec httpd -f -p ${{PORT:-5000}} -h /tmp/w\"]"
        ),
        &made[0],
        &image,
    ]);
    docker_lines(&["rm", "-f", &made[0]]);
    image
}

/// Docker's answer, one line per entry.
pub(crate) fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
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

pub(crate) fn path_str(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_day_on_the_single_host_platform() {
    let host = SingleHost::start().await;
    run_day(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_day_on_the_platform_deisctl_runs() {
    let containers = Containers::start();
    run_day(&containers).await;
}
