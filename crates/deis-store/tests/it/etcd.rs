//! The contract on a real etcd (one member from the Debian package), each test under its own
//! namespace.

use std::sync::Arc;

use deis_store::EtcdStore;
use deis_testkit::Etcd;

use crate::contract::Fixture;

async fn etcd() -> Fixture {
    let etcd = Etcd::start().await;
    let store = EtcdStore::connect(
        &[etcd.endpoint()],
        &format!("/{}", deis_testkit::unique_id()),
    )
    .await
    .expect("connect to etcd");
    let endpoint = etcd.endpoint();
    Fixture {
        store: Arc::new(store),
        compact: Arc::new(move |revision| {
            let endpoint = endpoint.clone();
            Box::pin(async move {
                let mut client = etcd_client::Client::connect([endpoint], None)
                    .await
                    .expect("connect to etcd");
                client.compact(revision, None).await.expect("compact");
            })
        }),
        _guard: Box::new(etcd),
    }
}

store_contract!(etcd);

#[tokio::test]
async fn an_unreachable_etcd_is_a_retryable_error() {
    let port = deis_testkit::free_port();
    let result = match EtcdStore::connect(&[format!("http://127.0.0.1:{port}")], "").await {
        Ok(store) => deis_store::ConfigStore::get(&store, "/deis/platform/domain")
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let err = result.expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("unavailable"), "{err}");
}
