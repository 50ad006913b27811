//! Every request's log lines carry its request id, host and app (the router's `request` span),
//! and the id is the `X-Request-Id` the app got: one request can be followed through the log.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::fixture::{raw, router, serve};
use deis_testkit::eventually;

/// A log line's fields: its own and those of the spans it was logged in.
type Fields = BTreeMap<String, String>;

/// A subscriber that keeps every line the router logs.
#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, Fields>>,
    lines: Mutex<Vec<Fields>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("deis_router")
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::new();
        span.record(&mut Collect(&mut fields));
        lock(&self.spans).insert(id, fields);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(fields) = lock(&self.spans).get_mut(&span.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        {
            let spans = lock(&self.spans);
            ENTERED.with(|entered| {
                for id in entered.borrow().iter() {
                    fields.extend(spans.get(id).cloned().unwrap_or_default());
                }
            });
        }
        event.record(&mut Collect(&mut fields));
        lock(&self.lines).push(fields);
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(i) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(i);
            }
        });
    }
}

/// An app that answers with the `X-Request-Id` it got.
async fn id_echo() -> SocketAddr {
    serve(
        axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
            let id = headers.get("x-request-id").map(|v| v.as_bytes().to_vec());
            String::from_utf8_lossy(&id.unwrap_or_default()).into_owned()
        }),
    )
    .await
}

/// Waits for a line whose `message` contains `message` and which has every field of `expect`.
async fn logged(capture: &Capture, message: &str, expect: &[(&str, &str)]) {
    eventually(Duration::from_secs(10), message, || async {
        let lines = lock(&capture.lines);
        let found = lines.iter().any(|line| {
            line.get("message").is_some_and(|m| m.contains(message))
                && expect
                    .iter()
                    .all(|(k, v)| line.get(*k).map(String::as_str) == Some(*v))
        });
        if found {
            Ok(())
        } else {
            Err(format!("{} lines, none matching {expect:?}", lines.len()))
        }
    })
    .await;
}

#[tokio::test]
async fn a_requests_log_lines_carry_its_id_host_and_app() {
    let capture = Arc::new(Capture::default());
    tracing::subscriber::set_global_default(capture.clone())
        .expect("no other subscriber in this test's process");
    let r = router().await;
    r.app("echo", &[id_echo().await]).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    r.app("down", &[refused]).await;

    // An id the router makes is the one the app gets and the one in the log.
    let id = eventually(Duration::from_secs(10), "the app to answer", || async {
        match raw(
            r.http,
            "GET / HTTP/1.1\r\nHost: echo.example.com\r\nConnection: close\r\n\r\n",
        )
        .await
        {
            (200, text) => Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("a body");
    assert!(!id.is_empty(), "the app got an X-Request-Id");
    let line = [
        ("request.id", id.as_str()),
        ("http.host", "echo.example.com"),
        ("app.name", "echo"),
        ("status", "200"),
    ];
    logged(&capture, "access", &line).await;

    // A client's own id is kept, and lines logged deep inside the request carry it too.
    let request = "GET / HTTP/1.1\r\nHost: down.example.com\r\nX-Request-Id: follow-me-1\r\n\
        Connection: close\r\n\r\n";
    eventually(
        Duration::from_secs(10),
        "a 502 from the dead app",
        || async {
            match raw(r.http, request).await {
                (502, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let line = [
        ("request.id", "follow-me-1"),
        ("http.host", "down.example.com"),
        ("app.name", "down"),
    ];
    logged(&capture, "Backend does not accept connections", &line).await;
    logged(&capture, "access", &line).await;
}
