//! `deis logs` shows the app's lines and the controller's events; `deis logs -f` shows a new
//! line as it happens.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::Day;
use crate::setup::Setup;

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
