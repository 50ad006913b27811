//! What Deis v1 users type, as they type it, and what a container prints last: an
//! administrator registers another user while logged in; `deis run` takes `-a/--app` after the
//! command and passes what follows `--` untouched; it speaks bash on an image that has bash;
//! a line with no newline (a container that exits or is killed mid-line) and a 64 KiB line
//! reach `deis logs` whole.

use std::time::Duration;

use super::{Day, serving_image};
use crate::setup::Setup;
use crate::support::{Deis, app_name, docker_lines};

pub(crate) async fn deis_users_as_they_type(day: &Day<'_, impl Setup>) {
    admin_registers_a_user(day).await;
    run_takes_the_app_anywhere(day).await;
    run_speaks_bash_where_the_image_has_it(day).await;
    last_and_long_lines_reach_the_logs(day).await;
}

/// The owner (the first user, so an administrator) registers a second user from a logged-in
/// client, as Deis's docs do; the Deis client then logs in as the new user.
async fn admin_registers_a_user(day: &Day<'_, impl Setup>) {
    let home = day.setup.dir().join("home-admin-registers");
    std::fs::create_dir_all(home.join(".deis")).expect("home");
    std::fs::copy(
        day.owner.home.join(".deis/client.json"),
        home.join(".deis/client.json"),
    )
    .expect("the owner's settings");
    let admin = Deis {
        name: day.owner.name.clone(),
        home,
        key: day.owner.key.clone(),
    };
    let out = admin
        .ok(
            day.setup.dir(),
            &[
                "register",
                &day.setup.controller_url(),
                "--username=second",
                "--password=pw2",
                "--email=second@example.com",
            ],
        )
        .await;
    assert!(
        out.contains("Registered second") && out.contains("Logged in as second"),
        "{out}"
    );
    let who = admin.ok(day.setup.dir(), &["whoami"]).await;
    assert!(who.contains("You are second"), "{who}");
}

/// From a directory with no `deis` remote, the app comes from the option wherever it stands.
async fn run_takes_the_app_anywhere(day: &Day<'_, impl Setup>) {
    let elsewhere = day.setup.dir();
    let app_option = format!("--app={}", day.app);
    let ran = day
        .owner
        .ok(
            elsewhere,
            &["run", "echo", "after-the-command", &app_option],
        )
        .await;
    assert!(
        ran.contains("after-the-command") && !ran.contains("--app"),
        "{ran}"
    );
    let ran = day
        .owner
        .ok(elsewhere, &["run", "echo", "short-form", "-a", &day.app])
        .await;
    assert!(ran.contains("short-form") && !ran.contains("-a "), "{ran}");
    let ran = day
        .owner
        .ok(
            elsewhere,
            &[
                "run",
                "-a",
                &day.app,
                "--",
                "echo",
                "--app=kept",
                "-a",
                "kept",
            ],
        )
        .await;
    assert!(ran.contains("--app=kept -a kept"), "{ran}");
}

const BASH_ONLY: &str = "printf 'ab%.0s' {1..3}; echo";

async fn run_speaks_bash_where_the_image_has_it(day: &Day<'_, impl Setup>) {
    // The day's app runs busybox, which has no bash: sh's output.
    let ran = day.deis(&["run", BASH_ONLY]).await;
    assert!(ran.contains("ab\n") && !ran.contains("ababab"), "{ran}");

    let docker = deis_testkit::TestDocker::connect().await;
    let image = serving_image(&docker.bash_image().await, "bash-app");
    let app = app_name("bash");
    day.deis(&["create", &app, "--no-remote"]).await;
    day.deis(&["pull", &image, "-a", &app]).await;
    let ran = day.deis(&["run", "-a", &app, BASH_ONLY]).await;
    assert!(ran.contains("ababab"), "{ran}");
    day.deis(&["destroy", "-a", &app, &format!("--confirm={app}")])
        .await;
    docker_lines(&["rmi", "-f", &image]);
    docker.cleanup().await;
}

async fn last_and_long_lines_reach_the_logs(day: &Day<'_, impl Setup>) {
    let id = deis_testkit::unique_id();
    let unterminated = format!("exits-mid-line-{id}");
    let ran = day.deis(&["run", &format!("printf {unterminated}")]).await;
    assert!(ran.contains(&unterminated), "{ran}");
    let killed = format!("killed-mid-line-{id}");
    let ran = day
        .owner
        .run(&day.work, &["run", &format!("printf {killed}; kill -9 $$")])
        .await;
    assert_eq!(ran.code, Some(137), "{}", ran.out);
    // One line of 64 KiB, printed twice (Docker splits it into 16 KiB messages).
    let long = format!("long-{id}-{}", "y".repeat(64 * 1024));
    let ran = day
        .deis(&[
            "run",
            &format!(
                "L=long-{id}-$(head -c 65536 /dev/zero | tr '\\0' y); echo \"$L\"; echo \"$L\""
            ),
        ])
        .await;
    assert_eq!(ran.matches(&long).count(), 2, "the run's own output");

    deis_testkit::eventually(Duration::from_secs(30), "the last lines in deis logs", || async {
        let logs = day.deis(&["logs", "-n", "500"]).await;
        let ends = |text: &str| {
            logs.lines()
                .filter(|l| l.contains("[run.") && l.ends_with(&format!(": {text}")))
                .count()
        };
        let seen = (ends(&unterminated), ends(&killed), ends(&long));
        if seen == (1, 1, 2) {
            Ok(())
        } else {
            let near: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains(&id) && l.len() < 1000)
                .collect();
            Err(format!(
                "(unterminated, killed, long) lines seen: {seen:?}; short lines with the id: {near:?}"
            ))
        }
    })
    .await;
}
