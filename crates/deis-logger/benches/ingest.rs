//! Logger benchmarks on loopback, each next to its reference in the same run:
//!
//! - sustained ingest over TCP (newline-framed RFC 5424 lines, 2 connections, 5 s) until every
//!   line sent is counted as received and stored, against a bare TCP sink that only counts
//!   newlines (the floor the transport sets on this machine);
//! - UDP (one line per datagram, 3 s at full speed from one sender): lines stored, lines the
//!   logger saw, and the kernel's receive-buffer drops (`/proc/net/snmp` `RcvbufErrors`), against
//!   a bare UDP sink that only counts datagrams;
//! - fetching 1000 lines (gRPC `Query`), median of 50;
//! - a followed app: time from a line sent until a follower receives it, p50/p99 of 200.
//!
//! Run: `cargo bench -p deis-logger --bench ingest`. Results go in docs/benchmarks.md.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deis_logger::{Config, Listeners};
use deis_proto::logger::v1 as pb;
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::http_get;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

const LINE: &str = "<14>1 2026-11-22T03:00:00.000000Z host bench web.1 - - GET / 200 1.2ms user-agent=wrk request-id=0123456789abcdef\n";

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.contains("app=\"bench\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn metrics(api: SocketAddr) -> String {
    http_get(api, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Sends newline lines over `connections` TCP connections for `seconds`; lines sent.
fn tcp_load(addr: SocketAddr, connections: usize, seconds: u64) -> u64 {
    let chunk: String = LINE.repeat(256);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                let until = Instant::now() + Duration::from_secs(seconds);
                let mut sent = 0u64;
                while Instant::now() < until {
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        break;
                    }
                    sent += 256;
                }
                sent
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

/// Sends one line per datagram for `seconds`; datagrams sent.
fn udp_load(addr: SocketAddr, seconds: u64) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0u64;
    while Instant::now() < until {
        for _ in 0..64 {
            if socket.send_to(LINE.as_bytes(), addr).is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

async fn wait_for(api: SocketAddr, name: &str, target: u64, limit: Duration) -> (u64, Duration) {
    let started = Instant::now();
    loop {
        let now = tokio::task::spawn_blocking(move || metrics(api))
            .await
            .unwrap_or_default();
        let n = counter(&now, name);
        if n >= target || started.elapsed() > limit {
            return (n, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        listen: loopback,
        syslog_udp: Some(loopback),
        syslog_tcp: Some(loopback),
        ..Config::default()
    };
    let listeners = Listeners::bind(&config).await.expect("bind");
    let api = listeners.http.local_addr().expect("addr");
    let udp = listeners
        .udp
        .as_ref()
        .expect("udp")
        .local_addr()
        .expect("addr");
    let tcp = listeners
        .tcp
        .as_ref()
        .expect("tcp")
        .local_addr()
        .expect("addr");
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    // The logger stores lines only for apps that exist.
    for app in ["bench", "followed"] {
        store
            .put(&format!("/deis/services/{app}"), "owner", None)
            .await
            .expect("store");
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(deis_logger::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));

    // References: sinks that only count.
    let sink = tokio::net::TcpListener::bind(loopback).await.expect("bind");
    let sink_addr = sink.local_addr().expect("addr");
    let sunk = Arc::new(AtomicU64::new(0));
    {
        let sunk = sunk.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = sink.accept().await {
                let sunk = sunk.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
                        sunk.fetch_add(lines as u64, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    let udp_sink = tokio::net::UdpSocket::bind(loopback).await.expect("bind");
    let udp_sink_addr = udp_sink.local_addr().expect("addr");
    let udp_sunk = Arc::new(AtomicU64::new(0));
    {
        let udp_sunk = udp_sunk.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while udp_sink.recv_from(&mut buf).await.is_ok() {
                udp_sunk.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    // TCP: the sink, then the logger.
    let started = Instant::now();
    let sent = tokio::task::spawn_blocking(move || tcp_load(sink_addr, 2, 5))
        .await
        .expect("load");
    while sunk.load(Ordering::Relaxed) < sent && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sink_rate = sent as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let sent = tokio::task::spawn_blocking(move || tcp_load(tcp, 2, 5))
        .await
        .expect("load");
    let (stored, _) = wait_for(
        api,
        "deis_logger_lines_stored_total",
        sent,
        Duration::from_secs(60),
    )
    .await;
    let tcp_rate = stored as f64 / started.elapsed().as_secs_f64();
    let text = metrics(api);
    println!(
        "TCP: sink {sink_rate:.0} lines/s; logger {tcp_rate:.0} lines/s ({stored} of {sent} stored, dropped {}, evicted {}); ratio {:.2}",
        counter(&text, "deis_logger_lines_dropped_total"),
        counter(&text, "deis_logger_lines_evicted_total"),
        tcp_rate / sink_rate
    );

    // UDP: the sink, then the logger.
    let sent = tokio::task::spawn_blocking(move || udp_load(udp_sink_addr, 3))
        .await
        .expect("load");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sink_got = udp_sunk.load(Ordering::Relaxed);
    println!(
        "UDP sink: {sent} sent in 3 s ({:.0}/s), {sink_got} received ({:.1} % lost in the kernel)",
        sent as f64 / 3.0,
        100.0 * (sent - sink_got.min(sent)) as f64 / sent as f64
    );
    let before_received = counter(&metrics(api), "deis_logger_lines_received_total");
    let kernel_before = rcvbuf_errors();
    let sent = tokio::task::spawn_blocking(move || udp_load(udp, 3))
        .await
        .expect("load");
    let (received, _) = wait_for(
        api,
        "deis_logger_lines_received_total",
        before_received + sent,
        Duration::from_secs(2),
    )
    .await;
    let received = received - before_received;
    let kernel = rcvbuf_errors() - kernel_before;
    let reported = metrics(api)
        .lines()
        .find(|l| l.starts_with("deis_logger_udp_socket_drops_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    println!("UDP logger: its /metrics reports {reported} kernel drops on its socket");
    println!(
        "UDP logger: {sent} sent in 3 s ({:.0}/s), {received} received and stored ({:.0}/s), {} not received: the kernel counted {kernel} receive-buffer drops (all sockets)",
        sent as f64 / 3.0,
        received as f64 / 3.0,
        sent - received.min(sent)
    );

    // Fetching 1000 lines.
    let mut client = deis_runtime::log_client(store.as_ref(), format!("http://{api}"))
        .await
        .expect("connect");
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let got = client
            .query(pb::QueryRequest {
                app: "bench".into(),
                lines: 1000,
            })
            .await
            .expect("query")
            .into_inner()
            .entries
            .len();
        assert_eq!(got, 1000);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "Query of 1000 lines (gRPC): median {:.2} ms",
        times[25].as_secs_f64() * 1000.0
    );

    // Follow latency.
    let mut follow = client
        .follow(pb::FollowRequest {
            app: "followed".into(),
            lines: 0,
        })
        .await
        .expect("follow")
        .into_inner();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut latencies = Vec::new();
    for i in 0..200 {
        let line = format!("<14>1 - host followed web.1 - - ping {i}");
        let t = Instant::now();
        sender.send_to(line.as_bytes(), udp).expect("send");
        let e = follow.message().await.expect("stream").expect("entry");
        assert_eq!(e.message, format!("ping {i}"));
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "Follow: line sent until a follower has it, 200 lines: p50 {:.3} ms, p99 {:.3} ms",
        latencies[100].as_secs_f64() * 1000.0,
        latencies[198].as_secs_f64() * 1000.0
    );
    shutdown.cancel();
}
