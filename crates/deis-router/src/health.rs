//! Passive backend health: a backend that refuses a connection is taken out of rotation at
//! once, and a probe puts it back as soon as it accepts connections again (or forgets it when
//! it leaves the table). The scheduler withdraws dead containers' routes too; this covers the
//! moments before it does and backends the scheduler cannot see. Probes run as tasks of the
//! worker that saw the refusal, tracked so that its drain waits for them (they stop at shutdown).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::table::Table;

const PROBE_EVERY: Duration = Duration::from_millis(200);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The set of backends refusing connections.
pub(crate) struct Health {
    down: Mutex<HashSet<String>>,
    /// How many are down, read without the lock on every request.
    count: AtomicUsize,
    tables: watch::Receiver<Arc<Table>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Health {
    pub(crate) fn new(
        tables: watch::Receiver<Arc<Table>>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<Health> {
        Arc::new(Health {
            down: Mutex::default(),
            count: AtomicUsize::new(0),
            tables,
            metrics,
            shutdown,
        })
    }

    /// Whether any backend is out of rotation (read without the lock).
    pub(crate) fn any_down(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Whether `backend` is out of rotation.
    pub(crate) fn is_down(&self, backend: &str) -> bool {
        self.count.load(Ordering::Acquire) > 0 && self.lock().contains(backend)
    }

    /// Takes `backend` out and starts probing it, as one of `tasks`.
    pub(crate) fn mark_down(self: &Arc<Self>, backend: &str, tasks: &TaskTracker) {
        if !self.lock().insert(backend.to_owned()) {
            return;
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        self.metrics.backends_down.inc();
        tracing::warn!(
            backend,
            "Backend does not accept connections; out of rotation until it does"
        );
        let health = self.clone();
        // The probe outlives the request that saw the refusal: a span of its own.
        let span = tracing::info_span!(parent: None, "probe");
        let backend = backend.to_owned();
        let probe = async move {
            health.probe_until_back(&backend).await;
            health.lock().remove(&backend);
            health.count.fetch_sub(1, Ordering::AcqRel);
            health.metrics.backends_down.dec();
        };
        tasks.spawn(probe.instrument(span));
    }

    /// Returns once `backend` accepts a connection, leaves the table, or the router shuts
    /// down (at once, even mid-probe, so that a worker's drain does not wait for it).
    async fn probe_until_back(&self, backend: &str) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            if !self.tables.borrow().has_backend(backend) {
                return;
            }
            let attempt = tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(backend));
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                attempt = attempt => matches!(attempt, Ok(Ok(_))),
            };
            if accepted {
                tracing::info!(
                    backend,
                    "Backend accepts connections again; back in rotation"
                );
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.down.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
