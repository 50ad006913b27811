//! The router settings and per-app rules: body size, allow-lists, timeouts, affinity, h2c,
//! metrics.

use std::time::Duration;

use crate::fixture::{answers, get_path, h2c_get, raw, router, upstream};
use deis_testkit::eventually;

#[tokio::test]
async fn bodies_over_body_size_are_refused_with_413() {
    let r = router().await;
    r.app("up", &[upstream("up").await]).await;
    r.put("/deis/router/bodySize", "1k").await;
    let post = |size: usize, chunked: bool| {
        let body = "x".repeat(size);
        let framing = if chunked {
            format!("Transfer-Encoding: chunked\r\n\r\n{size:x}\r\n{body}\r\n0\r\n\r\n")
        } else {
            format!("Content-Length: {size}\r\n\r\n{body}")
        };
        format!("POST /upload HTTP/1.1\r\nHost: up.example.com\r\nConnection: close\r\n{framing}")
    };
    eventually(Duration::from_secs(10), "a 2 KiB body refused", || async {
        match raw(r.http, &post(2048, false)).await {
            (413, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (status, text) = raw(r.http, &post(512, false)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("512 bytes"), "{text}");
    let (status, text) = raw(r.http, &post(4096, true)).await;
    assert_eq!(
        status, 413,
        "a chunked body is counted as it streams: {text}"
    );
    let (status, text) = raw(r.http, &post(512, true)).await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn deis_whitelist_and_enforce_whitelist() {
    let r = router().await;
    r.app("open", &[upstream("open").await]).await;
    r.app("private", &[upstream("private").await]).await;
    r.put("/deis/config/private/deis_whitelist", "192.0.2.0/24:office")
        .await;
    answers(r.http, "private.example.com", 403, "403 Forbidden").await;
    answers(r.http, "open.example.com", 200, "open").await;
    r.put(
        "/deis/config/private/deis_whitelist",
        "192.0.2.0/24:office,127.0.0.1",
    )
    .await;
    answers(r.http, "private.example.com", 200, "private").await;

    // enforceWhitelist denies apps with no list; the controller is not an app.
    r.put("/deis/router/enforceWhitelist", "true").await;
    answers(r.http, "open.example.com", 403, "").await;
    answers(r.http, "private.example.com", 200, "private").await;

    // Behind a trusted proxy, X-Forwarded-For names the client.
    r.put("/deis/router/enforceWhitelist", "false").await;
    r.put("/deis/router/proxyRealIpCidr", "127.0.0.0/8").await;
    r.put("/deis/config/private/deis_whitelist", "192.0.2.7")
        .await;
    eventually(Duration::from_secs(10), "the forwarded client is let in", || async {
        let (status, text) = raw(
            r.http,
            "GET / HTTP/1.1\r\nHost: private.example.com\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n",
        )
        .await;
        if status == 200 && text.contains("private 192.0.2.7 ") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    answers(r.http, "private.example.com", 403, "").await;
}

#[tokio::test]
async fn a_slow_app_gets_504_after_default_timeout() {
    let r = router().await;
    r.app("slow", &[upstream("slow").await]).await;
    answers(r.http, "slow.example.com", 200, "slow").await;
    let (status, body) = get_path(r.http, "slow.example.com", "/slow").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "slow"),
        "within the default 1300 s"
    );
    r.put("/deis/router/defaultTimeout", "1").await;
    eventually(Duration::from_secs(15), "a 504", || async {
        match get_path(r.http, "slow.example.com", "/slow").await {
            (504, body) if body.contains("504 Gateway Timeout") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn affinity_argument_pins_a_client_to_one_backend() {
    let r = router().await;
    let backends = [
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
    ];
    r.app("sticky", &backends).await;
    r.put("/deis/router/affinityArg", "session").await;
    answers(r.http, "sticky.example.com", 200, "").await;
    eventually(
        Duration::from_secs(10),
        "one backend per session",
        || async {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..6 {
                let (_, body) = get_path(r.http, "sticky.example.com", "/?session=42").await;
                seen.insert(body.split(' ').next().unwrap_or_default().to_owned());
            }
            if seen.len() == 1 {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    )
    .await;
    let mut all = std::collections::BTreeSet::new();
    for i in 0..30 {
        let (_, body) = get_path(r.http, "sticky.example.com", &format!("/?session={i}")).await;
        all.insert(body.split(' ').next().unwrap_or_default().to_owned());
    }
    assert!(all.len() > 1, "different sessions spread: {all:?}");
}

#[tokio::test]
async fn http2_without_tls_and_metrics() {
    let r = router().await;
    r.app("h2", &[upstream("h2").await]).await;
    let seen = eventually(Duration::from_secs(10), "an h2c answer", || async {
        match h2c_get(r.http, "h2.example.com").await {
            Ok(seen) if seen.status == 200 => Ok(seen),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(seen.version, http::Version::HTTP_2);
    assert!(
        seen.body.starts_with("h2 127.0.0.1 http true"),
        "{}",
        seen.body
    );
    let (_, metrics) = raw(
        r.admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        metrics.contains("deis_router_requests_total{app=\"h2\",code=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("deis_router_table_updates_total"),
        "{metrics}"
    );
    let (status, _) = raw(
        r.admin,
        "GET /health-check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
}
