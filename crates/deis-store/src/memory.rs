//! The in-process backend for the single-host mode: the same semantics as etcd v3 (revisions,
//! watch from a revision, leases with TTL expiry, transactions) held in memory.
//!
//! History is kept for the last [`MemoryStore::DEFAULT_HISTORY`] changes; a watch that asks for
//! older revisions gets [`StoreError::Compacted`], as it would from a compacted etcd. Leases are
//! expired by one reaper task per store, started with the first lease, which ends when the store
//! is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::model::{Compare, Event, EventKind, KeyValue, LeaseId, Listing, Op, Revision, Txn};
use crate::{ConfigStore, StoreError, TxnOutcome, WatchStream, check_key, ttl_seconds};

/// The in-process config store. Cloning gives another handle to the same data.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    reaper_started: AtomicBool,
}

struct State {
    revision: Revision,
    data: BTreeMap<String, Entry>,
    history: VecDeque<Event>,
    history_limit: usize,
    /// Events at or below this revision are no longer kept.
    compacted: Revision,
    leases: HashMap<LeaseId, LeaseState>,
    next_lease: i64,
    watchers: Vec<Watcher>,
}

struct Entry {
    value: String,
    create_revision: Revision,
    mod_revision: Revision,
    lease: Option<LeaseId>,
}

struct LeaseState {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Result<Event, StoreError>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// How many changes are kept for watches that start in the past.
    pub const DEFAULT_HISTORY: usize = 100_000;

    /// An empty store at revision 1, as a new etcd is.
    pub fn new() -> Self {
        Self::with_history(Self::DEFAULT_HISTORY)
    }

    /// An empty store that keeps the last `history_limit` changes for watches.
    pub fn with_history(history_limit: usize) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    revision: 1,
                    data: BTreeMap::new(),
                    history: VecDeque::new(),
                    history_limit: history_limit.max(1),
                    compacted: 0,
                    leases: HashMap::new(),
                    next_lease: 1,
                    watchers: Vec::new(),
                }),
                reaper_started: AtomicBool::new(false),
            }),
        }
    }

    /// Forgets the changes before `revision` (at most the current one), as etcd's compaction
    /// does: a watch from an older revision then fails with [`StoreError::Compacted`].
    pub fn compact(&self, revision: Revision) {
        let mut state = self.state();
        let revision = revision.min(state.revision);
        state.history.retain(|e| e.kv.mod_revision >= revision);
        state.compacted = state.compacted.max(revision - 1);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    fn start_reaper(&self) {
        if !self.shared.reaper_started.swap(true, Ordering::SeqCst) {
            tokio::spawn(reap_leases(Arc::downgrade(&self.shared)));
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the maps half-updated in a way later calls
    // depend on, so a poisoned lock is still usable.
    shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Deletes the keys of expired leases, waking at the next deadline or at least twice a second.
async fn reap_leases(shared: Weak<Shared>) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut state = lock(&shared);
            let now = Instant::now();
            let expired: Vec<LeaseId> = state
                .leases
                .iter()
                .filter(|(_, l)| l.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                state.remove_lease(id);
            }
            let soonest = state.leases.values().map(|l| l.deadline).min();
            let cap = now + Duration::from_millis(500);
            soonest.map_or(cap, |d| d.min(cap))
        };
        tokio::time::sleep_until(next).await;
    }
}

