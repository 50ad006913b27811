//! The stored logs: a bounded ring per app (lines and bytes), kept in memory, with a live feed
//! per app for followers. Every line is counted: received, stored, dropped (larger than a whole
//! ring) and evicted (rotated out by newer lines). Batches from a shipper carry a sequence
//! number; a batch seen before (a retry after a lost answer) is not stored twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use crate::entry::Entry;
use crate::metrics::Metrics;

/// How much each app keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Lines per app.
    pub lines: usize,
    /// Bytes per app.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lines: 10_000,
            bytes: 8 << 20,
        }
    }
}

struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    next: u64,
    live: broadcast::Sender<Entry>,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            next: 1,
            live: broadcast::channel(4096).0,
        }
    }

    fn tail(&self, n: usize) -> Vec<Entry> {
        let skip = self.entries.len().saturating_sub(n);
        self.entries.iter().skip(skip).cloned().collect()
    }
}

#[derive(Default)]
struct Counts {
    received: u64,
    stored: u64,
    dropped: u64,
    evicted: u64,
}

/// Every app's log.
pub struct Logs {
    apps: Mutex<HashMap<String, Ring>>,
    shippers: Mutex<HashMap<String, u64>>,
    limits: Limits,
    metrics: std::sync::Arc<Metrics>,
}

impl Logs {
    pub fn new(limits: Limits, metrics: std::sync::Arc<Metrics>) -> Logs {
        Logs {
            apps: Mutex::default(),
            shippers: Mutex::default(),
            limits,
            metrics,
        }
    }

    fn apps(&self) -> MutexGuard<'_, HashMap<String, Ring>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `entries` in order; how many were stored.
    pub fn append(&self, entries: impl IntoIterator<Item = Entry>) -> u32 {
        // Counted per app for the whole batch: one metrics update per app, not per line.
        let mut counts: Vec<(String, Counts)> = Vec::new();
        let mut apps = self.apps();
        let mut stored = 0;
        for mut entry in entries {
            let index = match counts.iter().position(|(app, _)| *app == entry.app) {
                Some(i) => i,
                None => {
                    counts.push((entry.app.clone(), Counts::default()));
                    counts.len() - 1
                }
            };
            let count = &mut counts[index].1;
            count.received += 1;
            let size = entry.size();
            if size > self.limits.bytes {
                count.dropped += 1;
                continue;
            }
            let ring = match apps.get_mut(&entry.app) {
                Some(ring) => ring,
                None => apps.entry(entry.app.clone()).or_insert_with(Ring::new),
            };
            entry.offset = ring.next;
            ring.next += 1;
            ring.bytes += size;
            if ring.live.receiver_count() > 0 {
                let _ = ring.live.send(entry.clone());
            }
            count.stored += 1;
            ring.entries.push_back(entry);
            while ring.entries.len() > self.limits.lines || ring.bytes > self.limits.bytes {
                match ring.entries.pop_front() {
                    Some(old) => {
                        ring.bytes -= old.size();
                        count.evicted += 1;
                    }
                    None => break,
                }
            }
            stored += 1;
        }
        self.metrics.apps_held(apps.len());
        drop(apps);
        for (app, c) in counts {
            self.metrics
                .add(&app, c.received, c.stored, c.dropped, c.evicted);
        }
        stored
    }

    /// Stores a shipper's batch once. Entries that carry their position in their source
    /// (`offset` > 0 on arrival: the shipper sends Docker's timestamp in nanoseconds) are stored
    /// only beyond the last position stored for this shipper, so a resent range adds only what
    /// is new; a batch without positions is stored once per `sequence`.
    pub fn push(&self, shipper: &str, sequence: u64, entries: Vec<Entry>) -> u32 {
        if shipper.is_empty() {
            return self.append(entries);
        }
        let mut shippers = self.shippers.lock().unwrap_or_else(PoisonError::into_inner);
        let last = shippers.entry(shipper.to_owned()).or_insert(0);
        let positioned = entries.iter().any(|e| e.offset > 0);
        let keep: Vec<Entry> = if positioned {
            let mut keep = Vec::with_capacity(entries.len());
            for e in entries {
                if e.offset > *last {
                    *last = e.offset;
                    keep.push(e);
                }
            }
            keep
        } else if sequence > *last {
            *last = sequence;
            entries
        } else {
            Vec::new()
        };
        drop(shippers);
        self.append(keep)
    }

