//! Lines in both syslog formats over UDP and TCP, stored once and in order, queried over gRPC
//! and HTTP, followed live, counted; unparsable input is kept and never stops ingestion.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_logger::{Config, Listeners};
use deis_proto::logger::v1 as pb;
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{eventually, http_request};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

pub(crate) struct Logger {
    pub(crate) api: SocketAddr,
    udp: SocketAddr,
    tcp: SocketAddr,
    store: Arc<dyn ConfigStore>,
    /// The platform's logger secret, which every API call presents.
    pub(crate) secret: String,
    shutdown: CancellationToken,
}

/// The apps every test logger knows (`/deis/services/<app>` in its store).
const APPS: [&str; 3] = ["shop", "live", "shared"];

/// Makes `app` an app of the platform, so that the logger stores its lines.
pub(crate) async fn create_app(store: &dyn ConfigStore, app: &str) {
    store
        .put(&format!("/deis/services/{app}"), "owner", None)
        .await
        .expect("store");
}

impl Logger {
    /// Where syslog datagrams go.
    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// Where syslog over TCP goes.
    pub(crate) fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// `GET path` on the HTTP API with the secret.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let bearer = format!("Bearer {}", self.secret);
        http_request(self.api, "GET", path, &[("Authorization", &bearer)]).expect("GET")
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn logger() -> Logger {
    logger_on(None).await
}

/// A logger keeping its lines in `redis` (a URL), or in memory.
pub(crate) async fn logger_on(redis: Option<String>) -> Logger {
    logger_with(redis, Arc::new(MemoryStore::new())).await
}

/// A logger on `redis` publishing its endpoint in `store`.
pub(crate) async fn logger_with(redis: Option<String>, store: Arc<dyn ConfigStore>) -> Logger {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        listen: loopback,
        syslog_udp: Some(loopback),
        syslog_tcp: Some(loopback),
        max_lines: 1000,
        redis_url: redis,
        ..Config::default()
    };
    logger_configured(config, store).await
}

/// A logger with `config` (its listen addresses are bound here) on `store`.
pub(crate) async fn logger_configured(config: Config, store: Arc<dyn ConfigStore>) -> Logger {
    for app in APPS {
        create_app(store.as_ref(), app).await;
    }
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
        .and_then(|t| t.local_addr().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let shutdown = CancellationToken::new();
    tokio::spawn(deis_logger::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));
    let secret =
        deis_runtime::shared_secret(store.as_ref(), &deis_store::keys::Key::logger_secret())
            .await
            .expect("the logger secret");
    Logger {
        api,
        udp,
        tcp,
        store,
        secret,
        shutdown,
    }
}

pub(crate) async fn client(l: &Logger) -> deis_runtime::LogClient {
    deis_runtime::log_client(l.store.as_ref(), format!("http://{}", l.api))
        .await
        .expect("gRPC connect")
}

