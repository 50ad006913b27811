//! The single-host platform keeps users, apps, releases and the builder's host key in its data
//! directory: after a restart the same user logs in, the app is listed with its releases and
//! answers again, and `git push` works with the same key. What the builder holds of apps the
//! controller does not know is swept at start.

use std::time::Duration;

use deis_testkit::{eventually, unique_id};

use crate::support::{Platform, User, commit, work_tree};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_users_apps_releases_and_serving() {
    let mut p = Platform::start().await;
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let app = format!("keep-{}", unique_id());
    p.create_app(&token, &app).await;
    let image = p.image.clone();
    let dockerfile = |greeting: &str| {
        format!(
            "FROM {image}\nCMD mkdir -p /tmp/w && echo {greeting} > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w\n"
        )
    };
    let work = work_tree(
        &p.dir.path().join("work"),
        &[("Dockerfile", &dockerfile("before"))],
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert_eq!(p.get_app(&app).await, (200, "before\n".to_owned()));
    let host_key = std::fs::read_to_string(p.dir.path().join("builder/ssh_host_ed25519_key"))
        .expect("the host key is in the data directory");

    // What a destroy the builder missed while it was down would leave: a repository and a
    // build cache of an app the controller does not know.
    let ghost = format!("ghost-{}", unique_id());
    let ghost_repo = p.dir.path().join(format!("builder/repos/{ghost}.git"));
    std::fs::create_dir_all(&ghost_repo).expect("a ghost repository");
    let cache = format!("deis-cache-{ghost}");
    let made = std::process::Command::new("docker")
        .args([
            "volume",
            "create",
            "--label",
            &format!("{}={}", deis_testkit::TEST_LABEL, p.test_id()),
            &cache,
        ])
        .status()
        .expect("docker runs");
    assert!(made.success());

    p.restart().await;

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
    assert!(
        p.dir
            .path()
            .join(format!("builder/repos/{app}.git"))
            .exists()
    );

    // The same user and token, the app with its releases, serving again.
    let (status, body) = p.api("GET", "/v1/apps/", Some(&token), "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("\"id\":\"{app}\"")), "{body}");
    let (status, body) = p
        .api(
            "GET",
            &format!("/v1/apps/{app}/releases/"),
            Some(&token),
            "",
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"count\":2"), "v1 and v2: {body}");
    eventually(
        Duration::from_secs(30),
        "the app to answer again",
        || async {
            match p.get_app(&app).await {
                (200, body) if body == "before\n" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Pushing again works, with the same host key.
    assert_eq!(
        std::fs::read_to_string(p.dir.path().join("builder/ssh_host_ed25519_key")).expect("key"),
        host_key
    );
    commit(&work, &[("Dockerfile", &dockerfile("after"))], "after");
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "after\n".to_owned()));
}
