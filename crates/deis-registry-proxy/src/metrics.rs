//! The proxy's counters in the Prometheus text format (`/metrics`): cache hits and misses,
//! bytes served by source, verification failures, evictions and fetches from the registry.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

type Label = [(&'static str, &'static str); 1];

/// What was asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Blob,
    Manifest,
}

impl Kind {
    fn label(self) -> Label {
        [(
            "kind",
            match self {
                Kind::Blob => "blob",
                Kind::Manifest => "manifest",
            },
        )]
    }
}

/// Where served bytes came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    Cache,
    Upstream,
}

/// Where content failed its digest.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// As the registry sent it.
    Download,
    /// As read back from the cache's disk.
    Disk,
}

/// The registry proxy's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    hits: Family<Label, Counter>,
    misses: Family<Label, Counter>,
    served: Family<Label, Counter>,
    verification_failures: Family<Label, Counter>,
    upstream_fetches: Family<Label, Counter>,
    evictions: Counter,
    cache_size: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("deis_registry_proxy");
        let m = Metrics {
            hits: Family::default(),
            misses: Family::default(),
            served: Family::default(),
            verification_failures: Family::default(),
            upstream_fetches: Family::default(),
            evictions: Counter::default(),
            cache_size: Gauge::default(),
            registry: Registry::default(),
        };
        for (name, help, family) in [
            (
                "cache_hits",
                "Blobs and manifests served from the cache",
                &m.hits,
            ),
            (
                "cache_misses",
                "Blobs and manifests asked for by digest that were not cached",
                &m.misses,
            ),
            (
                "verification_failures",
                "Content that did not match its digest (from the registry, or on the cache's disk)",
                &m.verification_failures,
            ),
            (
                "upstream_fetches",
                "Blobs and manifests fetched from the registry",
                &m.upstream_fetches,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register_with_unit(
            "served",
            "Blob and manifest bytes sent to clients, by where they came from",
            Unit::Bytes,
            m.served.clone(),
        );
        registry.register(
            "cache_evictions",
            "Cached objects removed to make room",
            m.evictions.clone(),
        );
        registry.register_with_unit(
            "cache_size",
            "Bytes the cache holds",
            Unit::Bytes,
            m.cache_size.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    pub(crate) fn hit(&self, kind: Kind) {
        self.hits.get_or_create(&kind.label()).inc();
    }

    pub(crate) fn miss(&self, kind: Kind) {
        self.misses.get_or_create(&kind.label()).inc();
    }

    pub(crate) fn fetched(&self, kind: Kind) {
        self.upstream_fetches.get_or_create(&kind.label()).inc();
    }

    pub(crate) fn served(&self, source: Source, bytes: u64) {
        let label = match source {
            Source::Cache => "cache",
            Source::Upstream => "upstream",
        };
        self.served
            .get_or_create(&[("source", label)])
            .inc_by(bytes);
    }

    pub(crate) fn verification_failed(&self, stage: Stage) {
        let label = match stage {
            Stage::Download => "download",
            Stage::Disk => "disk",
        };
        self.verification_failures
            .get_or_create(&[("stage", label)])
            .inc();
    }

    pub(crate) fn evicted(&self, count: u64) {
        self.evictions.inc_by(count);
    }

    pub(crate) fn set_cache_size(&self, bytes: u64) {
        self.cache_size
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