pub(crate) async fn messages(l: &Logger, app: &str) -> Vec<String> {
    client(l)
        .await
        .query(pb::QueryRequest {
            app: app.to_owned(),
            lines: 1000,
        })
        .await
        .expect("query")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| format!("{}|{}", e.source, e.message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_over_udp_and_tcp_are_stored_in_order() {
    let l = logger().await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for (i, line) in [
        "<14>1 2016-03-01T12:00:00Z host shop web.1 - - udp 5424".to_owned(),
        "<13>Mar  1 12:00:01 host shop[web.2]: udp 3164".to_owned(),
        "2016-03-01T12:00:02UTC shop[deis-controller]: dev scaled web=2".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        udp.send_to(line.as_bytes(), l.udp).await.expect("send");
        let expected = i + 1;
        eventually(
            Duration::from_secs(5),
            "the datagram to be stored",
            || async {
                let got = messages(&l, "shop").await;
                if got.len() == expected {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            },
        )
        .await;
    }
    let mut tcp = tokio::net::TcpStream::connect(l.tcp)
        .await
        .expect("connect");
    let framed = "<14>1 2016-03-01T12:00:03Z host shop worker.1 - [meta x=\"1\"] tcp octet counted";
    let mut stream = format!("{} {framed}", framed.len());
    stream.push_str("<13>Mar  1 12:00:04 host shop[worker.1]: tcp newline\n");
    stream.push_str("\u{1}\u{2} not syslog at all\n");
    for i in 0..100 {
        stream.push_str(&format!(
            "<13>Mar  1 12:00:05 host shop[worker.2]: burst {i}\n"
        ));
    }
    tcp.write_all(stream.as_bytes()).await.expect("write");
    tcp.shutdown().await.expect("close");
    let got = eventually(Duration::from_secs(5), "the TCP lines", || async {
        let got = messages(&l, "shop").await;
        if got.len() == 105 {
            Ok(got)
        } else {
            Err(format!("{} lines", got.len()))
        }
    })
    .await;
    assert_eq!(
        &got[..5],
        [
            "web.1|udp 5424",
            "web.2|udp 3164",
            "deis-controller|dev scaled web=2",
            "worker.1|tcp octet counted",
            "worker.1|tcp newline",
        ]
    );
    let burst: Vec<String> = (0..100).map(|i| format!("worker.2|burst {i}")).collect();
    assert_eq!(&got[5..], burst.as_slice(), "in order, each once");
    assert_eq!(
        messages(&l, deis_logger::entry::UNPARSED).await,
        ["syslog|\u{1}\u{2} not syslog at all"],
        "kept as it came"
    );

    // The Deis HTTP API, and the counters.
    let (status, body) = l.get("/shop?log_lines=2");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            "{y}-03-01T12:00:05UTC shop[worker.2]: burst 98\n{y}-03-01T12:00:05UTC shop[worker.2]: burst 99\n",
            y = chrono_year()
        )
    );
    assert_eq!(l.get("/nothing").0, 204);
    let (_, metrics) = deis_testkit::http_get(l.api, "/metrics").expect("metrics");
    assert!(
        metrics.contains("deis_logger_lines_received_total{app=\"shop\"} 105"),
        "{metrics}"
    );
    assert!(
        metrics.contains("deis_logger_lines_stored_total{app=\"shop\"} 105"),
        "{metrics}"
    );
}

fn chrono_year() -> String {
    // RFC 3164 carries no year; the logger uses the current one.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days since 1970 to a year, good for 1970..2100.
    let mut days = secs / 86_400;
    let mut year = 1970;
    loop {
        let len = if year % 4 == 0 { 366 } else { 365 };
        if days < len {
            return year.to_string();
        }
        days -= len;
        year += 1;
    }
}

#[tokio::test]
async fn a_follower_gets_the_tail_then_new_lines_and_pushes_are_stored_once() {
    let l = logger().await;
    let mut c = client(&l).await;
    let entry = |message: &str| pb::LogEntry {
        app: "live".to_owned(),
        source: "web.1".to_owned(),
        time: None,
        message: message.to_owned(),
        offset: 0,
    };
    let push = |sequence: u64, messages: &[&str]| pb::PushRequest {
        shipper: "host-a".to_owned(),
        sequence,
        entries: messages.iter().map(|m| entry(m)).collect(),
    };
    assert_eq!(
        c.push(push(1, &["one", "two"]))
            .await
            .expect("push")
            .into_inner()
            .stored,
        2
    );
    assert_eq!(
        c.push(push(1, &["one", "two"]))
            .await
            .expect("push")
            .into_inner()
            .stored,
        0,
        "a retried batch is not stored twice"
    );
    let mut follow = c
        .follow(pb::FollowRequest {
            app: "live".to_owned(),
            lines: 1,
        })
        .await
        .expect("follow")
        .into_inner();
    let first = follow.message().await.expect("stream").expect("an entry");
    assert_eq!(first.message, "two", "the tail first");
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    udp.send_to(b"<14>1 - host live web.1 - - three", l.udp)
        .await
        .expect("send");
    let next = tokio::time::timeout(Duration::from_secs(10), follow.message())
        .await
        .expect("a new line arrives")
        .expect("stream")
        .expect("an entry");
    assert_eq!((next.message.as_str(), next.offset), ("three", 3));
    c.delete(pb::DeleteRequest {
        app: "live".to_owned(),
    })
    .await
    .expect("delete");
    assert!(messages(&l, "live").await.is_empty());
}
