//! deis pull of an image built on this engine, and deis run (output and exit status).

use super::{Day, serving_image};
use crate::setup::Setup;
use crate::support::{app_name, docker_lines};

pub(crate) async fn pull_and_run(day: &Day<'_, impl Setup>) {
    // An image made here: the base image with a command that serves on $PORT.
    let image = serving_image(&day.setup.base_image(), "pulled");
    let pulled = app_name("pulled");
    day.deis(&["create", &pulled, "--no-remote"]).await;
    day.deis(&["pull", &image, "-a", &pulled]).await;
    let releases = day.deis(&["releases", "-a", &pulled]).await;
    assert!(
        releases.contains("v2") && releases.contains(&image),
        "{releases}"
    );
    day.until_app(&pulled, "the pulled image", |b| b == "pulled\n")
        .await;

    // deis run: the command's output, and its exit status as deis's.
    let ran = day.deis(&["run", "--", "echo", "hello-from-run"]).await;
    assert!(ran.contains("hello-from-run"), "{ran}");
    let failed = day
        .owner
        .run(&day.work, &["run", "--", "echo failing; exit 3"])
        .await;
    assert_eq!(failed.code, Some(3), "{}", failed.out);

    day.deis(&["destroy", "-a", &pulled, &format!("--confirm={pulled}")])
        .await;
    docker_lines(&["rmi", "-f", &image]);
}
