//! A histogram of durations counted with atomics in per-thread shards ([`super::shard`]):
//! every worker observes every request into the same app's histogram, and prometheus-client's
//! own takes a lock per observation, which the workers contended for on every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::shard::{Padded, SHARDS, index};

/// Bounded buckets: 0.5 ms doubling 16 times (as before); then `+Inf`.
const BUCKETS: usize = 16;
const FIRST_BOUND: f64 = 0.0005;

/// Durations in exponential buckets; clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct DurationHistogram(Arc<[Padded<Counts>; SHARDS]>);

#[derive(Debug, Default)]
struct Counts {
    /// Observations per bucket (not cumulative), the last being `+Inf`.
    buckets: [AtomicU64; BUCKETS + 1],
    /// The sum of the observations in nanoseconds.
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// Counts one duration.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = (0..BUCKETS)
            .find(|&i| seconds <= bound(i))
            .unwrap_or(BUCKETS);
        let counts = &self.0[index()].0;
        counts.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        counts.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

fn bound(i: usize) -> f64 {
    FIRST_BOUND * f64::from(1u32 << i)
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder makes the counts cumulative itself.
        let buckets: Vec<(f64, u64)> = (0..=BUCKETS)
            .map(|i| {
                let upper = if i < BUCKETS { bound(i) } else { f64::INFINITY };
                let n = self
                    .0
                    .iter()
                    .map(|s| s.0.buckets[i].load(Ordering::Relaxed));
                (upper, n.sum())
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let nanos: u64 = self
            .0
            .iter()
            .map(|s| s.0.sum_nanos.load(Ordering::Relaxed))
            .sum();
        let sum = nanos as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets() {
        let h = DurationHistogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(3600));
        let shard = &h.0[index()].0;
        let counts: Vec<u64> = shard
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1, "0.1 ms <= 0.5 ms");
        assert_eq!(counts[3], 1, "3 ms <= 4 ms");
        assert_eq!(counts[BUCKETS], 1, "an hour is past the last bound");
        assert_eq!(shard.sum_nanos.load(Ordering::Relaxed), 3_600_003_100_000);
    }
}
