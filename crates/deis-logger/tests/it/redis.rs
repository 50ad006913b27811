//! Two logger replicas on one real Redis serve the same lines; a restart loses none and a batch
//! retried across the restart is stored once.

use std::time::Duration;

use deis_proto::logger::v1 as pb;

use crate::ingest::{client, logger_on, messages};

fn batch(sequence: u64, messages: &[&str]) -> pb::PushRequest {
    pb::PushRequest {
        shipper: "host-a".to_owned(),
        sequence,
        entries: messages
            .iter()
            .map(|m| pb::LogEntry {
                app: "shared".to_owned(),
                source: "web.1".to_owned(),
                time: None,
                message: (*m).to_owned(),
                offset: 0,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_lines_and_restarts_lose_none() {
    let redis = deis_testkit::Redis::start().await;
    let a = logger_on(Some(redis.url())).await;
    let b = logger_on(Some(redis.url())).await;
    let mut follow = client(&b)
        .await
        .follow(pb::FollowRequest {
            app: "shared".to_owned(),
            lines: 10,
        })
        .await
        .expect("follow on b")
        .into_inner();
    let stored = client(&a)
        .await
        .push(batch(1, &["one", "two"]))
        .await
        .expect("push to a");
    assert_eq!(stored.into_inner().stored, 2);
    assert_eq!(
        messages(&b, "shared").await,
        ["web.1|one", "web.1|two"],
        "b serves what a stored"
    );
    for expected in ["one", "two"] {
        let e = tokio::time::timeout(Duration::from_secs(10), follow.message())
            .await
            .expect("a line arrives on b's follow")
            .expect("stream")
            .expect("entry");
        assert_eq!(e.message, expected);
    }

    // A restarts; its lines are still there, and the shipper's retry of batch 1 adds nothing.
    drop(a);
    let a = logger_on(Some(redis.url())).await;
    let again = client(&a)
        .await
        .push(batch(1, &["one", "two"]))
        .await
        .expect("retry");
    assert_eq!(again.into_inner().stored, 0);
    client(&a)
        .await
        .push(batch(2, &["three"]))
        .await
        .expect("push");
    assert_eq!(
        messages(&a, "shared").await,
        ["web.1|one", "web.1|two", "web.1|three"]
    );
    let (status, body) = a.get("/shared?log_lines=1");
    assert_eq!(status, 200);
    assert!(body.ends_with(" shared[web.1]: three\n"), "{body}");
}
