//! The [`Follower`]'s part of the contract, run on both backends by `store_contract!`: it lists,
//! then delivers every later change, and lists again when its watch falls behind a compaction.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deis_store::{
    ConfigStore, EventKind, Follower, KeyValue, LeaseId, Listing, Revision, StoreError, Txn,
    TxnOutcome, Update, WatchStream,
};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::contract::{EVENT_DEADLINE, Fixture};

const DOMAINS: &str = "/deis/domains/";

/// The follower's next update, failing the test if none comes within the deadline.
async fn next_update(follower: &mut Follower) -> Update {
    match tokio::time::timeout(EVENT_DEADLINE, follower.next()).await {
        Ok(Some(update)) => update,
        Ok(None) => panic!("the follower stopped"),
        Err(_) => panic!("no update within {EVENT_DEADLINE:?}"),
    }
}

/// A listing as `(key, value)` pairs, or a panic naming what came instead.
fn listed(update: Update) -> Vec<(String, String)> {
    let Update::Listed(listing) = update else {
        panic!("expected a listing, got {update:?}")
    };
    listing
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

/// The next `n` changes, however they are batched.
async fn changes(follower: &mut Follower, n: usize) -> Vec<(EventKind, String, String)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match next_update(follower).await {
            Update::Changed(events) => {
                seen.extend(events.into_iter().map(|e| (e.kind, e.kv.key, e.kv.value)))
            }
            listed @ Update::Listed(_) => panic!("listed again instead of a change: {listed:?}"),
        }
    }
    seen
}

fn pairs(kvs: &[(&str, &str)]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) async fn a_follower_delivers_what_changes_after_its_listing(
    store: &Arc<dyn ConfigStore>,
) {
    store
        .put("/deis/domains/a.com", "a", None)
        .await
        .expect("put");
    let shutdown = CancellationToken::new();
    let mut follower = Follower::new(store.clone(), DOMAINS, shutdown.clone());
    assert_eq!(
        listed(next_update(&mut follower).await),
        pairs(&[("/deis/domains/a.com", "a")])
    );
    store
        .put("/deis/domains/b.com", "b", None)
        .await
        .expect("put");
    store.put("/deis/other", "x", None).await.expect("put");
    assert!(store.delete("/deis/domains/a.com").await.expect("delete"));
    assert_eq!(
        changes(&mut follower, 2).await,
        [
            (EventKind::Put, "/deis/domains/b.com".into(), "b".into()),
            (
                EventKind::Delete,
                "/deis/domains/a.com".into(),
                String::new()
            ),
        ]
    );
    shutdown.cancel();
    assert_eq!(follower.next().await, None, "it ends at shutdown");
}

pub(crate) async fn a_follower_lists_again_after_a_compaction(fixture: &Fixture) {
    let store = &fixture.store;
    store
        .put("/deis/domains/a.com", "a", None)
        .await
        .expect("put");
    // Between the follower's listing and its watch, two changes, then a compaction past the
    // first: the watch from the listing's revision cannot be served.
    let compact = fixture.compact.clone();
    let writer = store.clone();
    let racing = CompactsBeforeWatch {
        inner: store.clone(),
        before_watch: Mutex::new(Some(Box::pin(async move {
            writer
                .put("/deis/domains/b.com", "b", None)
                .await
                .expect("put");
            let last = writer
                .put("/deis/domains/a.com", "changed", None)
                .await
                .expect("put");
            compact(last).await;
        }))),
    };
    let shutdown = CancellationToken::new();
    let mut follower = Follower::new(Arc::new(racing), DOMAINS, shutdown.clone());
    // The first listing is delivered if the watch opened before it failed (etcd reports the
    // compaction on the stream, the in-process store when the watch is opened).
    let mut listing = listed(next_update(&mut follower).await);
    if listing == pairs(&[("/deis/domains/a.com", "a")]) {
        listing = listed(next_update(&mut follower).await);
    }
    assert_eq!(
        listing,
        pairs(&[
            ("/deis/domains/a.com", "changed"),
            ("/deis/domains/b.com", "b")
        ]),
        "the changes the compaction took are in the new listing"
    );
    store
        .put("/deis/domains/c.com", "c", None)
        .await
        .expect("put");
    assert_eq!(
        changes(&mut follower, 1).await,
        [(EventKind::Put, "/deis/domains/c.com".into(), "c".into())],
        "and it watches again from the new listing"
    );
    shutdown.cancel();
}

/// The store under test, with `before_watch` run before the first watch opens.
struct CompactsBeforeWatch {
    inner: Arc<dyn ConfigStore>,
    before_watch: Mutex<Option<BoxFuture<'static, ()>>>,
}

#[async_trait::async_trait]
impl ConfigStore for CompactsBeforeWatch {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        self.inner.list(prefix).await
    }
    async fn put(
        &self,
        key: &str,
        value: &str,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.inner.delete_prefix(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        self.inner.txn(txn).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.revoke_lease(lease).await
    }
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        let hook = self.before_watch.lock().expect("not poisoned").take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.watch(prefix, from).await
    }
}
