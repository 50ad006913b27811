//! A counter kept in per-thread shards ([`super::shard`]), summed when read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::shard::{Padded, SHARDS, index};

/// A counter; clones share the counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardedCounter(Arc<[Padded<AtomicU64>; SHARDS]>);

impl ShardedCounter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        self.0[index()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum of the shards.
    pub(crate) fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_add_to_one_sum() {
        let counter = ShardedCounter::default();
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.inc()))
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(counter.get(), 12_000);
    }
}
