//! Faults: each platform component SIGKILLed in turn while a client keeps requesting the app
//! (traffic continues, the component comes back); the controller killed in the middle of a
//! deploy (the deploy completes or fails cleanly, no container is leaked); app containers
//! killed (replaced).

use std::time::{Duration, Instant};

use deis_testkit::eventually;

use super::app_containers;
use super::load::{Steady, deployed_app};
use crate::setup::{Containers, Setup, SingleHost};
use crate::support::{Deis, app_name, commit, docker_lines, figure};

fn kill_main_process(container: &str) {
    let pid = docker_lines(&["inspect", "--format", "{{.State.Pid}}", container]);
    let pid = pid.first().map(String::as_str).unwrap_or("0");
    assert_ne!(pid, "0", "{container} runs");
    let status = std::process::Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -KILL {pid}");
}

fn restarts(container: &str) -> u64 {
    docker_lines(&["inspect", "--format", "{{.RestartCount}}", container])
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether a container restarted since it had `before` restarts, runs, and (if it has a health
/// check) passed a probe that started after its restart: Docker keeps the last status of the
/// container's previous life while it restarts, so `healthy` alone says nothing.
fn back_and_healthy(container: &str, before: u64) -> Result<(), String> {
    let state = docker_lines(&["inspect", "--format", "{{json .State}}", container]).join("");
    let state: serde_json::Value =
        serde_json::from_str(&state).map_err(|e| format!("{container}: {e}: {state}"))?;
    let started = state["StartedAt"].as_str().unwrap_or_default();
    if restarts(container) <= before || state["Status"] != "running" {
        return Err(format!("{container}: {} since {started}", state["Status"]));
    }
    let Some(health) = state.get("Health").filter(|h| !h.is_null()) else {
        return Ok(());
    };
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let probed_since = health["Log"]
        .as_array()
        .and_then(|log| log.last())
        .and_then(|probe| probe["Start"].as_str())
        .is_some_and(|probe| at(probe) > at(started) && at(started).is_some());
    if health["Status"] == "healthy" && probed_since {
        Ok(())
    } else {
        Err(format!("{container}: {} since {started}", health["Status"]))
    }
}

/// The app's running containers, by release label.
fn releases_running(setup: &impl Setup, app: &str) -> Vec<String> {
    let mut releases = docker_lines(&[
        "ps",
        "--filter",
        &format!("label={}", setup.app_label()),
        "--filter",
        &format!("label=deis.app={app}"),
        "--format",
        "{{.Label \"deis.release\"}}",
    ]);
    releases.sort();
    releases
}

/// Kills an app container's process: the platform replaces it and the app keeps answering.
async fn app_container_is_replaced(setup: &impl Setup, app: &str) {
    let ids = app_containers(setup, app);
    let victim = ids.first().expect("an app container").clone();
    let started_at = |id: &str| docker_lines(&["inspect", "--format", "{{.State.StartedAt}}", id]);
    let first_start = started_at(&victim);
    let started = Instant::now();
    kill_main_process(&victim);
    eventually(
        Duration::from_secs(60),
        "the killed app container replaced",
        || async {
            let running = releases_running(setup, app);
            let replaced = started_at(&victim) != first_start;
            match setup.get_app(app).await {
                (200, _) if replaced && running.len() == ids.len() => Ok(()),
                other => Err(format!("{running:?} replaced: {replaced} {other:?}")),
            }
        },
    )
    .await;
    figure(format_args!(
        "app container killed: {} containers running again in {} ms",
        ids.len(),
        started.elapsed().as_millis()
    ));
}

/// Starts a push and waits until its release's containers appear, then calls `interrupt`;
/// the push completes or fails with a message, and afterwards only one release runs, at the
/// app's scale.
async fn interrupted_deploy(
    setup: &impl Setup,
    owner: &Deis,
    work: &std::path::Path,
    app: &str,
    scale: usize,
    interrupt: impl AsyncFnOnce(),
) {
    // Once the previous deploy's old containers have drained away.
    let before = eventually(Duration::from_secs(60), "the app settled", || async {
        let running = releases_running(setup, app);
        if running.len() == scale {
            Ok(running)
        } else {
            Err(format!("{running:?}"))
        }
    })
    .await;
    commit(work, &[("README", "interrupted\n")], "interrupted");
    let push = tokio::spawn(owner.push_command(work).output());
    eventually(
        Duration::from_secs(60),
        "the new release's containers",
        || async {
            let now = releases_running(setup, app);
            if now.iter().any(|r| !before.contains(r)) {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    interrupt().await;
    let output = push.await.expect("push task").expect("git push runs");
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    figure(format_args!(
        "deploy interrupted: git push {}",
        if output.status.success() {
            "succeeded"
        } else {
            "failed"
        }
    ));
    if !output.status.success() {
        assert!(
            said.contains("remote:") || said.contains("fatal"),
            "a message: {said}"
        );
    }
    // No container is leaked: one release runs, as many containers as before.
    eventually(
        Duration::from_secs(90),
        "one release at the app's scale",
        || async {
            let running = releases_running(setup, app);
            let one_release = running.windows(2).all(|w| w[0] == w[1]);
            match setup.get_app(app).await {
                (200, _) if one_release && running.len() == scale => Ok(()),
                other => Err(format!("{running:?} {other:?}")),
            }
        },
    )
    .await;
    let ps = owner.ok(work, &["ps"]).await;
    assert_eq!(ps.matches(" up ").count(), scale, "{ps}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_components_come_back_while_the_app_keeps_serving() {
    let c = Containers::start();
    let app = &app_name("sturdy");
    let (owner, work) = deployed_app(&c, app).await;
    // Two routers share the ports, so a dying one leaves the other serving.
    c.ok(&["scale", "router=2"]);
    let client = Steady::start(c.router(), app, 2);
    for component in [
        "etcd",
        "logger",
        "logspout",
        "database",
        "registry",
        "controller",
        "builder",
        "router-1",
    ] {
        let container = format!("{}-{component}", c.prefix);
        let before = restarts(&container);
        let (sent, failed) = client.counts();
        let started = Instant::now();
        kill_main_process(&container);
        eventually(
            Duration::from_secs(90),
            "the component back and healthy",
            || async { back_and_healthy(&container, before) },
        )
        .await;
        let recovered = started.elapsed();
        eventually(
            Duration::from_secs(30),
            "requests still succeed",
            || async {
                let (now_sent, now_failed) = client.counts();
                if now_sent - now_failed > sent - failed + 20 {
                    Ok(())
                } else {
                    Err(format!("{now_sent}"))
                }
            },
        )
        .await;
        let (now_sent, now_failed) = client.counts();
        figure(format_args!(
            "deisctl: {component} SIGKILLed: healthy again after {} ms; {} requests meanwhile, {} failed",
            recovered.as_millis(),
            now_sent - sent,
            now_failed - failed
        ));
        if component != "router-1" {
            assert_eq!(
                now_failed, failed,
                "killing {component} fails no app request"
            );
        }
    }
    let (sent, failed, last) = client.stop().await;
    figure(format_args!(
        "deisctl: {sent} requests during the kills, {failed} failed ({last})"
    ));
    // The platform still works end to end after all that.
    let pushed = {
        commit(&work, &[("README", "after the kills\n")], "after");
        owner.push(&work).await
    };
    assert!(pushed.ok, "{}", pushed.out);

    // The controller killed in the middle of a deploy.
    let controller = format!("{}-controller", c.prefix);
    interrupted_deploy(&c, &owner, &work, app, 2, async || {
        kill_main_process(&controller)
    })
    .await;
    app_container_is_replaced(&c, app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_single_host_platform_survives_a_kill_mid_deploy_and_replaces_dead_apps() {
    let mut host = SingleHost::start().await;
    let app = &app_name("sturdy");
    let (owner, work) = deployed_app(&host, app).await;
    app_container_is_replaced(&host, app).await;
    // SIGKILL of the whole platform in the middle of a deploy, then the README command again.
    let process = host.process.take().expect("running");
    let host_ref = &host;
    let restarted = std::sync::Mutex::new(None);
    interrupted_deploy(&host, &owner, &work, app, 2, async || {
        drop(process); // SIGKILL
        let again = host_ref.run();
        host_ref.wait_until_up().await;
        if let Ok(mut slot) = restarted.lock() {
            *slot = Some(again);
        }
    })
    .await;
    host.process = restarted.lock().ok().and_then(|mut s| s.take());
}
