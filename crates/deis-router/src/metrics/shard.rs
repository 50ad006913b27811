//! Shards for the counts every request updates: each thread adds to its own shard, on a cache
//! line of its own, and the shards are summed when `/metrics` is read. One count shared by the
//! workers had its cache line passed between the cores on every request.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many shards each count has (threads past this share them).
pub(crate) const SHARDS: usize = 8;

/// A value alone on its cache line (128 bytes: adjacent lines are fetched in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// This thread's shard.
pub(crate) fn index() -> usize {
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = THREADS.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}
