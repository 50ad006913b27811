//! What the logger keeps out: API calls without the platform's secret, syslog from sources not
//! allowed (an app container), and lines for apps that do not exist. A flood of made-up app
//! names leaves its memory where it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_logger::Config;
use deis_proto::logger::v1 as pb;
use deis_proto::logger::v1::log_service_client::LogServiceClient;
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{eventually, http_get, http_request};
use tokio::io::AsyncWriteExt;

use crate::ingest::{client, logger_configured, logger_on, messages};

fn entry(app: &str, message: &str) -> pb::LogEntry {
    pb::LogEntry {
        app: app.to_owned(),
        source: "web.1".to_owned(),
        time: None,
        message: message.to_owned(),
        offset: 0,
    }
}

/// A counter or gauge from `/metrics` (0 when absent).
fn metric(api: SocketAddr, series: &str) -> u64 {
    let (_, text) = http_get(api, "/metrics").expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_secret() {
    let l = logger_on(None).await;
    client(&l)
        .await
        .push(pb::PushRequest {
            shipper: "host/c1".to_owned(),
            sequence: 1,
            entries: vec![entry("shop", "kept")],
        })
        .await
        .expect("push with the secret");

    // gRPC without the secret, or with another one.
    let mut stranger = LogServiceClient::connect(format!("http://{}", l.api))
        .await
        .expect("connect");
    let refused = stranger
        .query(pb::QueryRequest {
            app: "shop".to_owned(),
            lines: 10,
        })
        .await
        .expect_err("a query without the secret");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    for call in [
        stranger
            .push(pb::PushRequest {
                shipper: "forger".to_owned(),
                sequence: 1,
                entries: vec![entry("shop", "forged")],
            })
            .await
            .map(|_| ()),
        stranger
            .delete(pb::DeleteRequest {
                app: "shop".to_owned(),
            })
            .await
            .map(|_| ()),
    ] {
        assert_eq!(
            call.expect_err("refused").code(),
            tonic::Code::Unauthenticated
        );
    }
    // HTTP without it, or with a wrong one.
    for headers in [vec![], vec![("Authorization", "Bearer not-the-secret")]] {
        let (status, body) = http_request(l.api, "GET", "/shop", &headers).expect("GET");
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("/deis/logs/secret"), "{body}");
        let (status, _) = http_request(l.api, "DELETE", "/shop", &headers).expect("DELETE");
        assert_eq!(status, 401);
    }
    assert_eq!(
        messages(&l, "shop").await,
        ["web.1|kept"],
        "nothing forged or erased"
    );
    assert_eq!(http_get(l.api, "/healthz").expect("health").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_only_from_allowed_sources_and_lines_only_for_apps_that_exist() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        listen: loopback,
        syslog_udp: Some(loopback),
        syslog_tcp: None,
        syslog_from: vec!["127.0.0.1/32".parse().expect("network")],
        ..Config::default()
    };
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let l = logger_configured(config, store.clone()).await;
    let udp_to = |from: &'static str| async move {
        tokio::net::UdpSocket::bind(format!("{from}:0"))
            .await
            .expect("bind")
    };
    // An "app container" (another address) forges a line into shop's log.
    let outsider = udp_to("127.0.0.2").await;
    outsider
        .send_to(b"<14>1 - host shop web.1 - - forged", l.udp_addr())
        .await
        .expect("send");
    // A line for an app that does not exist, from an allowed source.
    let platform = udp_to("127.0.0.1").await;
    platform
        .send_to(b"<14>1 - host ghost web.1 - - nobody", l.udp_addr())
        .await
        .expect("send");
    platform
        .send_to(b"<14>1 - host shop web.1 - - genuine", l.udp_addr())
        .await
        .expect("send");
    eventually(Duration::from_secs(10), "the genuine line", || async {
        let got = messages(&l, "shop").await;
        if got == ["web.1|genuine"] {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    eventually(Duration::from_secs(10), "both refusals counted", || async {
        let counts = (
            metric(
                l.api,
                "deis_logger_lines_refused_total{reason=\"source not allowed\"}",
            ),
            metric(
                l.api,
                "deis_logger_lines_refused_total{reason=\"unknown app\"}",
            ),
        );
        if counts == (1, 1) {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await;
    assert!(messages(&l, "ghost").await.is_empty());
    // gRPC pushes for apps that do not exist are acknowledged and not kept.
    let stored = client(&l)
        .await
        .push(pb::PushRequest {
            shipper: "host/c2".to_owned(),
            sequence: 1,
            entries: vec![entry("ghost", "x"), entry("shop", "pushed")],
        })
        .await
        .expect("push")
        .into_inner()
        .stored;
    assert_eq!(stored, 1);
    assert_eq!(
        metric(l.api, "deis_logger_apps_held"),
        1,
        "only shop's ring"
    );
    // An app created a moment after the logger read the app list (the refusal of `ghost` just
    // made it read it): the shippers' first lines for it are kept, none lost.
    crate::ingest::create_app(store.as_ref(), "fresh").await;
    let stored = client(&l)
        .await
        .push(pb::PushRequest {
            shipper: "host/c3".to_owned(),
            sequence: 1,
            entries: vec![entry("fresh", "first line")],
        })
        .await
        .expect("push")
        .into_inner()
        .stored;
    assert_eq!(stored, 1);
    assert_eq!(messages(&l, "fresh").await, ["web.1|first line"]);
}

/// This process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The stated bound: 100,000 forged lines, each for a different made-up app, add no ring and
/// less than 64 MiB of resident memory (a ring with its follower channel per name took
/// hundreds of kilobytes each, tens of gigabytes in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_app_names_leaves_memory_bounded() {
    const LINES: u64 = 100_000;
    const BOUND: u64 = 64 << 20;
    let l = logger_on(None).await;
    let before = resident();
    let mut tcp = tokio::net::TcpStream::connect(l.tcp_addr())
        .await
        .expect("connect");
    let mut chunk = String::new();
    for i in 0..LINES {
        chunk.push_str(&format!("<14>1 - host forged{i} web.1 - - flood\n"));
        if chunk.len() > 64 * 1024 {
            tcp.write_all(chunk.as_bytes()).await.expect("write");
            chunk.clear();
        }
    }
    tcp.write_all(chunk.as_bytes()).await.expect("write");
    tcp.shutdown().await.expect("close");
    eventually(
        Duration::from_secs(60),
        "every forged line refused",
        || async {
            let refused = metric(
                l.api,
                "deis_logger_lines_refused_total{reason=\"unknown app\"}",
            );
            if refused == LINES {
                Ok(())
            } else {
                Err(refused.to_string())
            }
        },
    )
    .await;
    let grown = resident().saturating_sub(before);
    eprintln!(
        "figure: {LINES} forged app names grew resident memory by {} KiB",
        grown >> 10
    );
    assert!(grown < BOUND, "resident memory grew by {grown} bytes");
    assert_eq!(
        metric(l.api, "deis_logger_apps_held"),
        0,
        "no ring was made"
    );
    assert!(messages(&l, "forged7").await.is_empty());
}
