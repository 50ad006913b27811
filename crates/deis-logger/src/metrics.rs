//! Per-app line counters in the Prometheus text format (`/metrics`).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The logger's counters.
pub struct Metrics {
    registry: Registry,
    received: Family<Labels, Counter>,
    stored: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    evicted: Family<Labels, Counter>,
    /// Apps whose lines this logger holds in memory (each a bounded ring).
    apps_held: Gauge,
    /// Lines kept out, by reason (a fixed set: never one series per made-up app name).
    refused: Family<Labels, Counter>,
    /// The syslog UDP socket's port, whose kernel drop counter is reported on each scrape.
    udp_port: std::sync::atomic::AtomicU16,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("deis_logger");
        let received = Family::<Labels, Counter>::default();
        let stored = Family::<Labels, Counter>::default();
        let dropped = Family::<Labels, Counter>::default();
        let evicted = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        let apps_held = Gauge::default();
        registry.register(
            "apps_held",
            "Apps whose lines are held in memory, each in a bounded ring",
            apps_held.clone(),
        );
        registry.register(
            "lines_refused",
            "Lines kept out: for an app that does not exist, or syslog from a source not allowed",
            refused.clone(),
        );
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
            refused,
            apps_held,
            udp_port: std::sync::atomic::AtomicU16::new(0),
        })
    }

    fn inc(family: &Family<Labels, Counter>, app: &str) {
        family.get_or_create(&vec![("app", app.to_owned())]).inc();
    }

    /// Adds a batch's counts for `app`.
    pub(crate) fn add(&self, app: &str, received: u64, stored: u64, dropped: u64, evicted: u64) {
        let labels = vec![("app", app.to_owned())];
        for (family, n) in [
            (&self.received, received),
            (&self.stored, stored),
            (&self.dropped, dropped),
            (&self.evicted, evicted),
        ] {
            if n > 0 {
                family.get_or_create(&labels).inc_by(n);
            }
        }
    }

    pub(crate) fn received(&self, app: &str) {
        Metrics::inc(&self.received, app);
    }

    pub(crate) fn stored(&self, app: &str) {
        Metrics::inc(&self.stored, app);
    }

    /// How many apps' rings are held.
    pub(crate) fn apps_held(&self, n: usize) {
        self.apps_held.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts `n` lines kept out for `reason`.
    pub(crate) fn refused(&self, reason: &'static str, n: u64) {
        self.refused
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc_by(n);
    }

    pub(crate) fn dropped(&self, app: &str) {
        Metrics::inc(&self.dropped, app);
    }

    /// Reports the kernel's drops for the syslog UDP socket on `port` from now on.
    pub(crate) fn watch_udp(&self, port: u16) {
        self.udp_port
            .store(port, std::sync::atomic::Ordering::Relaxed);
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let port = self.udp_port.load(std::sync::atomic::Ordering::Relaxed);
        if port != 0 {
            // Datagrams the kernel dropped before the logger could read them (a full receive
            // buffer): the only loss the logger cannot count itself, so it reports the kernel's.
            let drops = udp_drops(port);
            let text = format!(
                "# HELP deis_logger_udp_socket_drops Syslog datagrams the kernel dropped (receive buffer full).\n# TYPE deis_logger_udp_socket_drops counter\ndeis_logger_udp_socket_drops_total {drops}\n"
            );
            match out.rfind("# EOF") {
                Some(at) => out.insert_str(at, &text),
                None => out.push_str(&text),
            }
        }
        out
    }
}

/// The `drops` column of `/proc/net/udp` and `/proc/net/udp6` for sockets bound to `port`.
fn udp_drops(port: u16) -> u64 {
    let wanted = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .is_some_and(|local| local.ends_with(&wanted))
                })
                .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}
