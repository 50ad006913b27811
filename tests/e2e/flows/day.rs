//! The user's day, end to end, on both set-ups: the README's single-host process and the
//! containers `deisctl` runs. Its flows run in order on one platform per set-up (starting a
//! platform is the slow part); each step asserts what the user sees.

use super::{
    Day, apps, attacks, buildpack, deploy, destroy, dockerfile, domains, images, limits, logs,
    parity, perms, push, quickstart, registry,
};
use crate::setup::{Containers, Setup, SingleHost};
use crate::support::{Deis, app_name, work_tree};

/// Every flow of the day, in order: those of the day's app, and between them those that bring
/// their own users and apps. The flow that reads a new app's very first lines comes first: the
/// logger reads which apps exist at most once a second (`deis-logger/src/gate.rs`), so an app
/// created within a second of that read loses the lines it prints meanwhile.
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
    logs::app_output_reaches_the_logs_once_and_in_order(setup).await;
    quickstart::the_readme_example_app(&day).await;
    deploy::an_image_deployed_through_the_api_answers_on_its_app_domain(setup).await;
    push::a_dockerfile_app_is_built_deployed_and_a_broken_build_changes_nothing(setup).await;
    push::strangers_keys_and_shells_are_refused_with_their_reasons(setup).await;
    apps::push_config_scale_and_roll_back(&day).await;
    logs::logs_and_follow(&day).await;
    domains::custom_domain_and_certificate(&day).await;
    attacks::a_tenant_attacks_and_nothing_changes(&day).await;
    images::pull_and_run(&day).await;
    registry::a_pushed_image_is_pulled_back_through_the_proxy(&day).await;
    parity::deis_users_as_they_type(&day).await;
    perms::collaborator_deploys_stranger_cannot_see(&day).await;
    limits::limits_and_restart(&day).await;
    buildpack::buildpack_app(&day).await;
    destroy::destroy_leaves_nothing(&day).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_day_on_the_single_host_platform() {
    let mut host = SingleHost::start().await;
    run_day(&host).await;
    // Only the README process has the operator's folder of local buildpacks.
    buildpack::a_custom_buildpack_builds_and_keeps_its_cache(&host, &host.buildpacks()).await;
    // After all that, Ctrl-C stops every component cleanly.
    SingleHost::stop(host.process.take().expect("running"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_day_on_the_platform_deisctl_runs() {
    let containers = Containers::start();
    run_day(&containers).await;
}
