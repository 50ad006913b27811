//! Prometheus metrics of one router, served as text on the admin listener's `/metrics`.

mod counter;
mod histogram;
mod shard;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use counter::ShardedCounter;
use histogram::DurationHistogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The router's counters.
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests answered, by app and status code.
    requests: Family<Labels, ShardedCounter>,
    /// Time to the response's head, by app.
    durations: Family<Labels, DurationHistogram>,
    /// Failures talking to backends, by app and kind (`connect`, `timeout`, `other`).
    upstream_errors: Family<Labels, Counter>,
    /// Routing tables built from the store.
    pub(crate) table_updates: Counter,
    /// Backends currently marked as refusing connections.
    pub(crate) backends_down: Gauge,
    /// WebSocket (and other upgraded) connections open now.
    pub(crate) upgraded_open: Gauge,
    /// Idle client connections parked now (`fast::parked`).
    pub(crate) parked: Gauge,
    /// `git push` connections accepted for the builder, by outcome (`relayed`, `no_builder`,
    /// `connect_failed`, `over_limit`).
    builder_connections: Family<Labels, Counter>,
    /// `git push` connections being relayed to the builder now.
    pub(crate) builder_open: Gauge,
    /// Bytes relayed for `git push`, by direction (`to_builder`, `from_builder`).
    builder_bytes: Family<Labels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("deis_router");
        let requests = Family::<Labels, ShardedCounter>::default();
        let durations = Family::<Labels, DurationHistogram>::default();
        let upstream_errors = Family::<Labels, Counter>::default();
        let table_updates = Counter::default();
        let backends_down = Gauge::default();
        let upgraded_open = Gauge::default();
        let parked = Gauge::default();
        let builder_connections = Family::<Labels, Counter>::default();
        let builder_open = Gauge::default();
        let builder_bytes = Family::<Labels, Counter>::default();
        registry.register("requests", "Requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time until the response head was sent",
            durations.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed attempts to reach a backend",
            upstream_errors.clone(),
        );
        registry.register(
            "table_updates",
            "Routing tables built from config store changes",
            table_updates.clone(),
        );
        registry.register(
            "backends_down",
            "Backends taken out because they refused connections",
            backends_down.clone(),
        );
        registry.register(
            "upgraded_connections_open",
            "WebSocket and other upgraded connections open",
            upgraded_open.clone(),
        );
        registry.register(
            "parked_connections",
            "Idle keep-alive client connections parked, with no task of their own",
            parked.clone(),
        );
        registry.register(
            "builder_connections",
            "git push connections accepted for the builder, by outcome",
            builder_connections.clone(),
        );
        registry.register(
            "builder_connections_open",
            "git push connections being relayed to the builder",
            builder_open.clone(),
        );
        registry.register(
            "builder_bytes",
            "Bytes relayed between git push clients and the builder",
            builder_bytes.clone(),
        );
        Arc::new(Metrics {
            registry,
            requests,
            durations,
            upstream_errors,
            table_updates,
            backends_down,
            upgraded_open,
            parked,
            builder_connections,
            builder_open,
            builder_bytes,
        })
    }

    /// Counts an answered request, through `cache` (one per worker, so the hot path neither
    /// allocates label sets nor takes the families' locks).
    pub(crate) fn request(&self, cache: &RequestCache, app: &str, status: u16, elapsed: Duration) {
        let mut apps = cache.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !apps.contains_key(app) {
            if apps.len() > 10_000 {
                apps.clear();
            }
            let duration = self
                .durations
                .get_or_create(&vec![("app", app.to_owned())])
                .clone();
            apps.insert(
                app.to_owned(),
                AppCounters {
                    codes: Vec::new(),
                    duration,
                },
            );
        }
        let Some(counters) = apps.get_mut(app) else {
            return;
        };
        counters.duration.observe(elapsed);
        match counters.codes.iter().find(|(code, _)| *code == status) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = self
                    .requests
                    .get_or_create(&vec![("app", app.to_owned()), ("code", status.to_string())])
                    .clone();
                counter.inc();
                counters.codes.push((status, counter));
            }
        }
    }

    /// Counts a failed attempt to reach a backend.
    pub(crate) fn upstream_error(&self, app: &str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&vec![("app", app.to_owned()), ("kind", kind.to_owned())])
            .inc();
    }

    /// Counts a connection accepted for the builder and what became of it.
    pub(crate) fn builder_connection(&self, outcome: &'static str) {
        self.builder_connections
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// The counter of bytes relayed for `git push` in `direction`.
    pub(crate) fn builder_bytes(&self, direction: &'static str) -> Counter {
        self.builder_bytes
            .get_or_create(&vec![("direction", direction.to_owned())])
            .clone()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// A worker's handles on its apps' counters.
#[derive(Default)]
pub(crate) struct RequestCache(Mutex<HashMap<String, AppCounters>>);

struct AppCounters {
    codes: Vec<(u16, ShardedCounter)>,
    duration: DurationHistogram,
}

/// `GET /metrics` in the Prometheus text format.
pub(crate) fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.render(),
                )
                    .into_response()
            }),
        )
        .with_state(metrics)
}