impl State {
    fn kv(&self, key: &str, entry: &Entry) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: entry.value.clone(),
            create_revision: entry.create_revision,
            mod_revision: entry.mod_revision,
            lease: entry.lease,
        }
    }

    fn holds(&self, compare: &Compare) -> bool {
        match compare {
            Compare::Value { key, value } => self.data.get(key).is_some_and(|e| &e.value == value),
            Compare::ModRevision { key, revision } => {
                self.data.get(key).map_or(0, |e| e.mod_revision) == *revision
            }
            Compare::Absent { key } => !self.data.contains_key(key),
        }
    }

    /// Applies `ops` as one revision (none if nothing changes) and tells the watchers.
    fn commit(&mut self, ops: &[Op]) -> Result<Revision, StoreError> {
        let mut seen = BTreeSet::new();
        for op in ops {
            let (Op::Put { key, .. } | Op::Delete { key }) = op;
            check_key(key)?;
            if !seen.insert(key.as_str()) {
                return Err(StoreError::InvalidRequest(format!(
                    "the key {key} appears twice in one transaction"
                )));
            }
            if let Op::Put {
                lease: Some(id), ..
            } = op
                && !self.leases.contains_key(id)
            {
                return Err(StoreError::LeaseNotFound(*id));
            }
        }
        let changes = ops.iter().any(|op| match op {
            Op::Put { .. } => true,
            Op::Delete { key } => self.data.contains_key(key),
        });
        if !changes {
            return Ok(self.revision);
        }
        let revision = self.revision + 1;
        self.revision = revision;
        let mut events = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put { key, value, lease } => {
                    let create_revision =
                        self.data.get(key).map_or(revision, |e| e.create_revision);
                    let old_lease = self.data.get(key).and_then(|e| e.lease);
                    self.detach(key, old_lease);
                    if let Some(l) = lease.and_then(|id| self.leases.get_mut(&id)) {
                        l.keys.insert(key.clone());
                    }
                    let entry = Entry {
                        value: value.clone(),
                        create_revision,
                        mod_revision: revision,
                        lease: *lease,
                    };
                    events.push(Event {
                        kind: EventKind::Put,
                        kv: self.kv(key, &entry),
                    });
                    self.data.insert(key.clone(), entry);
                }
                Op::Delete { key } => {
                    if let Some(old) = self.data.remove(key) {
                        self.detach(key, old.lease);
                        events.push(Event {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key: key.clone(),
                                value: String::new(),
                                create_revision: 0,
                                mod_revision: revision,
                                lease: None,
                            },
                        });
                    }
                }
            }
        }
        self.publish(events);
        Ok(revision)
    }

    fn detach(&mut self, key: &str, lease: Option<LeaseId>) {
        if let Some(l) = lease.and_then(|id| self.leases.get_mut(&id)) {
            l.keys.remove(key);
        }
    }

    fn publish(&mut self, events: Vec<Event>) {
        self.watchers.retain(|w| {
            events
                .iter()
                .filter(|e| e.kv.key.starts_with(&w.prefix))
                .all(|e| w.tx.send(Ok(e.clone())).is_ok())
                && !w.tx.is_closed()
        });
        for event in events {
            if self.history.len() >= self.history_limit
                && let Some(old) = self.history.pop_front()
            {
                self.compacted = old.kv.mod_revision;
            }
            self.history.push_back(event);
        }
    }

    fn remove_lease(&mut self, id: LeaseId) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        let ops: Vec<Op> = lease
            .keys
            .into_iter()
            .map(|key| Op::Delete { key })
            .collect();
        // Deleting existing keys with unique names cannot fail.
        let _ = self.commit(&ops);
        true
    }
}

#[async_trait::async_trait]
impl ConfigStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let state = self.state();
        Ok(state.data.get(key).map(|e| state.kv(key, e)))
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let state = self.state();
        let kvs = state
            .data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| state.kv(k, e))
            .collect();
        Ok(Listing {
            kvs,
            revision: state.revision,
        })
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        self.state().commit(&[Op::Put {
            key: key.to_owned(),
            value: value.to_owned(),
            lease,
        }])
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let mut state = self.state();
        let existed = state.data.contains_key(key);
        state.commit(&[Op::Delete {
            key: key.to_owned(),
        }])?;
        Ok(existed)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut state = self.state();
        let ops: Vec<Op> = state
            .data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| Op::Delete { key: k.clone() })
            .collect();
        state.commit(&ops)?;
        Ok(ops.len() as u64)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let mut state = self.state();
        let succeeded = txn.compares.iter().all(|c| state.holds(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let revision = state.commit(ops)?;
        Ok(TxnOutcome {
            succeeded,
            revision,
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ttl = Duration::from_secs(ttl_seconds(ttl)? as u64);
        self.start_reaper();
        let mut state = self.state();
        let id = LeaseId(state.next_lease);
        state.next_lease += 1;
        state.leases.insert(
            id,
            LeaseState {
                ttl,
                deadline: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut state = self.state();
        let now = Instant::now();
        match state.leases.get_mut(&lease) {
            Some(l) if l.deadline > now => {
                l.deadline = now + l.ttl;
                Ok(())
            }
            Some(_) => {
                state.remove_lease(lease);
                Err(StoreError::LeaseNotFound(lease))
            }
            None => Err(StoreError::LeaseNotFound(lease)),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        if self.state().remove_lease(lease) {
            Ok(())
        } else {
            Err(StoreError::LeaseNotFound(lease))
        }
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        let mut state = self.state();
        let start = if from <= 0 { state.revision + 1 } else { from };
        if start <= state.compacted {
            return Err(StoreError::Compacted {
                requested: start,
                compacted: state.compacted,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for event in state
            .history
            .iter()
            .filter(|e| e.kv.mod_revision >= start && e.kv.key.starts_with(prefix))
        {
            // The receiver is still in hand, so the send cannot fail.
            let _ = tx.send(Ok(event.clone()));
        }
        state.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }
}
