//! The README's first command, `deis-platform`, as a user runs it: its banner, a pushed app
//! answering, and a restart of the process (SIGTERM, a clean exit, the command again) that
//! keeps users, apps, releases and the builder's host key in its data directory: the same user
//! logs in, the app is listed with its releases and answers again, and `git push` works with
//! the same key. What the builder holds of apps the controller does not know is swept at start.

use std::time::Duration;

use deis_testkit::{TEST_LABEL, eventually};

use super::serving_dockerfile;
use crate::setup::{Setup, SingleHost};
use crate::support::{app_name, commit, work_tree};

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_command_runs_the_platform_and_a_restart_keeps_its_data() {
    let mut host = SingleHost::start().await;
    let banner = eventually(Duration::from_secs(10), "the banner", || async {
        let output = host
            .process
            .as_ref()
            .map(|p| p.output())
            .unwrap_or_default();
        if output.contains("git remote") {
            Ok(output)
        } else {
            Err(output)
        }
    })
    .await;
    assert!(
        banner.contains(&format!("deis register http://{}", host.controller))
            || banner.contains(&format!(":{}", host.controller.port())),
        "the banner names the controller: {banner}"
    );

    let token = host.user("dev").await;
    let key = host.add_key(&token, "laptop").await;
    let app = app_name("keep");
    host.create_app(&token, &app).await;
    let work = work_tree(
        &host.dir().join(&app),
        &[("Dockerfile", &serving_dockerfile(&host.image, "before"))],
    );
    let (ok, output) = host.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert_eq!(host.get_app(&app).await, (200, "before\n".to_owned()));
    let builder = host.data().join("builder");
    let host_key = std::fs::read_to_string(builder.join("ssh_host_ed25519_key"))
        .expect("the host key is in the data directory");

    // What a destroy the builder missed while it was down would leave: a repository and a
    // build cache of an app the controller does not know.
    let ghost = app_name("ghost");
    let ghost_repo = builder.join(format!("repos/{ghost}.git"));
    std::fs::create_dir_all(&ghost_repo).expect("a ghost repository");
    let cache = format!("deis-cache-{ghost}");
    let label = format!("{TEST_LABEL}={}", host.test_labels()[TEST_LABEL]);
    let made = std::process::Command::new("docker")
        .args(["volume", "create", "--label", &label, &cache])
        .status()
        .expect("docker runs");
    assert!(made.success());

    host.restart().await;

    // Swept at start; the live app's repository is kept.
    eventually(Duration::from_secs(30), "the ghost swept", || async {
        let volume = std::process::Command::new("docker")
            .args(["volume", "inspect", &cache])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(true);
        if ghost_repo.exists() || volume {
            Err(format!(
                "repository {}, volume {volume}",
                ghost_repo.exists()
            ))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(host.has_repository(&app));

    // The same user logs in, and with the same token finds the app with its releases, serving
    // again.
    let login = r#"{"username": "dev", "password": "pw"}"#;
    let (status, body) = host.api("POST", "/v1/auth/login/", None, login).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = host.api("GET", "/v1/apps/", Some(&token), "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("\"id\":\"{app}\"")), "{body}");
    let releases = format!("/v1/apps/{app}/releases/");
    let (status, body) = host.api("GET", &releases, Some(&token), "").await;
    assert_eq!(status, 200, "{body}");
    let releases: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(releases["count"], 2, "v1 and v2: {body}");
    eventually(
        Duration::from_secs(30),
        "the app to answer again",
        || async {
            match host.get_app(&app).await {
                (200, body) if body == "before\n" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Pushing again works, with the same host key.
    assert_eq!(
        std::fs::read_to_string(builder.join("ssh_host_ed25519_key")).expect("key"),
        host_key
    );
    commit(
        &work,
        &[("Dockerfile", &serving_dockerfile(&host.image, "after"))],
        "after",
    );
    let (ok, output) = host.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(host.get_app(&app).await, (200, "after\n".to_owned()));
}
