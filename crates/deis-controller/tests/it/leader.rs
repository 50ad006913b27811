//! Two controllers on one etcd: one leads (the API, reconciliation, deploys), the other stands
//! by (its `/healthz` answers, the API it passes on to the leader) and takes over when the
//! leader dies (within the lease's 10 s) or stops (at once).

use std::time::Duration;

use deis_store::keys::Key;
use deis_store::{ConfigStore, EtcdStore};
use deis_testkit::{Etcd, assert_stops_cleanly, eventually, free_addr, http_get, start_service};

const BIN: &str = env!("CARGO_BIN_EXE_deis-controller");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_leads_and_a_stand_by_takes_over_when_it_dies_or_stops() {
    let etcd = Etcd::start().await;
    let namespace = format!("/{}", deis_testkit::unique_id());
    let store = EtcdStore::connect(&[etcd.endpoint()], &namespace)
        .await
        .expect("connect to etcd");
    let start = || {
        let etcd = etcd.endpoint();
        let namespace = namespace.clone();
        async move {
            let dir = tempfile::tempdir().expect("temporary directory");
            let addr = free_addr();
            let env = [
                ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
                ("DEIS_DATA_DIR", dir.path().display().to_string()),
                ("DEIS_ETCD_ENDPOINTS", etcd),
                ("DEIS_ETCD_NAMESPACE", namespace),
                ("DEIS_SCHEDULER", "none".to_owned()),
            ];
            let process = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
            (process, addr, dir)
        }
    };
    let api = |addr| {
        http_get(addr, "/v1/openapi.json")
            .map(|(status, _)| status)
            .ok()
    };
    // A stand-by's health says so.
    let leads = |addr| matches!(http_get(addr, "/healthz"), Ok((200, body)) if !body.contains("standing by"));

    let (mut first, first_addr, _first_dir) = start().await;
    eventually(
        Duration::from_secs(10),
        "the first controller's API",
        || async {
            match api(first_addr) {
                Some(200) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let (second, second_addr, _second_dir) = start().await;
    assert!(!leads(second_addr), "the second stands by");
    assert_eq!(
        api(second_addr),
        Some(200),
        "the stand-by passes the API on to the leader"
    );
    let leader = store
        .get(&Key::controller_leader().path())
        .await
        .expect("get")
        .expect("a leader");
    assert!(
        leader.value.ends_with(&format!(":{}", first_addr.port())),
        "{leader:?}"
    );
    assert!(leader.lease.is_some(), "held by a lease");

    // The leader dies: its lease lapses and the stand-by takes over.
    first.kill();
    let died = std::time::Instant::now();
    // Until then it answers the client's probe itself and refuses the rest saying why.
    if !leads(second_addr) {
        assert_eq!(
            http_get(second_addr, "/v1/").map(|(status, _)| status).ok(),
            Some(401),
            "the stand-by answers the deis client's probe"
        );
        let refused = http_get(second_addr, "/v1/apps").expect("an answer");
        assert!(
            refused.0 == 503 && refused.1.contains("stands by") || leads(second_addr),
            "{refused:?}"
        );
    }
    eventually(Duration::from_secs(30), "the stand-by leading", || async {
        if leads(second_addr) {
            Ok(())
        } else {
            Err(format!("{:?}", http_get(second_addr, "/healthz")))
        }
    })
    .await;
    assert!(
        died.elapsed() < Duration::from_secs(20),
        "took over within the lease's time: {:?}",
        died.elapsed()
    );

    // A third stands by; the leader stops cleanly and the third leads at once.
    let (third, third_addr, _third_dir) = start().await;
    assert!(!leads(third_addr), "the third stands by");
    assert_stops_cleanly(second);
    eventually(Duration::from_secs(5), "the third leading", || async {
        if leads(third_addr) {
            Ok(())
        } else {
            Err(format!("{:?}", http_get(third_addr, "/healthz")))
        }
    })
    .await;
    assert_stops_cleanly(third);
    assert_eq!(
        store
            .get(&Key::controller_leader().path())
            .await
            .expect("get"),
        None,
        "the last one freed the place"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_and_started_again_on_its_address_leads_at_once() {
    let etcd = Etcd::start().await;
    let namespace = format!("/{}", deis_testkit::unique_id());
    let dir = tempfile::tempdir().expect("temporary directory");
    let addr = free_addr();
    let env = [
        ("DEIS_CONTROLLER_LISTEN", addr.to_string()),
        ("DEIS_DATA_DIR", dir.path().display().to_string()),
        ("DEIS_ETCD_ENDPOINTS", etcd.endpoint()),
        ("DEIS_ETCD_NAMESPACE", namespace),
        ("DEIS_SCHEDULER", "none".to_owned()),
    ];
    let api = || {
        http_get(addr, "/v1/openapi.json")
            .map(|(status, _)| status)
            .ok()
    };
    let mut first = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    first.kill();
    // Its lease lives on for 10 s; the same controller back on the same address does not wait.
    let again = start_service(BIN, &env, &[(addr, "/healthz")], dir.path()).await;
    let back = std::time::Instant::now();
    eventually(Duration::from_secs(30), "the API back", || async {
        match api() {
            Some(200) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "took its place back at once: {:?}",
        back.elapsed()
    );
    assert_stops_cleanly(again);
}
