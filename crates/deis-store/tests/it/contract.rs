//! The contract every `ConfigStore` backend keeps, written once. `store_contract!(factory)`
//! instantiates every case (these, and the [`Follower`](deis_store::Follower)'s in `follow.rs`)
//! as a test for one backend.

use std::sync::Arc;
use std::time::Duration;

use deis_store::{
    Compare, ConfigStore, Event, EventKind, Op, Revision, StoreError, Txn, WatchStream,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

/// Compacts a backend's history before a revision, as etcd's `compact` does.
pub(crate) type Compact = Arc<dyn Fn(Revision) -> BoxFuture<'static, ()> + Send + Sync>;

/// A store under test, how to compact it, and whatever keeps its backend running.
pub(crate) struct Fixture {
    pub(crate) store: Arc<dyn ConfigStore>,
    pub(crate) compact: Compact,
    pub(crate) _guard: Box<dyn std::any::Any + Send>,
}

macro_rules! store_contract {
    ($factory:path) => {
        store_contract!(@cases $factory, contract;
            get_put_delete, list_by_prefix, delete_prefix_is_one_revision,
            watch_from_a_past_revision, watch_from_now, watch_reports_deletes,
            create_conflicts_when_present, swap_conflicts_on_stale_revision,
            txn_failure_branch_and_one_revision, concurrent_swaps_never_lose_an_update,
            lease_expiry_deletes_keys, keep_alive_extends_a_lease, revoke_deletes_at_once,
            many_writes_arrive_in_order_exactly_once, bad_requests_are_rejected);
        store_contract!(@cases $factory, follow;
            a_follower_delivers_what_changes_after_its_listing);
        #[tokio::test]
        async fn a_follower_lists_again_after_a_compaction() {
            let fixture = $factory().await;
            crate::follow::a_follower_lists_again_after_a_compaction(&fixture).await;
        }
    };
    (@cases $factory:path, $module:ident; $($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            let fixture = $factory().await;
            crate::$module::$case(&fixture.store).await;
        }
    )*};
}

pub(crate) const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// The next event of `watch`, failing the test if none comes within the deadline.
pub(crate) async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_DEADLINE, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("no event within {EVENT_DEADLINE:?}"),
    }
}

fn summary(event: &Event) -> (EventKind, &str, &str) {
    (event.kind, event.kv.key.as_str(), event.kv.value.as_str())
}

pub(crate) async fn get_put_delete(store: &Arc<dyn ConfigStore>) {
    assert_eq!(store.get("/deis/platform/domain").await.expect("get"), None);
    let r1 = store
        .put("/deis/platform/domain", "example.com", None)
        .await
        .expect("put");
    let kv = store
        .get("/deis/platform/domain")
        .await
        .expect("get")
        .expect("the key exists");
    assert_eq!(kv.value, "example.com");
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r1));
    assert_eq!(kv.lease, None);

    let r2 = store
        .put("/deis/platform/domain", "other.example.com", None)
        .await
        .expect("put");
    assert!(r2 > r1);
    let kv = store
        .get("/deis/platform/domain")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (kv.value.as_str(), kv.create_revision, kv.mod_revision),
        ("other.example.com", r1, r2)
    );

    assert!(store.delete("/deis/platform/domain").await.expect("delete"));
    assert!(
        !store
            .delete("/deis/platform/domain")
            .await
            .expect("delete again")
    );
    assert_eq!(store.get("/deis/platform/domain").await.expect("get"), None);
}

pub(crate) async fn list_by_prefix(store: &Arc<dyn ConfigStore>) {
    for (k, v) in [
        ("/deis/services/ab/ab_v1.web.1", "10.0.0.2:5000"),
        ("/deis/services/a/a_v1.web.2", "10.0.0.1:5001"),
        ("/deis/services/a/a_v1.web.1", "10.0.0.1:5000"),
        ("/deis/services/a", "owner"),
    ] {
        store.put(k, v, None).await.expect("put");
    }
    let listing = store.list("/deis/services/a/").await.expect("list");
    let keys: Vec<&str> = listing.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/deis/services/a/a_v1.web.1", "/deis/services/a/a_v1.web.2"],
        "sorted, and only under the prefix"
    );
    assert!(
        listing.revision
            >= listing
                .kvs
                .iter()
                .map(|kv| kv.mod_revision)
                .max()
                .unwrap_or(0)
    );
    assert_eq!(
        store.list("/deis/services/").await.expect("list").kvs.len(),
        4
    );
    assert!(store.list("/nothing/").await.expect("list").kvs.is_empty());
}

