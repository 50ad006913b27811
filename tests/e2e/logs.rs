//! `deis logs` in the one-process platform: the controller's events about an app arrive as
//! `{app}[deis-controller]` lines, and a follower sees a new one as it happens.

use std::time::Duration;

use deis_testkit::eventually;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{API, Platform, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_events_are_logged_and_followed_live() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let t = Some(token.as_str());
    p.create_app(&token, "chatty").await;
    let body = eventually(
        Duration::from_secs(10),
        "the creation in the log",
        || async {
            match p.api("GET", "/v1/apps/chatty/logs", t, "").await {
                (200, body)
                    if body.contains("chatty[deis-controller]: dev created initial release") =>
                {
                    Ok(body)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(body.ends_with('\n'), "{body}");

    // Follow: the stream stays open and a new event arrives on it.
    let mut stream = tokio::net::TcpStream::connect(p.router)
        .await
        .expect("connect");
    let request = format!(
        "GET /v1/apps/chatty/logs?follow=true&log_lines=1 HTTP/1.1\r\nHost: {API}\r\nAuthorization: token {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).await.expect("status line");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (status, _) = p
        .api(
            "POST",
            "/v1/apps/chatty/config/",
            t,
            r#"{"values": {"A": "1"}}"#,
        )
        .await;
    assert_eq!(status, 201);
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return String::new();
            }
            if line.contains("chatty[deis-controller]: dev added A") {
                return line.clone();
            }
        }
    })
    .await
    .expect("the new event arrives on the open stream");
    assert!(seen.contains("[deis-controller]: dev added A"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_output_reaches_the_logs_once_and_in_order() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let t = Some(token.as_str());
    p.create_app(&token, "printer").await;
    let web = "echo web starting && mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w";
    let worker = "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; done; exec sleep 1000";
    let build = serde_json::json!({"image": p.image, "sha": "0123456789",
        "procfile": {"web": web, "worker": worker}})
    .to_string();
    let (status, body) = p.api("POST", "/v1/apps/printer/builds/", t, &build).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = p
        .api(
            "POST",
            "/v1/apps/printer/scale/",
            t,
            r#"{"web": 1, "worker": 1}"#,
        )
        .await;
    assert_eq!(status, 204);
    let body = eventually(
        Duration::from_secs(20),
        "the worker's 50 lines in the log",
        || async {
            match p
                .api("GET", "/v1/apps/printer/logs?log_lines=1000", t, "")
                .await
            {
                (200, body) if body.contains("printer[worker.1]: line 50") => Ok(body),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(body.contains("printer[web.1]: web starting"), "{body}");
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.contains("printer[worker.1]: line "))
        .map(|l| l.rsplit_once(": ").map_or("", |(_, m)| m))
        .collect();
    let expected: Vec<String> = (1..=50).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_a_container_print() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let t = Some(token.as_str());
    p.create_app(&token, "talker").await;
    // A worker printing a numbered line every 200 ms.
    let worker = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done";
    let web = "mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w";
    let build = serde_json::json!({"image": p.image, "sha": "0123456789",
        "procfile": {"web": web, "worker": worker}})
    .to_string();
    let (status, body) = p.api("POST", "/v1/apps/talker/builds/", t, &build).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = p
        .api(
            "POST",
            "/v1/apps/talker/scale/",
            t,
            r#"{"web": 1, "worker": 1}"#,
        )
        .await;
    assert_eq!(status, 204);

    let mut stream = tokio::net::TcpStream::connect(p.router)
        .await
        .expect("connect");
    let request = format!(
        "GET /v1/apps/talker/logs?follow=true&log_lines=1 HTTP/1.1\r\nHost: {API}\r\nAuthorization: token {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reader = BufReader::new(stream);
    // Two consecutive ticks arrive on the open stream, each as the container prints it.
    let ticks = tokio::time::timeout(Duration::from_secs(20), async {
        let mut seen = Vec::new();
        let mut line = String::new();
        while seen.len() < 2 {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if let Some((_, n)) = line.trim_end().split_once("talker[worker.1]: tick ") {
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
