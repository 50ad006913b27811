//! Per-app line counters in the Prometheus text format (`/metrics`).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The logger's counters.
pub struct Metrics {
    registry: Registry,
    received: Family<Labels, Counter>,
    stored: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    evicted: Family<Labels, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("deis_logger");
        let received = Family::<Labels, Counter>::default();
        let stored = Family::<Labels, Counter>::default();
        let dropped = Family::<Labels, Counter>::default();
        let evicted = Family::<Labels, Counter>::default();
        registry.register("lines_received", "Lines that arrived", received.clone());
        registry.register("lines_stored", "Lines stored", stored.clone());
        registry.register(
            "lines_dropped",
            "Lines not stored (larger than an app's whole log)",
            dropped.clone(),
        );
        registry.register(
            "lines_evicted",
            "Stored lines rotated out by newer ones",
            evicted.clone(),
        );
        Arc::new(Metrics {
            registry,
            received,
            stored,
            dropped,
            evicted,
        })
    }

    fn inc(family: &Family<Labels, Counter>, app: &str) {
        family.get_or_create(&vec![("app", app.to_owned())]).inc();
    }

    pub(crate) fn received(&self, app: &str) {
        Metrics::inc(&self.received, app);
    }

    pub(crate) fn stored(&self, app: &str) {
        Metrics::inc(&self.stored, app);
    }

    pub(crate) fn dropped(&self, app: &str) {
        Metrics::inc(&self.dropped, app);
    }

    pub(crate) fn evicted(&self, app: &str) {
        Metrics::inc(&self.evicted, app);
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
