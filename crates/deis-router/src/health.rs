//! Passive backend health: a backend that refuses a connection is taken out of rotation at
//! once, and a probe puts it back as soon as it accepts connections again (or forgets it when
//! it leaves the table). The scheduler withdraws dead containers' routes too; this covers the
//! moments before it does and backends the scheduler cannot see.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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

    /// Takes `backend` out and starts probing it.
    pub(crate) fn mark_down(self: &Arc<Self>, backend: &str) {
        if !self.lock().insert(backend.to_owned()) {
            return;
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        self.metrics.backends_down.inc();
        tracing::warn!(
            backend,
            "Backend refuses connections; out of rotation until it accepts again"
        );
        let health = self.clone();
        let backend = backend.to_owned();
        tokio::spawn(async move {
            health.probe_until_back(&backend).await;
            health.lock().remove(&backend);
            health.count.fetch_sub(1, Ordering::AcqRel);
            health.metrics.backends_down.dec();
        });
    }

    async fn probe_until_back(&self, backend: &str) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            if !self.tables.borrow().has_backend(backend) {
                return;
            }
            let attempt = tokio::net::TcpStream::connect(backend);
            if let Ok(Ok(_)) = tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
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
