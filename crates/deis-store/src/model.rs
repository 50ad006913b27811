//! The data the store works with: key-value pairs, events, leases and transactions. The
//! semantics are etcd v3's, which the in-process backend reproduces.

use std::pin::Pin;

use futures_util::Stream;

use crate::StoreError;

/// A store revision. Every change increases it by one; all changes of one transaction share it.
pub type Revision = i64;

/// A lease: keys attached to it are deleted when it expires or is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// One stored key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key (`/deis/domains/example.com`).
    pub key: String,
    /// The value; empty in a delete event.
    pub value: String,
    /// The revision that created the key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the key's last change.
    pub mod_revision: Revision,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// The keys under a prefix at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The keys in key order.
    pub kvs: Vec<KeyValue>,
    /// The store revision the listing was read at: watch from `revision + 1` to see every later
    /// change exactly once.
    pub revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or changed.
    Put,
    /// Deleted, by a request or by its lease expiring.
    Delete,
}

/// One change delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change (for a delete: the key, an empty value and the deleting revision
    /// as `mod_revision`).
    pub kv: KeyValue,
}

/// The stream of events of a watch, in revision order. It ends only when dropped or after an
/// error that cannot be recovered from (such as [`StoreError::Compacted`]).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key exists and holds exactly this value.
    Value {
        /// The key.
        key: String,
        /// The expected value.
        value: String,
    },
    /// The key's last change was at this revision (0: the key does not exist).
    ModRevision {
        /// The key.
        key: String,
        /// The expected revision.
        revision: Revision,
    },
    /// The key does not exist.
    Absent {
        /// The key.
        key: String,
    },
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a key, optionally attached to a lease.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The lease to attach the key to.
        lease: Option<LeaseId>,
    },
    /// Delete a key (nothing happens if it does not exist).
    Delete {
        /// The key.
        key: String,
    },
}

/// A compare-and-swap transaction: if every comparison holds, `success` is applied, otherwise
/// `failure`, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions, all of which must hold.
    pub compares: Vec<Compare>,
    /// Applied when they hold.
    pub success: Vec<Op>,
    /// Applied when one does not.
    pub failure: Vec<Op>,
}

/// The result of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOutcome {
    /// Whether the comparisons held (and `success` was applied).
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: Revision,
}

impl Txn {
    /// A transaction that puts `value` at `key` only if the key does not exist yet.
    pub fn create(key: impl Into<String>, value: impl Into<String>) -> Txn {
        let key = key.into();
        Txn {
            compares: vec![Compare::Absent { key: key.clone() }],
            success: vec![Op::Put {
                key,
                value: value.into(),
                lease: None,
            }],
            failure: vec![],
        }
    }

    /// A transaction that replaces `key`'s value only if it was last changed at `revision`.
    pub fn swap(key: impl Into<String>, revision: Revision, value: impl Into<String>) -> Txn {
        let key = key.into();
        Txn {
            compares: vec![Compare::ModRevision {
                key: key.clone(),
                revision,
            }],
            success: vec![Op::Put {
                key,
                value: value.into(),
                lease: None,
            }],
            failure: vec![],
        }
    }
}