pub(crate) async fn delete_prefix_is_one_revision(store: &Arc<dyn ConfigStore>) {
    for k in [
        "/deis/config/go/a",
        "/deis/config/go/b",
        "/deis/config/gopher/c",
    ] {
        store.put(k, "1", None).await.expect("put");
    }
    let mut watch = store.watch("/deis/config/", 0).await.expect("watch");
    assert_eq!(
        store
            .delete_prefix("/deis/config/go/")
            .await
            .expect("delete"),
        2
    );
    let a = next_event(&mut watch).await;
    let b = next_event(&mut watch).await;
    assert_eq!(summary(&a), (EventKind::Delete, "/deis/config/go/a", ""));
    assert_eq!(summary(&b), (EventKind::Delete, "/deis/config/go/b", ""));
    assert_eq!(
        a.kv.mod_revision, b.kv.mod_revision,
        "one revision for the whole delete"
    );
    assert!(
        store
            .get("/deis/config/gopher/c")
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store
            .delete_prefix("/deis/config/go/")
            .await
            .expect("delete"),
        0
    );
}

pub(crate) async fn watch_from_a_past_revision(store: &Arc<dyn ConfigStore>) {
    store
        .put("/deis/domains/a.com", "a", None)
        .await
        .expect("put");
    let from = store
        .put("/deis/domains/b.com", "b", None)
        .await
        .expect("put");
    store.put("/deis/other", "x", None).await.expect("put");
    store
        .put("/deis/domains/c.com", "c", None)
        .await
        .expect("put");
    let mut watch = store.watch("/deis/domains/", from).await.expect("watch");
    assert_eq!(
        summary(&next_event(&mut watch).await),
        (EventKind::Put, "/deis/domains/b.com", "b")
    );
    assert_eq!(
        summary(&next_event(&mut watch).await),
        (EventKind::Put, "/deis/domains/c.com", "c")
    );
    // History then flows into live events with nothing in between lost.
    store
        .put("/deis/domains/d.com", "d", None)
        .await
        .expect("put");
    let live = next_event(&mut watch).await;
    assert_eq!(summary(&live), (EventKind::Put, "/deis/domains/d.com", "d"));
    assert!(live.kv.mod_revision > from);
}

pub(crate) async fn watch_from_now(store: &Arc<dyn ConfigStore>) {
    store
        .put("/deis/router/bodySize", "1m", None)
        .await
        .expect("put");
    let mut watch = store.watch("/deis/router/", 0).await.expect("watch");
    store
        .put("/deis/router/bodySize", "5m", None)
        .await
        .expect("put");
    let event = next_event(&mut watch).await;
    assert_eq!(
        summary(&event),
        (EventKind::Put, "/deis/router/bodySize", "5m"),
        "only changes after the watch began"
    );
}

pub(crate) async fn watch_reports_deletes(store: &Arc<dyn ConfigStore>) {
    store
        .put("/deis/certs/a.com/cert", "PEM", None)
        .await
        .expect("put");
    let mut watch = store.watch("/deis/certs/", 0).await.expect("watch");
    let rev = store
        .delete("/deis/certs/a.com/cert")
        .await
        .expect("delete");
    assert!(rev);
    let event = next_event(&mut watch).await;
    assert_eq!(
        summary(&event),
        (EventKind::Delete, "/deis/certs/a.com/cert", "")
    );
}

pub(crate) async fn create_conflicts_when_present(store: &Arc<dyn ConfigStore>) {
    let first = store
        .txn(Txn::create("/deis/services/go", "alice"))
        .await
        .expect("txn");
    assert!(first.succeeded);
    let second = store
        .txn(Txn::create("/deis/services/go", "mallory"))
        .await
        .expect("txn");
    assert!(!second.succeeded, "the second create must lose");
    let kv = store
        .get("/deis/services/go")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(kv.value, "alice", "the loser changed nothing");
}

