//! Router benchmarks, each against its reference in the same run:
//!
//! - throughput and latency: `wrk` (2 threads, keep-alive, small responses) through the
//!   `deis-router` binary and through Debian's nginx configured as the equivalent reverse proxy
//!   (2 worker processes, the router's 2 worker threads; upstream keep-alive; no access log on
//!   either), to the same upstream (a third nginx answering a fixed 13-byte body), at 100 and
//!   1000 connections, alternating nginx and router, `ROUNDS` times each.
//! - route propagation: the time from a route written to etcd until the router serves it,
//!   p50/p99 over 200 new apps.
//! - route churn under load: `wrk` at 100 connections while 100 deploy-like route changes happen
//!   (new backend key written, old one deleted, alternating two upstream ports): failed requests.
//!
//! Run: `cargo bench -p deis-router --bench router` (needs `apt-get install -y nginx wrk
//! etcd-server`). Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deis_store::{ConfigStore, StoreConfig};
use deis_testkit::{Etcd, ServiceProcess, eventually, free_addr, require};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const ROUTER: &str = env!("CARGO_BIN_EXE_deis-router");
const HOST: &str = "bench.example.com";
const DURATION: &str = "10s";
const ROUNDS: usize = 2;

/// One wrk run's figures.
#[derive(Debug, Default, Clone, Copy)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    requests: u64,
}

/// Runs a shell line with a high file descriptor limit (1000 connections need it).
fn sh(line: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -n \"$(ulimit -Hn)\"; exec {line}"));
    c
}

fn nginx(dir: &Path, name: &str, body: &str) -> ServiceProcess {
    let conf = dir.join(format!("{name}.conf"));
    let config = format!(
        "daemon off;\nworker_rlimit_nofile 16384;\npid {pid};\nerror_log {dir}/{name}-error.log warn;\n{body}",
        pid = dir.join(format!("{name}.pid")).display(),
        dir = dir.display(),
    );
    std::fs::write(&conf, config).expect("write nginx config");
    let nginx = require("nginx", "nginx");
    let line = format!(
        "{} -p {} -c {}",
        nginx.display(),
        dir.display(),
        conf.display()
    );
    ServiceProcess::spawn(name, sh(&line), &dir.join(format!("{name}.log")))
}

fn temp_paths(dir: &Path) -> String {
    let t = |n: &str| dir.join(n).display().to_string();
    format!(
        "client_body_temp_path {}; proxy_temp_path {}; fastcgi_temp_path {}; uwsgi_temp_path {}; scgi_temp_path {};",
        t("body"),
        t("proxy"),
        t("fastcgi"),
        t("uwsgi"),
        t("scgi")
    )
}

