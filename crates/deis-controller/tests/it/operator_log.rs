//! What the operator reads in the `deis-controller` binary's log: a deploy's lines carry the app
//! and the release, and an internal failure is logged once with its causes while the client gets
//! a plain answer.

use std::path::Path;
use std::time::Duration;

use deis_testkit::{ServiceProcess, assert_stops_cleanly, eventually, free_addr, start_service};
use serde_json::json;

use crate::support::Api;

const BIN: &str = env!("CARGO_BIN_EXE_deis-controller");

/// The binary on SQLite in its own data directory, recording desired state only, with the
/// user alice and her app.
struct Controller {
    dir: tempfile::TempDir,
    process: ServiceProcess,
    api: Api,
    alice: String,
}

async fn start(app: &str) -> Controller {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DEIS_SCHEDULER", "none".to_owned()),
    ];
    let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    let api = Api { addr };
    let alice = api.user("alice").await;
    api.app(&alice, app).await;
    Controller {
        dir,
        process,
        api,
        alice,
    }
}

/// The log's text without terminal colours.
fn log(dir: &Path) -> String {
    let raw = std::fs::read_to_string(dir.join("deis-controller.log")).unwrap_or_default();
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ ... m`: skip to the final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}

/// Waits until the log has a line containing `needle`, and returns it.
async fn line(dir: &Path, needle: &str) -> String {
    eventually(Duration::from_secs(10), needle, || {
        let text = log(dir);
        let found = text.lines().find(|l| l.contains(needle)).map(str::to_owned);
        async move { found.ok_or(text) }
    })
    .await
}

#[tokio::test]
async fn a_deploy_logs_under_its_app_and_release() {
    let c = start("spanned").await;
    c.api
        .req(
            "POST",
            "/v1/apps/spanned/builds",
            Some(&c.alice),
            Some(json!({"image": "deis/example-go:latest"})),
        )
        .await
        .expect(201, "CREATED");
    let running = line(c.dir.path(), "Release running").await;
    assert!(
        running.contains("deploy{app=spanned release=2}"),
        "{running}"
    );
    assert_stops_cleanly(c.process);
}

#[tokio::test]
async fn an_internal_failure_is_logged_once_with_its_cause_and_answered_plainly() {
    let c = start("broken").await;
    // A stored value no release of the controller writes: the app's structure is not JSON.
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", c.dir.path().join("controller.db").display());
    let db = sqlx::AnyPool::connect(&url)
        .await
        .expect("open the database");
    sqlx::query("UPDATE apps SET structure = 'not json' WHERE id = 'broken'")
        .execute(&db)
        .await
        .expect("corrupt the app");
    db.close().await;

    let answer = c
        .api
        .req("GET", "/v1/apps/broken", Some(&c.alice), None)
        .await;
    answer.expect(500, "INTERNAL SERVER ERROR");
    assert_eq!(answer.json(), json!({"detail": "internal server error"}));

    let failed = line(c.dir.path(), "Request failed").await;
    assert!(
        failed.contains("corrupt JSON in the database: expected ident at line 1 column 2"),
        "the cause is logged: {failed}"
    );
    let times = log(c.dir.path()).matches("corrupt JSON").count();
    assert_eq!(times, 1, "logged once: {}", log(c.dir.path()));
    assert_stops_cleanly(c.process);
}