pub(crate) async fn swap_conflicts_on_stale_revision(store: &Arc<dyn ConfigStore>) {
    let r1 = store
        .put("/deis/router/gzip", "on", None)
        .await
        .expect("put");
    let r2 = store
        .put("/deis/router/gzip", "off", None)
        .await
        .expect("put");
    let stale = store
        .txn(Txn::swap("/deis/router/gzip", r1, "stale"))
        .await
        .expect("txn");
    assert!(!stale.succeeded);
    let current = store
        .txn(Txn::swap("/deis/router/gzip", r2, "on"))
        .await
        .expect("txn");
    assert!(current.succeeded);
    assert_eq!(
        store
            .get("/deis/router/gzip")
            .await
            .expect("get")
            .expect("exists")
            .value,
        "on"
    );
    // Revision 0 means "absent".
    let absent = store
        .txn(Txn::swap("/deis/router/new", 0, "v"))
        .await
        .expect("txn");
    assert!(absent.succeeded);
    let value_ok = store
        .txn(Txn {
            compares: vec![Compare::Value {
                key: "/deis/router/new".into(),
                value: "v".into(),
            }],
            success: vec![Op::Put {
                key: "/deis/router/new".into(),
                value: "w".into(),
                lease: None,
            }],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert!(value_ok.succeeded);
    let value_on_missing = store
        .txn(Txn {
            compares: vec![Compare::Value {
                key: "/deis/router/missing".into(),
                value: "".into(),
            }],
            success: vec![],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert!(
        !value_on_missing.succeeded,
        "a value comparison on a missing key fails"
    );
}

pub(crate) async fn txn_failure_branch_and_one_revision(store: &Arc<dyn ConfigStore>) {
    store
        .put("/deis/platform/domain", "a.com", None)
        .await
        .expect("put");
    let mut watch = store.watch("/deis/", 0).await.expect("watch");
    let outcome = store
        .txn(Txn {
            compares: vec![Compare::Value {
                key: "/deis/platform/domain".into(),
                value: "b.com".into(),
            }],
            success: vec![Op::Put {
                key: "/deis/success".into(),
                value: "1".into(),
                lease: None,
            }],
            failure: vec![
                Op::Put {
                    key: "/deis/failure/a".into(),
                    value: "1".into(),
                    lease: None,
                },
                Op::Delete {
                    key: "/deis/platform/domain".into(),
                },
            ],
        })
        .await
        .expect("txn");
    assert!(!outcome.succeeded);
    let a = next_event(&mut watch).await;
    let b = next_event(&mut watch).await;
    assert_eq!(summary(&a), (EventKind::Put, "/deis/failure/a", "1"));
    assert_eq!(
        summary(&b),
        (EventKind::Delete, "/deis/platform/domain", "")
    );
    assert_eq!(
        (a.kv.mod_revision, b.kv.mod_revision),
        (outcome.revision, outcome.revision)
    );
    assert_eq!(store.get("/deis/success").await.expect("get"), None);
}

pub(crate) async fn concurrent_swaps_never_lose_an_update(store: &Arc<dyn ConfigStore>) {
    const WRITERS: usize = 4;
    const EACH: usize = 10;
    store.put("/deis/counter", "0", None).await.expect("put");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut conflicts = 0;
            for _ in 0..EACH {
                loop {
                    let kv = store
                        .get("/deis/counter")
                        .await
                        .expect("get")
                        .expect("exists");
                    let n: usize = kv.value.parse().expect("a number");
                    let swap = Txn::swap("/deis/counter", kv.mod_revision, (n + 1).to_string());
                    if store.txn(swap).await.expect("txn").succeeded {
                        break;
                    }
                    conflicts += 1;
                }
            }
            conflicts
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("writer");
    }
    let kv = store
        .get("/deis/counter")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        kv.value,
        (WRITERS * EACH).to_string(),
        "every increment survived"
    );
}

pub(crate) async fn lease_expiry_deletes_keys(store: &Arc<dyn ConfigStore>) {
    let lease = store
        .grant_lease(Duration::from_secs(1))
        .await
        .expect("grant");
    store
        .put(
            "/deis/services/go/go_v1.web.1",
            "127.0.0.1:5000",
            Some(lease),
        )
        .await
        .expect("put");
    let kv = store
        .get("/deis/services/go/go_v1.web.1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(kv.lease, Some(lease));
    let mut watch = store.watch("/deis/services/", 0).await.expect("watch");
    // Nobody renews the lease: the route must go away by itself, and watchers must hear of it.
    let event = next_event(&mut watch).await;
    assert_eq!(
        summary(&event),
        (EventKind::Delete, "/deis/services/go/go_v1.web.1", "")
    );
    assert_eq!(
        store
            .get("/deis/services/go/go_v1.web.1")
            .await
            .expect("get"),
        None
    );
    let renewed = store.keep_alive(lease).await;
    assert!(
        matches!(renewed, Err(StoreError::LeaseNotFound(_))),
        "{renewed:?}"
    );
}

pub(crate) async fn keep_alive_extends_a_lease(store: &Arc<dyn ConfigStore>) {
    let lease = store
        .grant_lease(Duration::from_secs(2))
        .await
        .expect("grant");
    store
        .put("/deis/controller/host", "127.0.0.1", Some(lease))
        .await
        .expect("put");
    let mut watch = store.watch("/deis/controller/", 0).await.expect("watch");
    // Renew well within the TTL for three TTLs: the key must survive all of it.
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut ticker = tokio::time::interval(Duration::from_millis(400));
    while tokio::time::Instant::now() < until {
        ticker.tick().await;
        store.keep_alive(lease).await.expect("keep alive");
        assert!(
            futures_util::FutureExt::now_or_never(watch.next()).is_none(),
            "no event while the lease is renewed"
        );
    }
    assert!(
        store
            .get("/deis/controller/host")
            .await
            .expect("get")
            .is_some()
    );
    // Then it lapses.
    let event = next_event(&mut watch).await;
    assert_eq!(
        summary(&event),
        (EventKind::Delete, "/deis/controller/host", "")
    );
}

pub(crate) async fn revoke_deletes_at_once(store: &Arc<dyn ConfigStore>) {
    let lease = store
        .grant_lease(Duration::from_secs(60))
        .await
        .expect("grant");
    store
        .put("/deis/logs/host", "127.0.0.1", Some(lease))
        .await
        .expect("put");
    store
        .put("/deis/logs/port", "8088", Some(lease))
        .await
        .expect("put");
    let mut watch = store.watch("/deis/logs/", 0).await.expect("watch");
    store.revoke_lease(lease).await.expect("revoke");
    let a = next_event(&mut watch).await;
    let b = next_event(&mut watch).await;
    assert_eq!((a.kind, b.kind), (EventKind::Delete, EventKind::Delete));
    assert_eq!(
        a.kv.mod_revision, b.kv.mod_revision,
        "one revision for the lease's keys"
    );
    assert!(
        store
            .list("/deis/logs/")
            .await
            .expect("list")
            .kvs
            .is_empty()
    );
    let renewed = store.keep_alive(lease).await;
    assert!(
        matches!(renewed, Err(StoreError::LeaseNotFound(_))),
        "{renewed:?}"
    );
    assert!(matches!(
        store.put("/deis/logs/host", "x", Some(lease)).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

pub(crate) async fn many_writes_arrive_in_order_exactly_once(store: &Arc<dyn ConfigStore>) {
    const N: usize = 300;
    let mut watch = store.watch("/deis/services/", 0).await.expect("watch");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..N {
                let key = format!("/deis/services/app/app_v1.web.{}", i + 1);
                store
                    .put(&key, &format!("10.0.0.1:{}", 5000 + i), None)
                    .await
                    .expect("put");
            }
        })
    };
    let mut last = 0;
    for i in 0..N {
        let event = next_event(&mut watch).await;
        assert_eq!(
            event.kv.key,
            format!("/deis/services/app/app_v1.web.{}", i + 1)
        );
        assert!(event.kv.mod_revision > last, "revisions increase");
        last = event.kv.mod_revision;
    }
    writer.await.expect("writer");
    assert!(
        futures_util::FutureExt::now_or_never(watch.next()).is_none(),
        "nothing extra"
    );
}

pub(crate) async fn bad_requests_are_rejected(store: &Arc<dyn ConfigStore>) {
    assert!(matches!(
        store.put("", "x", None).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.grant_lease(Duration::ZERO).await,
        Err(StoreError::InvalidRequest(_))
    ));
    let twice = Txn {
        compares: vec![],
        success: vec![
            Op::Put {
                key: "/deis/x".into(),
                value: "1".into(),
                lease: None,
            },
            Op::Put {
                key: "/deis/x".into(),
                value: "2".into(),
                lease: None,
            },
        ],
        failure: vec![],
    };
    assert!(matches!(
        store.txn(twice).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert_eq!(
        store.get("/deis/x").await.expect("get"),
        None,
        "a rejected txn writes nothing"
    );
}