fn wrk(addr: SocketAddr, connections: usize, duration: &str) -> Run {
    let wrk = require("wrk", "wrk");
    let line = format!(
        "{} -t2 -c{connections} -d{duration} --latency -H 'Host: {HOST}' http://{addr}/",
        wrk.display()
    );
    let out = sh(&line).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

fn ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = value.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Option<Run> {
    let mut run = Run::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => run.rps = v.parse().ok()?,
            ["50%", v] => run.p50_ms = ms(v)?,
            ["99%", v] => run.p99_ms = ms(v)?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        run.errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    (run.rps > 0.0).then_some(run)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let etcd = Etcd::start().await;
    let store = deis_store::connect(&StoreConfig::from_endpoints(&[etcd.endpoint()]))
        .await
        .expect("connect to etcd");

    // The upstream: nginx answering a fixed body on two ports.
    let (up_a, up_b) = (free_addr(), free_addr());
    let _upstream = nginx(
        dir.path(),
        "upstream",
        &format!(
            "worker_processes 1;\nevents {{ worker_connections 8192; }}\nhttp {{ access_log off; {temp} keepalive_requests 1000000;\n server {{ listen {up_a} backlog=4096; listen {up_b} backlog=4096; location / {{ return 200 \"hello, world\\n\"; }} }} }}\n",
            temp = temp_paths(dir.path()),
        ),
    );

    // The reference: nginx as the equivalent reverse proxy.
    let reference = free_addr();
    let _reference = nginx(
        dir.path(),
        "reference",
        &format!(
            "worker_processes 2;\nevents {{ worker_connections 8192; }}\nhttp {{ access_log off; {temp} keepalive_requests 1000000;\n upstream app {{ server {up_a}; keepalive 512; }}\n server {{ listen {reference} backlog=4096; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Proto $scheme; proxy_buffering off; }} }} }}\n",
            temp = temp_paths(dir.path()),
        ),
    );

    // Ours, fed by etcd.
    let (router, admin) = (free_addr(), free_addr());
    let line = format!(
        "env RUST_LOG=warn TOKIO_WORKER_THREADS=2 DEIS_ETCD_ENDPOINTS={} DEIS_ROUTER_LISTEN={router} DEIS_ROUTER_ADMIN_LISTEN={admin} DEIS_ROUTER_HTTPS_LISTEN=off DEIS_PLATFORM_DOMAIN=example.com {ROUTER}",
        etcd.endpoint()
    );
    let _router = ServiceProcess::spawn("deis-router", sh(&line), &dir.path().join("router.log"));
    store
        .put("/deis/router/accessLog", "off", None)
        .await
        .expect("store");
    store
        .put("/deis/services/bench", "bench", None)
        .await
        .expect("store");
    store
        .put(
            "/deis/services/bench/bench_v1.web.1",
            &up_a.to_string(),
            None,
        )
        .await
        .expect("store");
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let status = |addr: SocketAddr, host: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(format!("http://{addr}/"))
                .header(http::header::HOST, host)
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            Ok::<u16, String>(status)
        }
    };
    for addr in [reference, router] {
        eventually(Duration::from_secs(20), "the proxies to serve", || async {
            match status(addr, HOST.to_owned()).await {
                Ok(200) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| connections | proxy | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|"
    );
    for connections in [100, 1000] {
        let mut sums = [Run::default(); 2];
        for _ in 0..ROUNDS {
            for (i, addr) in [reference, router].into_iter().enumerate() {
                let run = wrk(addr, connections, DURATION);
                println!(
                    "{connections} conns, {}: {run:?}",
                    ["nginx", "deis-router"][i]
                );
                sums[i].rps += run.rps / ROUNDS as f64;
                sums[i].p50_ms += run.p50_ms / ROUNDS as f64;
                sums[i].p99_ms += run.p99_ms / ROUNDS as f64;
                sums[i].errors += run.errors;
            }
        }
        for (i, name) in ["nginx 1.22", "deis-router"].iter().enumerate() {
            let r = sums[i];
            let _ = writeln!(
                report,
                "| {connections} | {name} | {:.0} | {:.2} | {:.2} | {} |",
                r.rps, r.p50_ms, r.p99_ms, r.errors
            );
        }
        let _ = writeln!(
            report,
            "| {connections} | **ratio router/nginx** | **{:.2}** | {:.2} | {:.2} | |",
            sums[1].rps / sums[0].rps,
            sums[1].p50_ms / sums[0].p50_ms,
            sums[1].p99_ms / sums[0].p99_ms,
        );
    }

    // Route propagation: a new app's route, written to etcd, until the router serves it.
    let mut times = Vec::new();
    for i in 0..200 {
        let app = format!("prop{i}");
        store
            .put(&format!("/deis/services/{app}"), "bench", None)
            .await
            .expect("store");
        let host = format!("{app}.example.com");
        eventually(Duration::from_secs(5), "the app to be known", || {
            let host = host.clone();
            async move {
                match status(router, host).await {
                    Ok(503) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        let started = Instant::now();
        store
            .put(
                &format!("/deis/services/{app}/{app}_v1.web.1"),
                &up_a.to_string(),
                None,
            )
            .await
            .expect("store");
        loop {
            if let Ok(200) = status(router, host.clone()).await {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "route never served"
            );
        }
        times.push(started.elapsed());
    }
    times.sort();
    let _ = writeln!(
        report,
        "\nRoute propagation (etcd write → first 200), 200 changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0),
    );

    // Route churn under load: deploy-like changes (new container key, then the old one goes).
    let churn_store: Arc<dyn ConfigStore> = store.clone();
    let churn = tokio::spawn(async move {
        let mut previous = "bench_v1.web.1".to_owned();
        for version in 2..102 {
            let key = format!("bench_v{version}.web.1");
            let backend = if version % 2 == 0 { up_b } else { up_a };
            churn_store
                .put(
                    &format!("/deis/services/bench/{key}"),
                    &backend.to_string(),
                    None,
                )
                .await
                .expect("store");
            tokio::time::sleep(Duration::from_millis(40)).await;
            churn_store
                .delete(&format!("/deis/services/bench/{previous}"))
                .await
                .expect("store");
            tokio::time::sleep(Duration::from_millis(40)).await;
            previous = key;
        }
    });
    let load = tokio::task::spawn_blocking(move || wrk(router, 100, "10s"));
    churn.await.expect("churn");
    let run = load.await.expect("wrk");
    let _ = writeln!(
        report,
        "\nRoute churn: 100 route changes during {} requests at 100 connections ({:.0} req/s): {} failed",
        run.requests, run.rps, run.errors
    );
    println!("\n{report}");
}
