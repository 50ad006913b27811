//! `deisctl install platform && deisctl start platform`: every component in its own container,
//! healthy, serving a pushed app; a killed component comes back; stop and uninstall leave
//! nothing; failures say what to do in one line and leave nothing half-started.

use std::process::Command;
use std::time::Duration;

use deis_testkit::eventually;

use super::serving_dockerfile;
use crate::setup::{Containers, Setup, TAG};
use crate::support::{app_name, docker_lines, work_tree, workspace_binary};

const UNITS: [&str; 9] = [
    "etcd.service",
    "logger.service",
    "logspout.service",
    "database.service",
    "registry.service",
    "registry-proxy.service",
    "controller.service",
    "builder.service",
    "router@1.service",
];

/// The `list` row of `unit`, split into columns.
fn row(list: &str, prefix: &str, unit: &str) -> Vec<String> {
    let name = format!("{prefix}-{unit}");
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{name} is not listed:\n{list}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deisctl_runs_the_platform_in_containers_and_takes_it_away() {
    let c = Containers::start();
    let list = c.ok(&["list"]);
    for unit in UNITS {
        let row = row(&list, &c.prefix, unit);
        assert_eq!(row[3..5], ["active", "running"], "{unit}:\n{list}");
        let health = if unit.starts_with("logspout") {
            "-"
        } else {
            "healthy"
        };
        assert_eq!(row[5], health, "{unit}:\n{list}");
    }
    let status = c.ok(&["status", "platform"]);
    for unit in UNITS {
        assert!(
            status.contains(&format!("● {}-{unit}", c.prefix)),
            "{status}"
        );
    }

    // A user's day on it: register, key, create, push a Dockerfile app, request it.
    let token = c.user("alice").await;
    let app = app_name("hello");
    c.create_app(&token, &app).await;
    let key = c.add_key(&token, "laptop").await;
    let dockerfile = serving_dockerfile(&c.app_base_image(), "hello-from-containers");
    let work = work_tree(&c.dir.path().join(&app), &[("Dockerfile", &dockerfile)]);
    let (pushed, output) = c.push(&work, &key, &app).await;
    assert!(pushed, "{output}");
    assert_eq!(
        c.get_app(&app).await,
        (200, "hello-from-containers\n".to_owned())
    );
    let journal = c.ok(&["journal", "controller", "-n", "20"]);
    assert!(!journal.trim().is_empty(), "the controller's output");

    // A component that dies is seen dying and comes back on its own.
    let container = format!("{}-controller", c.prefix);
    let pid = docker_lines(&["inspect", "--format", "{{.State.Pid}}", &container]);
    let killed = Command::new("kill")
        .args(["-KILL", &pid[0]])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    eventually(
        Duration::from_secs(60),
        "the controller restarted and healthy",
        || async {
            let status = c.ok(&["status", "controller"]);
            if status.contains("Restarts: 1") && status.contains("Health: healthy") {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
    let (code, body) = c
        .api("GET", &format!("/v1/apps/{app}/"), Some(&token), "")
        .await;
    assert_eq!(code, 200, "{body}");

    // A second router shares the ports; scaled back, it is gone. A restart comes back healthy.
    c.ok(&["scale", "router=2"]);
    let list = c.ok(&["list"]);
    assert_eq!(
        row(&list, &c.prefix, "router@2.service")[3..6],
        ["active", "running", "healthy"]
    );
    assert_eq!(c.get_app(&app).await.0, 200);
    c.ok(&["scale", "router=1"]);
    assert!(!c.ok(&["list"]).contains("router@2"));
    let restarted = c.ok(&["restart", "builder"]);
    assert!(
        restarted.ends_with(&format!("{}-builder.service: active/running\n", c.prefix)),
        "{restarted}"
    );

    // Stopped, then started again: users, apps and releases are kept.
    let stopped = c.ok(&["stop", "platform"]);
    assert!(stopped.contains("Stopping Deis..."), "{stopped}");
    let list = c.ok(&["list"]);
    for unit in UNITS {
        assert_eq!(
            row(&list, &c.prefix, unit)[3..5],
            ["inactive", "dead"],
            "{list}"
        );
    }
    c.ok(&["start", "platform"]);
    let (code, body) = c
        .api(
            "GET",
            &format!("/v1/apps/{app}/releases/"),
            Some(&token),
            "",
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"version\": 2") || body.contains("\"version\":2"),
        "{body}"
    );
    assert_eq!(c.get_app(&app).await.0, 200);

    // Stop and uninstall leave no container (the app's included) and no volume.
    c.ok(&["stop", "platform"]);
    let gone = c.ok(&["uninstall", "platform"]);
    assert!(gone.contains("destroyed"), "{gone}");
    let label = format!("label=deis.platform={}", c.prefix);
    assert_eq!(
        docker_lines(&["ps", "-aq", "--filter", &label]),
        Vec::<String>::new()
    );
    assert_eq!(
        docker_lines(&["volume", "ls", "-q", "--filter", &label]),
        Vec::<String>::new()
    );
    assert_eq!(
        docker_lines(&["images", "-q", "--filter", &label]),
        Vec::<String>::new(),
        "the apps' images are gone too"
    );
    let list = c.ok(&["list"]);
    assert_eq!(list.lines().count(), 1, "only the header is left:\n{list}");

    // Installed again at once, on the same ports, which the old platform's connections may
    // still hold in TIME-WAIT (the settings went with etcd's volume: set them again).
    c.configure();
    c.ok(&["install", "platform"]);
    let list = c.ok(&["list"]);
    for unit in UNITS {
        row(&list, &c.prefix, unit);
    }
    c.ok(&["uninstall", "platform"]);
}

/// stderr of a failed deisctl: one line.
fn one_line_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "deisctl should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Units whose containers run, from `list`.
fn running(c: &Containers) -> Vec<String> {
    c.ok(&["list"])
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            matches!(cols.get(3), Some(&"active") | Some(&"activating"))
        })
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deisctl_failures_are_one_line_and_leave_nothing_half_started() {
    // No Docker engine.
    let out = Command::new(workspace_binary("deisctl"))
        .arg("list")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("deisctl runs");
    let error = one_line_error(&out);
    assert!(error.contains("cannot reach the Docker engine"), "{error}");
    assert!(error.contains("DOCKER_HOST"), "{error}");

    let c = Containers::with_store();
    let etcd_only = vec![format!("{}-etcd.service", c.prefix)];

    // A port in use: nothing is created.
    let holder = std::net::TcpListener::bind(c.addr(8000)).expect("hold the controller's port");
    let error = one_line_error(&c.deisctl(&["install", "platform"]));
    assert!(
        error.contains(&format!("port 8000 on {} is in use", c.ip))
            && error.contains("deisctl config controller set listenPort="),
        "{error}"
    );
    assert_eq!(c.ok(&["list"]).lines().count(), 2, "only etcd is installed");
    drop(holder);

    // A component that never gets healthy: the start fails naming it, and what this start
    // started is stopped again.
    let sleeper = format!("deis/sleeper-{}:{TAG}", c.prefix);
    let made = docker_lines(&["create", &c.app_base_image(), "sleep", "3600"]);
    docker_lines(&[
        "commit",
        "--change",
        "CMD [\"sleep\", \"3600\"]",
        &made[0],
        &sleeper,
    ]);
    docker_lines(&["rm", "-f", &made[0]]);
    // The logger starts right after etcd, so the short timeout meets no slow database start.
    c.ok(&["config", "logger", "set", &format!("image={sleeper}")]);
    c.ok(&["install", "platform"]);
    let error = one_line_error(&c.deisctl(&["start", "platform", "--timeout", "5"]));
    assert!(
        error.contains(&format!(
            "'{}-logger.service' failed while starting",
            c.prefix
        )) && error.contains("not healthy after 5 s")
            && error.contains("deisctl journal logger"),
        "{error}"
    );
    assert_eq!(running(&c), etcd_only);
    docker_lines(&["rmi", "-f", &sleeper]);
}
