//! A watch on a three-member etcd cluster keeps delivering while members are killed and
//! restarted, with every event counted: none lost, none twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deis_store::{ConfigStore, EtcdStore, EventKind, Txn};
use deis_testkit::{EtcdCluster, eventually};

use crate::contract::next_event;

/// Writes `/w/<i>` for `i` in `range`, each exactly once: a write that fails because a member
/// went away is retried as a create, which cannot apply twice.
async fn write(
    store: &Arc<dyn ConfigStore>,
    ns: &str,
    range: std::ops::Range<usize>,
    done: &AtomicUsize,
) {
    for i in range {
        let key = format!("{ns}/w/{i:05}");
        eventually(
            Duration::from_secs(20),
            &format!("{key} to be written"),
            || async {
                match store.txn(Txn::create(key.clone(), i.to_string())).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_retryable() => Err(e.to_string()),
                    Err(e) => panic!("writing {key} failed for good: {e}"),
                }
            },
        )
        .await;
        done.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_member_restarts_without_losing_or_repeating_events() {
    const PER_PHASE: usize = 40;
    let mut cluster = EtcdCluster::start().await;
    let ns = format!("/{}", deis_testkit::unique_id());
    let endpoints = cluster.endpoints();
    let watcher: Arc<dyn ConfigStore> = Arc::new(
        EtcdStore::connect(&endpoints, "")
            .await
            .expect("connect watcher"),
    );
    let writer: Arc<dyn ConfigStore> = Arc::new(
        EtcdStore::connect(&endpoints, "")
            .await
            .expect("connect writer"),
    );
    let mut watch = watcher.watch(&format!("{ns}/w/"), 0).await.expect("watch");

    // Kill and restart each member in turn, so the member serving the watch dies at some point,
    // writing while each one is down and after it is back.
    let written = AtomicUsize::new(0);
    let mut next = 0;
    for member in 0..3 {
        write(&writer, &ns, next..next + PER_PHASE, &written).await;
        next += PER_PHASE;
        cluster.kill(member);
        write(&writer, &ns, next..next + PER_PHASE, &written).await;
        next += PER_PHASE;
        cluster.restart(member).await;
    }
    write(&writer, &ns, next..next + PER_PHASE, &written).await;
    next += PER_PHASE;
    assert_eq!(written.load(Ordering::SeqCst), next);

    let mut seen = BTreeSet::new();
    let mut last_revision = 0;
    for _ in 0..next {
        let event = next_event(&mut watch).await;
        assert_eq!(event.kind, EventKind::Put);
        assert!(
            event.kv.mod_revision > last_revision,
            "events arrive in revision order"
        );
        last_revision = event.kv.mod_revision;
        assert!(
            seen.insert(event.kv.key.clone()),
            "{} delivered twice",
            event.kv.key
        );
    }
    assert_eq!(seen.len(), next, "every write was delivered");

    // And nothing more arrives: one more write is the very next event.
    write(&writer, &ns, next..next + 1, &written).await;
    let extra = next_event(&mut watch).await;
    assert_eq!(extra.kv.key, format!("{ns}/w/{next:05}"));

    // The cluster is whole again: every member answers.
    for i in 0..3 {
        let one = EtcdStore::connect(&[cluster.endpoint(i)], "")
            .await
            .expect("connect");
        eventually(
            Duration::from_secs(10),
            &format!("member {i} to serve reads"),
            || {
                let one = one.clone();
                let key = format!("{ns}/w/00000");
                async move {
                    match one.get(&key).await {
                        Ok(Some(_)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    }
}
