//! A steady client of one app through a set of routers (the surviving hosts' ones), each
//! worker at most one request per [`PACE`], one new connection per request so that each is routed afresh, taking turns over the routers. It
//! counts what it sent and what failed (anything but 200, or no answer within
//! [`REQUEST_TIMEOUT`]), keeps when each failure happened and which containers answered when,
//! so a fault's cost can be read off afterwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::support::http;

/// A request without an answer by then counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer slower than this is counted as slow (it succeeded, but a user noticed).
const SLOW: Duration = Duration::from_secs(1);

/// Each worker's pace: a steady client, not a load test (the cluster's hosts share this
/// machine's cores with the other tests).
const PACE: Duration = Duration::from_millis(20);

/// Failures kept for the report (the count goes on).
const KEPT_FAILURES: usize = 200;

struct Shared {
    routers: RwLock<Vec<SocketAddr>>,
    host: String,
    turn: AtomicUsize,
    stop: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    slow: AtomicU64,
    failures: Mutex<Vec<(Instant, String)>>,
    /// Each answering container (the app's body names its host name): when it last answered.
    answered: Mutex<BTreeMap<String, Instant>>,
}

pub(crate) struct Traffic {
    shared: Arc<Shared>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Counts at one moment, to measure a fault between two of them.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    pub(crate) at: Instant,
    sent: u64,
    failed: u64,
    slow: u64,
}

/// What the client saw between a mark and now.
#[derive(Debug)]
pub(crate) struct Seen {
    /// When the mark was, from the client's start (to place failures between faults).
    pub(crate) from: Duration,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
    /// Each failure: how long after the mark, and what came back.
    pub(crate) failures: Vec<(Duration, String)>,
}

impl Seen {
    /// Failures that happened later than `after` past the mark.
    pub(crate) fn failed_after(&self, after: Duration) -> Vec<&(Duration, String)> {
        self.failures.iter().filter(|(at, _)| *at > after).collect()
    }

    /// `"1234 requests, 0 failed, 3 slower than 1 s"`.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} requests, {} failed, {} slower than {} s",
            self.sent,
            self.failed,
            self.slow,
            SLOW.as_secs()
        )
    }
}

impl Traffic {
    /// `workers` concurrent requests for `app` through `routers`, until stopped.
    pub(crate) fn start(routers: Vec<SocketAddr>, app: &str, workers: usize) -> Traffic {
        let shared = Arc::new(Shared {
            routers: RwLock::new(routers),
            host: format!("{app}.example.com"),
            turn: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            answered: Mutex::new(BTreeMap::new()),
        });
        let tasks = (0..workers)
            .map(|_| {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut pace = tokio::time::interval(PACE);
                    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !shared.stop.load(Ordering::Relaxed) {
                        pace.tick().await;
                        shared.once().await;
                    }
                })
            })
            .collect();
        Traffic {
            shared,
            started: Instant::now(),
            tasks,
        }
    }

    /// From now on, requests go through these routers only.
    pub(crate) fn use_routers(&self, routers: Vec<SocketAddr>) {
        if let Ok(mut slot) = self.shared.routers.write() {
            *slot = routers;
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        let s = &self.shared;
        Mark {
            at: Instant::now(),
            sent: s.sent.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            slow: s.slow.load(Ordering::Relaxed),
        }
    }

    /// What happened since `mark`.
    pub(crate) fn since(&self, mark: Mark) -> Seen {
        let s = &self.shared;
        let failures = s
            .failures
            .lock()
            .map(|f| {
                f.iter()
                    .filter(|(at, _)| *at >= mark.at)
                    .map(|(at, what)| (at.duration_since(mark.at), what.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Seen {
            from: mark.at.saturating_duration_since(self.started),
            sent: s.sent.load(Ordering::Relaxed) - mark.sent,
            failed: s.failed.load(Ordering::Relaxed) - mark.failed,
            slow: s.slow.load(Ordering::Relaxed) - mark.slow,
            failures,
        }
    }

    /// The containers (host names) that answered since `since`.
    pub(crate) fn answering_since(&self, since: Instant) -> Vec<String> {
        self.shared
            .answered
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|(_, at)| **at >= since)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Requests sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Stops the client: everything it saw since it started.
    pub(crate) async fn stop(self, start: Mark) -> Seen {
        self.shared.stop.store(true, Ordering::Relaxed);
        let seen = self.since(start);
        for task in self.tasks {
            let _ = task.await;
        }
        seen
    }
}

impl Shared {
    async fn once(&self) {
        let router = {
            let routers = self.routers.read().map(|r| r.clone()).unwrap_or_default();
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            match routers.get(turn % routers.len().max(1)) {
                Some(r) => *r,
                None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return;
                }
            }
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http(router, "GET", &self.host, "/", None, ""),
        )
        .await;
        self.sent.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() > SLOW {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        let failure = match answer {
            Ok((200, body)) => {
                // "hello <host name>": the container that answered.
                let name = body
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_owned();
                if let Ok(mut answered) = self.answered.lock() {
                    answered.insert(name, Instant::now());
                }
                return;
            }
            Ok((status, body)) => format!("{router}: {status} {}", body.trim()),
            Err(_) => format!("{router}: no answer within {REQUEST_TIMEOUT:?}"),
        };
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut failures) = self.failures.lock()
            && failures.len() < KEPT_FAILURES
        {
            failures.push((started, failure));
        }
    }
}
