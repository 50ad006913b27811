//! The contract on the in-process store, and what only it can show (compaction of its bounded
//! history).

use std::sync::Arc;

use deis_store::{ConfigStore, MemoryStore, StoreError};

use crate::contract::{Fixture, next_event};

async fn memory() -> Fixture {
    let store = MemoryStore::new();
    let history = store.clone();
    Fixture {
        store: Arc::new(store),
        compact: Arc::new(move |revision| {
            history.compact(revision);
            Box::pin(async {})
        }),
        _guard: Box::new(()),
    }
}

store_contract!(memory);

#[tokio::test]
async fn a_watch_before_the_kept_history_is_told_to_relist() {
    let store = MemoryStore::with_history(3);
    let first = store.put("/deis/a", "1", None).await.expect("put");
    for v in ["2", "3", "4"] {
        store.put("/deis/a", v, None).await.expect("put");
    }
    match store.watch("/deis/", first).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, first);
            assert!(compacted >= first);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a watch from a forgotten revision must fail"),
    }
    // From the oldest kept revision it works and starts there.
    let listing = store.list("/deis/").await.expect("list");
    let mut watch = store
        .watch("/deis/", listing.revision - 2)
        .await
        .expect("watch");
    assert_eq!(next_event(&mut watch).await.kv.value, "2");
}