    /// The last `n` lines of `app`.
    pub fn tail(&self, app: &str, n: usize) -> Vec<Entry> {
        self.apps().get(app).map(|r| r.tail(n)).unwrap_or_default()
    }

    /// The last `n` lines and, without a gap or a repeat, every line after them.
    pub fn follow(&self, app: &str, n: usize) -> (Vec<Entry>, broadcast::Receiver<Entry>) {
        let mut apps = self.apps();
        let ring = apps.entry(app.to_owned()).or_insert_with(Ring::new);
        let followed = (ring.tail(n), ring.live.subscribe());
        self.metrics.apps_held(apps.len());
        followed
    }

    /// Forgets `app`'s log (the app was destroyed).
    pub fn delete(&self, app: &str) {
        let mut apps = self.apps();
        apps.remove(app);
        self.metrics.apps_held(apps.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: &str, message: &str) -> Entry {
        Entry {
            app: app.to_owned(),
            source: "web.1".to_owned(),
            time: 0,
            message: message.to_owned(),
            offset: 0,
        }
    }

    #[test]
    fn rings_are_bounded_by_lines_and_bytes_and_count_everything() {
        let metrics = Metrics::new();
        let logs = Logs::new(
            Limits {
                lines: 3,
                bytes: 100,
            },
            metrics.clone(),
        );
        logs.append((0..5).map(|i| entry("a", &format!("line {i}"))));
        let tail: Vec<String> = logs.tail("a", 10).into_iter().map(|e| e.message).collect();
        assert_eq!(tail, ["line 2", "line 3", "line 4"]);
        logs.append([entry("a", &"x".repeat(200))]);
        logs.append([entry("a", &"y".repeat(60))]);
        assert_eq!(
            logs.tail("a", 10).len(),
            1,
            "60 bytes of 100 leave room for nothing else"
        );
        let text = metrics.render();
        assert!(
            text.contains("deis_logger_lines_received_total{app=\"a\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("deis_logger_lines_stored_total{app=\"a\"} 6"),
            "{text}"
        );
        assert!(
            text.contains("deis_logger_lines_dropped_total{app=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("deis_logger_lines_evicted_total{app=\"a\"} 5"),
            "{text}"
        );
    }

    #[test]
    fn a_resent_range_adds_only_what_is_new() {
        let logs = Logs::new(Limits::default(), Metrics::new());
        let at = |message: &str, position: u64| Entry {
            offset: position,
            ..entry("a", message)
        };
        assert_eq!(
            logs.push("host/c1", 0, vec![at("one", 10), at("two", 20)]),
            2
        );
        assert_eq!(
            logs.push("host/c1", 0, vec![at("two", 20), at("three", 30)]),
            1,
            "the overlap is skipped"
        );
        let messages: Vec<String> = logs.tail("a", 10).into_iter().map(|e| e.message).collect();
        assert_eq!(messages, ["one", "two", "three"]);
    }

    #[test]
    fn a_repeated_batch_is_stored_once() {
        let logs = Logs::new(Limits::default(), Metrics::new());
        assert_eq!(logs.push("host-1", 1, vec![entry("a", "one")]), 1);
        assert_eq!(logs.push("host-1", 1, vec![entry("a", "one")]), 0);
        assert_eq!(logs.push("host-1", 2, vec![entry("a", "two")]), 1);
        assert_eq!(logs.push("host-2", 1, vec![entry("a", "three")]), 1);
        let offsets: Vec<u64> = logs.tail("a", 10).iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
    }

    #[tokio::test]
    async fn followers_get_the_tail_then_every_new_line() {
        let logs = Logs::new(Limits::default(), Metrics::new());
        logs.append([entry("a", "old 1"), entry("a", "old 2")]);
        let (tail, mut live) = logs.follow("a", 1);
        assert_eq!(tail[0].message, "old 2");
        logs.append([entry("a", "new")]);
        assert_eq!(live.recv().await.expect("live").message, "new");
    }
}
