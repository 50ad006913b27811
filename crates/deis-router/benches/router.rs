//! Router benchmarks, each against its references in the same run:
//!
//! - throughput and latency: `wrk` (2 threads, keep-alive, small responses) through Debian's
//!   nginx and HAProxy, each configured as the equivalent reverse proxy (2 workers or threads,
//!   the router's 2 worker threads; upstream keep-alive; no access log; `haproxy.cfg` beside
//!   this file), and through the `deis-router` binary, to the same upstream (a third nginx
//!   answering a fixed 13-byte body), at 100 and 1000 connections, alternating the three,
//!   `ROUNDS` times each (`plain`).
//! - the same over HTTPS at 1000 keep-alive connections (`tls`), and new TLS connections per
//!   second: wrk with `Connection: close` over HTTPS at 100 connections (`handshakes`). One
//!   self-signed ECDSA P-256 certificate for all three.
//! - memory for 10,000 idle keep-alive client connections: resident memory of each proxy (nginx's
//!   master and workers summed) before and with them open, first, on fresh processes (`idle`).
//! - what each proxy spends per request at 1000 connections: system calls, context switches and
//!   CPU time in user and kernel mode (`costs`, see `router/costs.rs`).
//! - route propagation: the time from a route written to etcd until the router serves it,
//!   p50/p99 over 200 new apps; route churn under load: `wrk` at 100 connections while 100
//!   deploy-like route changes happen (new backend key written, old one deleted, alternating two
//!   upstream ports): failed requests (`routes`).
//!
//! Run: `cargo bench -p deis-router --bench router` (needs `apt-get install -y nginx wrk
//! haproxy etcd-server`); `ROUTER_BENCH=plain,tls` runs only those parts (`plain`, `tls`,
//! `handshakes`, `idle`, `costs`, `routes`). Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout)]

#[path = "router/costs.rs"]
mod costs;
#[path = "router/idle.rs"]
mod idle;
#[path = "router/procs.rs"]
mod procs;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deis_store::{ConfigStore, StoreConfig};
use deis_testkit::{Etcd, ServiceProcess, eventually, free_addr};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use procs::{Run, Stopped, haproxy, nginx, sh, temp_paths, wrk};

const ROUTER: &str = env!("CARGO_BIN_EXE_deis-router");
const HOST: &str = "bench.example.com";
const DURATION: &str = "10s";
const ROUNDS: usize = 2;
const IDLE_CONNECTIONS: usize = 10_000;
const NAMES: [&str; 3] = ["nginx 1.22.1", "HAProxy 2.6.12", "deis-router"];

/// A proxy under test: its plain and TLS addresses and its process id.
#[derive(Clone, Copy)]
struct Proxy {
    http: SocketAddr,
    https: SocketAddr,
    pid: u32,
}

/// Runs `wrk` against the three proxies in turn, `ROUNDS` times; the averages.
fn alternate(proxies: &[Proxy; 3], what: &str, run: impl Fn(&Proxy) -> Run) -> [Run; 3] {
    let mut sums = [Run::default(); 3];
    for _ in 0..ROUNDS {
        for (i, proxy) in proxies.iter().enumerate() {
            let r = run(proxy);
            println!("{what}, {}: {r:?}", NAMES[i]);
            sums[i].rps += r.rps / ROUNDS as f64;
            sums[i].p50_ms += r.p50_ms / ROUNDS as f64;
            sums[i].p99_ms += r.p99_ms / ROUNDS as f64;
            sums[i].errors += r.errors;
        }
    }
    sums
}

/// The rows of one comparison and the router's ratios to each reference.
fn rows(report: &mut String, label: &str, runs: &[Run; 3]) {
    for (name, r) in NAMES.iter().zip(runs) {
        let _ = writeln!(
            report,
            "| {label} | {name} | {:.0} | {:.2} | {:.2} | {} |",
            r.rps, r.p50_ms, r.p99_ms, r.errors
        );
    }
    for (i, name) in ["nginx", "HAProxy"].iter().enumerate() {
        let _ = writeln!(
            report,
            "| {label} | **router/{name}** | **{:.2}** | {:.2} | **{:.2}** | |",
            runs[2].rps / runs[i].rps,
            runs[2].p50_ms / runs[i].p50_ms,
            runs[2].p99_ms / runs[i].p99_ms,
        );
    }
}

fn wants(part: &str) -> bool {
    std::env::var("ROUTER_BENCH").map_or(true, |parts| parts.split(',').any(|p| p.trim() == part))
}

