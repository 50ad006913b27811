//! `deis logs` shows the app's lines and the controller's events, and `deis logs -f` a new line as
//! it happens; through the API, the controller's events about an app arrive as
//! `{app}[deis-controller]` lines, a follower sees a new one as it happens, and an app's output
//! reaches the logs once and in order, a follower seeing each line as the container prints it.

use std::time::Duration;

use deis_testkit::eventually;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{Day, serve};
use crate::setup::{Setup, SingleHost};
use crate::support::{API, app_name};

pub(crate) async fn logs_and_follow(day: &Day<'_, impl Setup>) {
    let logs = deis_testkit::eventually(Duration::from_secs(30), "the app's lines", || async {
        let logs = day.deis(&["logs"]).await;
        if logs.contains(&format!("{}[cmd.1]: started", day.app))
            && logs.contains("[deis-controller]")
        {
            Ok(logs)
        } else {
            Err(logs)
        }
    })
    .await;
    assert!(logs.contains("deployed"), "{logs}");

    let mut follow = day
        .owner
        .command(&day.work, &["logs", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("deis logs -f runs");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    day.deis(&["config:set", "FOLLOWED=yes"]).await;
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("FOLLOWED") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("the new line arrives within 30 s");
    assert!(seen.contains("[deis-controller]"), "{seen}");
    let _ = follow.kill().await;
}

/// `GET /v1/apps/<app>/logs?follow=true&log_lines=1` through the router: the stream, open after
/// its `200` status line.
async fn follow(setup: &impl Setup, app: &str, token: &str) -> BufReader<tokio::net::TcpStream> {
    let mut stream = tokio::net::TcpStream::connect(setup.router())
        .await
        .expect("connect");
    let request = format!(
        "GET /v1/apps/{app}/logs?follow=true&log_lines=1 HTTP/1.1\r\nHost: {API}\r\nAuthorization: token {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).await.expect("status line");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    reader
}

async fn controller_events_are_logged_and_followed_live(setup: &impl Setup) {
    let token = setup.user("watcher").await;
    let t = Some(token.as_str());
    let app = app_name("chatty");
    setup.create_app(&token, &app).await;
    let logs = format!("/v1/apps/{app}/logs");
    let created = format!("{app}[deis-controller]: watcher created initial release");
    let body = eventually(
        Duration::from_secs(10),
        "the creation in the log",
        || async {
            match setup.api("GET", &logs, t, "").await {
                (200, body) if body.contains(&created) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(body.ends_with('\n'), "{body}");

    // Follow: the stream stays open and a new event arrives on it.
    let mut reader = follow(setup, &app, &token).await;
    let config = format!("/v1/apps/{app}/config/");
    let (status, _) = setup
        .api("POST", &config, t, r#"{"values": {"A": "1"}}"#)
        .await;
    assert_eq!(status, 201);
    let added = format!("{app}[deis-controller]: watcher added A");
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return String::new();
            }
            if line.contains(&added) {
                return line.clone();
            }
        }
    })
    .await
    .expect("the new event arrives on the open stream");
    assert!(
        seen.contains("[deis-controller]: watcher added A"),
        "{seen}"
    );
}

/// A new user's app deployed through the API with a web process that says `web starting` and
/// a worker running `worker`, one of each: the user's token.
async fn app_with_a_worker(setup: &impl Setup, user: &str, app: &str, worker: &str) -> String {
    let token = setup.user(user).await;
    let t = Some(token.as_str());
    setup.create_app(&token, app).await;
    let web = format!("echo web starting && {}", serve("ok"));
    let build = serde_json::json!({"image": setup.base_image(), "sha": "0123456789",
        "procfile": {"web": web, "worker": worker}})
    .to_string();
    let path = |what: &str| format!("/v1/apps/{app}/{what}");
    let (status, body) = setup.api("POST", &path("builds/"), t, &build).await;
    assert_eq!(status, 201, "{body}");
    let scale = r#"{"web": 1, "worker": 1}"#;
    let (status, _) = setup.api("POST", &path("scale/"), t, scale).await;
    assert_eq!(status, 204);
    token
}

pub(crate) async fn app_output_reaches_the_logs_once_and_in_order(setup: &impl Setup) {
    let app = app_name("printer");
    let worker = "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; done; exec sleep 1000";
    let token = app_with_a_worker(setup, "printer", &app, worker).await;
    let logs = format!("/v1/apps/{app}/logs?log_lines=1000");
    let last = format!("{app}[worker.1]: line 50");
    let body = eventually(
        Duration::from_secs(20),
        "the worker's 50 lines in the log",
        || async {
            match setup.api("GET", &logs, Some(&token), "").await {
                (200, body) if body.contains(&last) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        body.contains(&format!("{app}[web.1]: web starting")),
        "{body}"
    );
    let worker_line = format!("{app}[worker.1]: line ");
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.contains(&worker_line))
        .map(|l| l.rsplit_once(": ").map_or("", |(_, m)| m))
        .collect();
    let expected: Vec<String> = (1..=50).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
}

async fn a_follower_sees_a_container_print(setup: &impl Setup) {
    let app = app_name("talker");
    // A worker printing a numbered line every 200 ms.
    let worker = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done";
    let token = app_with_a_worker(setup, "talker", &app, worker).await;
    let mut reader = follow(setup, &app, &token).await;
    // Two consecutive ticks arrive on the open stream, each as the container prints it.
    let tick = format!("{app}[worker.1]: tick ");
    let ticks = tokio::time::timeout(Duration::from_secs(20), async {
        let mut seen = Vec::new();
        let mut line = String::new();
        while seen.len() < 2 {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if let Some((_, n)) = line.trim_end().split_once(&tick) {
                seen.push(n.trim().parse::<u64>().unwrap_or(0));
            }
        }
        seen
    })
    .await
    .expect("ticks arrive while following");
    assert_eq!(ticks.len(), 2, "{ticks:?}");
    assert_eq!(
        ticks[1],
        ticks[0] + 1,
        "consecutive, none skipped or repeated: {ticks:?}"
    );
}

/// The controller's events are read from the creation of the platform's first app on (the
/// logger's first read of which apps exist; see `day.rs`), then a follower reads a container.
#[tokio::test(flavor = "multi_thread")]
async fn controller_events_and_container_output_are_followed_live() {
    let host = SingleHost::start().await;
    controller_events_are_logged_and_followed_live(&host).await;
    a_follower_sees_a_container_print(&host).await;
}
