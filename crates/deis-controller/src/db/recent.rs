//! Rows as last read, so that the reads of most requests (the caller's token, the app, who may
//! see it) need no query. The controller that leads is the only writer (stand-bys pass requests
//! to it), and every write through [`super::Db`] forgets everything read before: an entry is
//! used only until the next change, and at most [`TTL`] (a safety net for a write from a
//! previous leader finishing late). A read that raced a change is not kept (a generation
//! count), and at most [`MAX`] entries are kept (all are dropped when full).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a read stays usable without another read.
const TTL: Duration = Duration::from_secs(5);

/// How many entries one kind of read keeps at most, unless it says otherwise.
const MAX: usize = 10_000;

/// How many rendered pages are kept at most: each may be large (a page of apps).
const MAX_PAGES: usize = 1_000;

/// One kind of read: values by key.
pub(crate) struct Recent<K, V> {
    inner: Mutex<Inner<K, V>>,
    max: usize,
}

struct Inner<K, V> {
    generation: u64,
    values: HashMap<K, (V, Instant)>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent::with_max(MAX)
    }
}

impl<K, V> Recent<K, V> {
    /// A kind of read that keeps at most `max` entries.
    fn with_max(max: usize) -> Self {
        Recent {
            inner: Mutex::new(Inner {
                generation: 0,
                values: HashMap::new(),
            }),
            max,
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key` if read since the last change and within [`TTL`]; else the
    /// generation to pass to [`Recent::keep`] after reading it.
    pub(crate) fn get<Q>(&self, key: &Q) -> Result<V, u64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let inner = self.lock();
        match inner.values.get(key) {
            Some((value, at)) if at.elapsed() < TTL => Ok(value.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Keeps a value read at `generation`, unless something changed since.
    pub(crate) fn keep(&self, key: K, value: V, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.values.len() >= self.max {
            inner.values.clear();
        }
        inner.values.insert(key, (value, Instant::now()));
    }

    /// Something changed: nothing read before is used again.
    pub(crate) fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.values.clear();
    }
}

/// What a page of a list is rendered from besides the rows: the caller, whether an
/// administrator, the page's link base, limit and offset, and the platform domain.
pub(crate) type PageKey = (String, bool, String, i64, i64, String);

/// Which apps a user sees: the user, whether an administrator, the page's limit and offset.
pub(crate) type VisibleKey = (String, bool, i64, i64);

/// Every kind of read kept, forgotten together at every write.
pub(crate) struct Reads {
    /// Users by token hash.
    pub(crate) callers: Recent<String, super::User>,
    /// Apps by id (`None`: no such app).
    pub(crate) apps: Recent<String, Option<super::App>>,
    /// Whether a user is a collaborator of an app, by (app, user).
    pub(crate) collaborators: Recent<(String, String), bool>,
    /// The apps a user sees, by (user, admin, limit, offset): a page and the count.
    pub(crate) visible: Recent<VisibleKey, (Vec<super::App>, i64)>,
    /// `GET /v1/apps` pages as sent (JSON).
    pub(crate) app_pages: Recent<PageKey, bytes::Bytes>,
    /// Held while a page is rendered, so that one query serves the requests that missed.
    pub(crate) rendering: tokio::sync::Mutex<()>,
}

impl Default for Reads {
    fn default() -> Self {
        Reads {
            callers: Recent::default(),
            apps: Recent::default(),
            collaborators: Recent::default(),
            visible: Recent::default(),
            app_pages: Recent::with_max(MAX_PAGES),
            rendering: tokio::sync::Mutex::new(()),
        }
    }
}

impl Reads {
    /// Something was written: every read is done again.
    pub(crate) fn forget_all(&self) {
        self.callers.forget_all();
        self.apps.forget_all();
        self.collaborators.forget_all();
        self.visible.forget_all();
        self.app_pages.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_forgets_every_read_and_a_read_that_raced_it_is_not_kept() {
        let reads = Recent::<String, u32>::default();
        let generation = reads.get("a").expect_err("nothing kept yet");
        reads.keep("a".to_owned(), 1, generation);
        assert_eq!(reads.get("a"), Ok(1));
        reads.forget_all();
        let before = reads.get("a").expect_err("forgotten");
        // A read started before a change is not kept.
        reads.forget_all();
        reads.keep("a".to_owned(), 1, before);
        assert!(reads.get("a").is_err(), "a stale read kept");
    }

    #[test]
    fn a_full_cache_starts_again_rather_than_growing() {
        let reads = Recent::<u32, u32>::default();
        for i in 0..(MAX as u32 + 10) {
            let generation = reads.get(&i).expect_err("new");
            reads.keep(i, i, generation);
        }
        assert!(reads.lock().values.len() <= MAX);
        assert_eq!(reads.get(&(MAX as u32 + 9)), Ok(MAX as u32 + 9));
    }
}
