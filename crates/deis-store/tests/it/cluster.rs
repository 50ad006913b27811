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

/// With two of three members gone, etcd can neither renew a lease nor let it lapse: a holder
/// that must not outlive its lease (`hold_lease`, a leading controller's) gives up after one
/// TTL without a renewal, while `keep_lease_alive` (routes, endpoints) keeps trying. The member
/// list names all three members, and a lost one can be removed through the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_is_given_up_after_a_ttl_without_renewal_and_members_are_listed() {
    let mut cluster = EtcdCluster::start().await;
    let endpoints = cluster.endpoints();
    let etcd = EtcdStore::connect(&endpoints, "").await.expect("connect");
    let members = etcd.members().await.expect("member list");
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(
        members
            .iter()
            .all(|m| !m.name.is_empty() && !m.peer_urls.is_empty())
    );

    let store: Arc<dyn ConfigStore> = Arc::new(etcd);
    let ttl = Duration::from_secs(3);
    let held = store.grant_lease(ttl).await.expect("lease");
    let kept = store.grant_lease(ttl).await.expect("lease");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let holder = tokio::spawn(deis_store::hold_lease(
        store.clone(),
        held,
        ttl,
        shutdown.clone(),
    ));
    let keeper = tokio::spawn(deis_store::keep_lease_alive(
        store.clone(),
        kept,
        ttl,
        shutdown.clone(),
    ));
    cluster.kill(1);
    cluster.kill(2);
    let lost = std::time::Instant::now();
    let given_up = tokio::time::timeout(Duration::from_secs(30), holder)
        .await
        .expect("hold_lease gives up")
        .expect("task");
    assert!(
        matches!(given_up, Err(deis_store::StoreError::Unavailable { .. })),
        "{given_up:?}"
    );
    // Renewed a third of a TTL apart, so the last renewal came at most that long before.
    assert!(
        lost.elapsed() >= ttl - ttl / 3,
        "gave up only a whole TTL after its last renewal: {:?}",
        lost.elapsed()
    );
    assert!(!keeper.is_finished(), "keep_lease_alive keeps trying");

    // The majority back: the keeper renews again; member 3 removed through the others.
    cluster.restart(1).await;
    let etcd = EtcdStore::connect(&endpoints[..2], "")
        .await
        .expect("connect");
    let gone = eventually(Duration::from_secs(20), "the member list", || async {
        let members = etcd.members().await.map_err(|e| e.to_string())?;
        members
            .iter()
            .find(|m| m.client_urls.iter().any(|u| *u == endpoints[2]))
            .map(|m| m.id)
            .ok_or_else(|| format!("{members:?}"))
    })
    .await;
    etcd.remove_member(gone)
        .await
        .expect("remove the lost member");
    let left = etcd.members().await.expect("member list");
    assert_eq!(left.len(), 2, "{left:?}");
    shutdown.cancel();
    let _ = keeper.await;
}

/// With one member of three down, once the two left have a leader (etcd's own election, when
/// the lost one led), every request succeeds: the client spreads requests over all endpoints,
/// and one sent to the lost member's is sent again to another (a third of them used to fail).
/// Without a majority, a write still fails with etcd's own error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_member_lost_no_request_fails() {
    let mut cluster = EtcdCluster::start().await;
    let ns = format!("/{}", deis_testkit::unique_id());
    let store = EtcdStore::connect(&cluster.endpoints(), "")
        .await
        .expect("connect");
    store
        .put(&format!("{ns}/warm"), "1", None)
        .await
        .expect("put");
    for lost in [0, 1] {
        cluster.kill(lost);
        eventually(
            Duration::from_secs(20),
            "a leader among the two left",
            || async {
                store
                    .put(&format!("{ns}/elected"), "1", None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        for i in 0..100 {
            let key = format!("{ns}/k/{i}");
            if let Err(e) = store.put(&key, "v", None).await {
                panic!("put {i} with member {lost} lost: {e}");
            }
            if let Err(e) = store.get(&key).await {
                panic!("get {i} with member {lost} lost: {e}");
            }
        }
        let lease = store
            .grant_lease(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("lease with member {lost} lost: {e}"));
        for _ in 0..20 {
            if let Err(e) = store.keep_alive(lease).await {
                panic!("renewal with member {lost} lost: {e}");
            }
        }
        cluster.restart(lost).await;
    }
    cluster.kill(0);
    cluster.kill(1);
    let started = std::time::Instant::now();
    let refused = store.put(&format!("{ns}/no-majority"), "v", None).await;
    assert!(refused.is_err(), "a write without a majority: {refused:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the refusal took {:?}",
        started.elapsed()
    );
}