/// Certificate, key and both in one file (HAProxy's form), for `*.example.com`.
fn certificate(dir: &Path) -> (String, String) {
    let names = vec![HOST.to_owned(), "*.example.com".to_owned()];
    let c = rcgen::generate_simple_self_signed(names).expect("certificate");
    let (cert, key) = (c.cert.pem(), c.signing_key.serialize_pem());
    std::fs::write(dir.join("cert.pem"), &cert).expect("write cert");
    std::fs::write(dir.join("key.pem"), &key).expect("write key");
    std::fs::write(dir.join("both.pem"), format!("{cert}{key}")).expect("write pem");
    (cert, key)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, addr, host, count] = args.as_slice()
        && flag == "--idle-client"
    {
        let addr = addr.parse().expect("address");
        return idle::client(addr, host, count.parse().expect("count")).await;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let etcd = Etcd::start().await;
    let store = deis_store::connect(&StoreConfig::from_endpoints(&[etcd.endpoint()]))
        .await
        .expect("connect to etcd");
    let (cert, key) = certificate(dir.path());
    let temp = temp_paths(dir.path());

    // The upstream: nginx answering a fixed body on two ports.
    let (up_a, up_b) = (free_addr(), free_addr());
    let upstream = nginx(
        dir.path(),
        "upstream",
        &format!(
            "worker_processes 1;\nevents {{ worker_connections 30000; }}\nhttp {{ access_log off; {temp} keepalive_requests 1000000;\n server {{ listen {up_a} backlog=4096; listen {up_b} backlog=4096; location / {{ return 200 \"hello, world\\n\"; }} }} }}\n",
        ),
    );

    // The references: nginx and HAProxy as the equivalent reverse proxy.
    let (nginx_http, nginx_https) = (free_addr(), free_addr());
    let reference = nginx(
        dir.path(),
        "reference",
        &format!(
            "worker_processes 2;\nevents {{ worker_connections 30000; }}\nhttp {{ access_log off; {temp} keepalive_requests 1000000;\n upstream app {{ server {up_a}; keepalive 512; }}\n server {{ listen {nginx_http} backlog=4096; listen {nginx_https} ssl backlog=4096; ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem; ssl_protocols TLSv1.2 TLSv1.3; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Proto $scheme; proxy_buffering off; }} }} }}\n",
            d = dir.path().display(),
        ),
    );
    let (haproxy_http, haproxy_https) = (free_addr(), free_addr());
    let second = haproxy(
        dir.path(),
        haproxy_http,
        haproxy_https,
        &dir.path().join("both.pem"),
        up_a,
    );

    // Ours, fed by etcd.
    let (router_http, router_https, admin) = (free_addr(), free_addr(), free_addr());
    for (key, value) in [
        ("/deis/router/accessLog", "off"),
        ("/deis/router/sslCert", cert.as_str()),
        ("/deis/router/sslKey", key.as_str()),
        ("/deis/services/bench", "bench"),
        ("/deis/services/bench/bench_v1.web.1", &up_a.to_string()),
    ] {
        store.put(key, value, None).await.expect("store");
    }
    let line = format!(
        "env RUST_LOG=warn DEIS_ROUTER_WORKERS=2 DEIS_ETCD_ENDPOINTS={} DEIS_ROUTER_LISTEN={router_http} DEIS_ROUTER_ADMIN_LISTEN={admin} DEIS_ROUTER_HTTPS_LISTEN={router_https} DEIS_PLATFORM_DOMAIN=example.com {ROUTER}",
        etcd.endpoint()
    );
    let router = Stopped(ServiceProcess::spawn(
        "deis-router",
        sh(&line),
        &dir.path().join("router.log"),
    ));
    let proxies = [
        Proxy {
            http: nginx_http,
            https: nginx_https,
            pid: reference.0.pid(),
        },
        Proxy {
            http: haproxy_http,
            https: haproxy_https,
            pid: second.0.pid(),
        },
        Proxy {
            http: router_http,
            https: router_https,
            pid: router.0.pid(),
        },
    ];
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
    for (proxy, name) in proxies.iter().zip(NAMES) {
        let log = ["reference.log", "haproxy.log", "router.log"]
            [NAMES.iter().position(|n| *n == name).unwrap_or(0)];
        let log = dir.path().join(log);
        eventually(
            Duration::from_secs(20),
            &format!("{name} to serve"),
            || async {
                match status(proxy.http, HOST.to_owned()).await {
                    Ok(200) => Ok(()),
                    other => Err(format!(
                        "{other:?}; its log: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )),
                }
            },
        )
        .await;
    }

    let mut report = String::new();
    // First, while every process is fresh.
    if wants("idle") {
        let _ = writeln!(
            report,
            "Memory for {IDLE_CONNECTIONS} idle keep-alive connections (resident, MiB):\n\n| proxy | before | with the connections | for the connections | connections made |\n|---|---|---|---|---|"
        );
        let mut deltas = [0.0; 3];
        for (i, proxy) in proxies.iter().enumerate() {
            let (before, with, made) = idle::measure(proxy.pid, proxy.http, HOST, IDLE_CONNECTIONS);
            let mib = |kib: u64| kib as f64 / 1024.0;
            deltas[i] = mib(with.saturating_sub(before));
            let _ = writeln!(
                report,
                "| {} | {:.1} | {:.1} | {:.1} | {made} |",
                NAMES[i],
                mib(before),
                mib(with),
                deltas[i]
            );
        }
        let _ = writeln!(
            report,
            "| **router/nginx** | | | **{:.2}** | |",
            deltas[2] / deltas[0]
        );
    }
    let _ = writeln!(
        report,
        "\n| load | proxy | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|"
    );
    if wants("plain") {
        for connections in [100, 1000] {
            let label = format!("HTTP, {connections} connections");
            let runs = alternate(&proxies, &label, |p| {
                wrk(
                    &format!("http://{}/", p.http),
                    HOST,
                    connections,
                    DURATION,
                    "",
                )
            });
            rows(&mut report, &label, &runs);
        }
    }
    if wants("tls") {
        let label = "HTTPS keep-alive, 1000 connections";
        let runs = alternate(&proxies, label, |p| {
            wrk(&format!("https://{}/", p.https), HOST, 1000, DURATION, "")
        });
        rows(&mut report, label, &runs);
    }
    if wants("handshakes") {
        let label = "new TLS connections (Connection: close), 100 connections";
        let runs = alternate(&proxies, label, |p| {
            let url = format!("https://{}/", p.https);
            wrk(&url, HOST, 100, DURATION, "Connection: close")
        });
        rows(&mut report, label, &runs);
    }
    if wants("costs") {
        let _ = writeln!(
            report,
            "\nPer request at 1000 connections:\n\n| proxy | requests/s | system calls | context switches | CPU µs, user | CPU µs, kernel | upstream CPU µs | machine CPU µs |\n|---|---|---|---|---|---|---|---|"
        );
        for (proxy, name) in proxies.iter().zip(NAMES) {
            let c = costs::measure(
                dir.path(),
                proxy.pid,
                upstream.0.pid(),
                &format!("http://{}/", proxy.http),
                HOST,
            );
            let _ = writeln!(
                report,
                "| {name} | {:.0} | {:.2} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} |",
                c.run.rps,
                c.syscalls,
                c.switches,
                c.user_us,
                c.kernel_us,
                c.upstream_us,
                c.machine_us
            );
        }
    }
    if std::env::var("ROUTER_BENCH").is_ok_and(|p| p == "profile") {
        // Not a part of the run: `perf record` on the router under wrk at 1000 connections,
        // its report written to `ROUTER_PROFILE` (default /tmp/router-profile.txt).
        let data = dir.path().join("perf.data");
        let perf = sh(&format!(
            "perf record -F 1999 -g -p {} -o {} -- sleep 8",
            router.0.pid(),
            data.display()
        ))
        .spawn()
        .expect("perf");
        // `ROUTER_PROFILE_LOAD=handshakes`: new TLS connections at 100 instead.
        let run = if std::env::var("ROUTER_PROFILE_LOAD").is_ok_and(|l| l == "handshakes") {
            let url = format!("https://{router_https}/");
            wrk(&url, HOST, 100, "10s", "Connection: close")
        } else {
            wrk(&format!("http://{router_http}/"), HOST, 1000, "10s", "")
        };
        println!("profiled: {run:?}");
        let _ = perf.wait_with_output();
        let out = std::env::var("ROUTER_PROFILE").unwrap_or("/tmp/router-profile.txt".to_owned());
        let _ = sh(&format!(
            "sh -c 'perf report -i {d} --no-children --sort dso --stdio > {out} 2>&1; perf report -i {d} --no-children -g none --sort dso,sym --percent-limit 0.3 --stdio >> {out} 2>&1'",
            d = data.display()
        ))
        .status();
    }
    if wants("routes") {
        routes(&store, router_http, up_a, up_b, &status, &mut report).await;
    }
    println!("\n{report}");
    drop((router, second, reference));
}

/// Route propagation and route churn under load.
async fn routes<F, Fut>(
    store: &Arc<dyn ConfigStore>,
    router: SocketAddr,
    up_a: SocketAddr,
    up_b: SocketAddr,
    status: &F,
    report: &mut String,
) where
    F: Fn(SocketAddr, String) -> Fut,
    Fut: std::future::Future<Output = Result<u16, String>>,
{
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
    let percentile = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1000.0
    };
    let _ = writeln!(
        report,
        "\nRoute propagation (etcd write → first 200), 200 changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0),
    );

    // Route churn under load: deploy-like changes (new container key, then the old one goes).
    let churn_store = store.clone();
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
    let url = format!("http://{router}/");
    let load = tokio::task::spawn_blocking(move || wrk(&url, HOST, 100, "10s", ""));
    churn.await.expect("churn");
    let run = load.await.expect("wrk");
    let _ = writeln!(
        report,
        "\nRoute churn: 100 route changes during {} requests at 100 connections ({:.0} req/s): {} failed",
        run.requests, run.rps, run.errors
    );
}
