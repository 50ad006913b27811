//! Controller API benchmark, each figure against the same process's `GET /healthz` in the same
//! run: `wrk` (2 threads, 50 connections, keep-alive) on `GET /v1/apps` (a user's 100 apps,
//! one page) and `GET /v1/apps/<app>`, with the user's token, on SQLite and on PostgreSQL.
//!
//! Run: `cargo bench -p deis-controller --bench api` (needs `apt-get install -y wrk
//! postgresql`). Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use deis_testkit::{Postgres, ServiceProcess, eventually, free_addr};

const CONTROLLER: &str = env!("CARGO_BIN_EXE_deis-controller");
const APPS: usize = 100;
const CONNECTIONS: usize = 50;
const DURATION: &str = "8s";
const ROUNDS: usize = 2;

use deis_testkit::wrk::WrkRun as Run;

/// `method path` with a JSON body and an optional token: the status and the body.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the controller");
    let auth = token.map_or(String::new(), |t| format!("Authorization: token {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn wrk(addr: SocketAddr, path: &str, token: &str) -> Run {
    deis_testkit::wrk::wrk(&format!(
        "-c{CONNECTIONS} -d{DURATION} -H 'Authorization: token {token}' http://{addr}{path}"
    ))
}

/// A controller on `database` (SQLite when `None`), with an administrator and a user who owns
/// `APPS` apps: the process, its address, the user's token and one app.
async fn controller(
    database: Option<&str>,
    dir: &std::path::Path,
) -> (ServiceProcess, SocketAddr, String, String) {
    let addr = free_addr();
    let mut command = Command::new(CONTROLLER);
    command
        .env("DEIS_CONTROLLER_LISTEN", addr.to_string())
        .env("DEIS_DATA_DIR", dir)
        .env("DEIS_SCHEDULER", "none")
        .env("DEIS_PLATFORM_DOMAIN", "bench.example.com")
        .env("RUST_LOG", "warn")
        .env_remove("DEIS_ETCD_ENDPOINTS")
        .env_remove("DATABASE_URL");
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    let process = ServiceProcess::spawn("controller", command, &dir.join("controller.log"));
    eventually(
        Duration::from_secs(60),
        "the controller answering",
        || async {
            match deis_testkit::http_get(addr, "/healthz") {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let register = |name: &str| {
        let body = format!(
            "{{\"username\": \"{name}\", \"password\": \"bench-password\", \"email\": \"{name}@example.com\"}}"
        );
        let (status, out) = call(addr, "POST", "/v1/auth/register", None, &body);
        assert_eq!(status, 201, "register {name}: {out}");
        let body = format!("{{\"username\": \"{name}\", \"password\": \"bench-password\"}}");
        let (status, out) = call(addr, "POST", "/v1/auth/login", None, &body);
        assert_eq!(status, 200, "login {name}: {out}");
        let token: serde_json::Value = serde_json::from_str(&out).expect("login's JSON");
        token["token"].as_str().expect("a token").to_owned()
    };
    register("admin");
    let token = register("owner");
    for i in 0..APPS {
        let (status, out) = call(
            addr,
            "POST",
            "/v1/apps",
            Some(&token),
            &format!("{{\"id\": \"bench-{i:03}\"}}"),
        );
        assert_eq!(status, 201, "create an app: {out}");
    }
    (process, addr, token, "bench-050".to_owned())
}

fn print_row(label: &str, what: &str, run: Run, health: Run) {
    println!(
        "| {label} | {what} | {:.0} | {:.2} | {} | {:.3} |",
        run.rps,
        run.p99_ms,
        run.errors,
        run.rps / health.rps
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let postgres = Postgres::start().await;
        let url = postgres.create_database("bench");
        println!("| database | endpoint | requests/s | p99 ms | errors | ratio to /healthz |");
        println!("|---|---|---|---|---|---|");
        for (label, database) in [("SQLite", None), ("PostgreSQL", Some(url.as_str()))] {
            let dir = tempfile::tempdir().expect("a data directory");
            let (_process, addr, token, app) = controller(database, dir.path()).await;
            for _ in 0..ROUNDS {
                let health = wrk(addr, "/healthz", &token);
                print_row(label, "/healthz", health, health);
                let list = wrk(addr, "/v1/apps", &token);
                print_row(label, "/v1/apps (100 apps)", list, health);
                let one = wrk(addr, &format!("/v1/apps/{app}"), &token);
                print_row(label, "/v1/apps/<app>", one, health);
            }
        }
    });
}
